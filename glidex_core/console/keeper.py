"""The console keeper: one small process per running VM that owns the VMM's serial console.

It opens a PTY, starts the VMM on the PTY slave (its controlling terminal, so the VMM gets a
hang-up if the keeper ever dies and does not linger unmanaged), appends every console byte to the
VM's log, and serves a Unix socket where any number of clients attach: each gets the live stream,
and whatever any client sends goes to the guest. Because the keeper, not the supervisor, holds the
PTY master, the dashboard and the control plane can quit or crash while the guest keeps running.

Rules on the byte path: reading the PTY never waits on a client. Each client has a bounded output
buffer and is dropped when it falls too far behind; client input is queued in a bounded buffer and
clients are not read while it is full (back-pressure instead of unbounded memory).

Stdlib only, started as ``python -m glidex_core.console.keeper SPEC_JSON``, or ahead of need as
``... --spare``, reading SPEC_JSON as one line on stdin (see launcher.py). It prints one line on
stdout once the VMM runs ("ready <vmm_pid>") or fails ("error <message>"), then detaches stdout.
When the VMM exits it writes the exit status to ``exit_file`` and exits too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import selectors
import signal
import socket
import sys
import termios
import time
import tty
from dataclasses import dataclass, field

from glidex_core.console.console_log import DEFAULT_KEEP, DEFAULT_MAX_BYTES, RotatingLog
from glidex_core.console.procinfo import start_ticks

READ_CHUNK = 65536
BATCH_LIMIT = 64 << 10  # console output passed on (log, clients) in batches up to this
CLIENT_BUFFER_LIMIT = 8 << 20  # bytes queued for one client before it is dropped
INPUT_BUFFER_LIMIT = 64 << 10  # bytes of client input queued for the guest before back-pressure
FINAL_FLUSH_SECONDS = 1.0


@dataclass
class KeeperSpec:
    vm_id: str
    argv: list[str]
    log_path: str
    socket_path: str
    pid_file: str
    exit_file: str
    vmm_stderr_path: str
    cwd: str | None = None
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_keep: int = DEFAULT_KEEP
    stderr_path: str | None = None  # a spare keeper's stderr goes here once it has its spec
    env: dict[str, str] | None = None  # a spare's VMM gets the environment of the start, not
    # the one the spare was started in (PATH may have changed since); never on a command line


@dataclass
class Client:
    sock: socket.socket
    outbuf: bytearray = field(default_factory=bytearray)


def _write_json_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _make_raw(fd: int) -> None:
    """Raw mode with no output translation even if the VMM turns OPOST back on.

    QEMU's stdio chardev sets OPOST on its terminal; with ONLCR still set the guest's CR LF would
    reach us as CR CR LF. Clearing the translation flags themselves keeps bytes exact.
    """
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~(termios.ONLCR | termios.OCRNL | termios.ONOCR | termios.ONLRET)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _give_back_vmm_tunables() -> None:
    """The VMM gets the GLIBC_TUNABLES its supervisor had, not the keeper's malloc tuning
    (launcher.py sets both; the names are repeated here to keep this module stdlib-only)."""
    theirs = os.environ.pop("GLIDEX_VMM_GLIBC_TUNABLES", None)
    if theirs is None:
        return  # not started by the launcher: nothing was added
    if theirs:
        os.environ["GLIBC_TUNABLES"] = theirs
    else:
        os.environ.pop("GLIBC_TUNABLES", None)


def _spawn_vmm(spec: KeeperSpec) -> tuple[int, int]:
    """Fork the VMM with the PTY slave as its stdio and controlling terminal."""
    pid, master = pty.fork()
    if pid == 0:  # child
        try:
            _make_raw(0)
            err = os.open(spec.vmm_stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(err, 2)
            if spec.cwd:
                os.chdir(spec.cwd)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            _give_back_vmm_tunables()
            os.execvp(spec.argv[0], spec.argv)
        except BaseException as exc:  # noqa: BLE001 - report anything and leave the fork
            os.write(2, f"glidex keeper: cannot start {spec.argv[0]}: {exc}\n".encode())
        os._exit(127)
    return pid, master


class Keeper:
    def __init__(self, spec: KeeperSpec) -> None:
        self.spec = spec
        self.sel = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.input_queue = bytearray()
        self.reading_clients = True
        self.log = RotatingLog(spec.log_path, spec.log_max_bytes, spec.log_keep)
        self.finishing = False
        self.pid_file_stale = False
        self.listener = self._listen(spec.socket_path)
        self.vmm_pid, self.master = _spawn_vmm(spec)
        os.set_blocking(self.master, False)
        self.pidfd = os.pidfd_open(self.vmm_pid)
        self.master_events = selectors.EVENT_READ
        self.sel.register(self.master, selectors.EVENT_READ, "master")
        self.sel.register(self.listener, selectors.EVENT_READ, "listener")
        self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")

    @staticmethod
    def _listen(path: str) -> socket.socket:
        # A stale socket from a crashed keeper must never block start.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
        return sock

    def write_pid_file(self) -> None:
        _write_json_atomic(self.spec.pid_file, {
            "keeper_pid": os.getpid(),
            "keeper_start": start_ticks(os.getpid()),
            "vmm_pid": self.vmm_pid,
            "vmm_start": start_ticks(self.vmm_pid),
            "socket": self.spec.socket_path,
            "clients": len(self.clients),
            "log_error": self.log.error,
        })

    def update_pid_file(self) -> None:
        """Refresh the client count and log status; a full disk must not stop the console
        (the refresh is retried with later output until it lands)."""
        try:
            self.write_pid_file()
        except OSError:
            self.pid_file_stale = True
        else:
            self.pid_file_stale = False

    # -- the byte path ---------------------------------------------------------------------
    def _on_console_output(self, data: bytes) -> None:
        had_error = self.log.error is not None
        self.log.write(data)
        if (self.log.error is not None and not had_error) or self.pid_file_stale:
            self.update_pid_file()  # tell the supervisor, once it can be told
        for fd, client in list(self.clients.items()):
            was_empty = not client.outbuf
            client.outbuf += data
            if len(client.outbuf) > CLIENT_BUFFER_LIMIT:
                self._drop(fd)  # too slow: it must not hold the guest or anyone else back
            elif was_empty:
                self._flush_client(fd)

    def _read_master(self) -> bool:
        """Read what the VMM wrote until the PTY is empty or a batch is full, then pass it on
        once: a PTY read returns at most 4 KiB, and a log write plus a send per client for
        every 4 KiB was most of the keeper's cost. False once the PTY has hung up."""
        chunks: list[bytes] = []
        size, alive = 0, True
        while size < BATCH_LIMIT:
            try:
                data = os.read(self.master, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                alive = False
                break
            if not data:
                alive = False
                break
            chunks.append(data)
            size += len(data)
        if chunks:
            self._on_console_output(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return alive

    def _flush_client(self, fd: int) -> None:
        client = self.clients[fd]
        try:
            sent = client.sock.send(client.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(fd)
            return
        del client.outbuf[:sent]
        self._update_client_events(fd)

    def _update_client_events(self, fd: int) -> None:
        client = self.clients[fd]
        events = selectors.EVENT_READ if self.reading_clients else 0
        if client.outbuf:
            events |= selectors.EVENT_WRITE
        key = self.sel.get_map().get(fd)
        if events == 0:
            if key:
                self.sel.unregister(fd)
        elif key is None:
            self.sel.register(fd, events, "client")
        elif key.events != events:
            self.sel.modify(fd, events, "client")

    def _read_client(self, fd: int) -> None:
        try:
            data = self.clients[fd].sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return
        self.input_queue += data
        self._set_master_events(selectors.EVENT_READ | selectors.EVENT_WRITE)
        if len(self.input_queue) >= INPUT_BUFFER_LIMIT:
            self._set_client_reading(False)

    def _write_master(self) -> None:
        try:
            written = os.write(self.master, self.input_queue)
        except BlockingIOError:
            return
        except OSError:
            written = len(self.input_queue)  # the VMM is gone; its exit is handled elsewhere
        del self.input_queue[:written]
        if not self.input_queue:
            self._set_master_events(selectors.EVENT_READ)
        if not self.reading_clients and len(self.input_queue) < INPUT_BUFFER_LIMIT // 2:
            self._set_client_reading(True)

    def _set_master_events(self, events: int) -> None:
        if events != self.master_events:
            self.master_events = events
            self.sel.modify(self.master, events, "master")

    def _set_client_reading(self, reading: bool) -> None:
        self.reading_clients = reading
        for fd in list(self.clients):
            self._update_client_events(fd)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.clients[sock.fileno()] = Client(sock)
        self._update_client_events(sock.fileno())
        self.update_pid_file()  # the client count is part of it

    def _drop(self, fd: int) -> None:
        client = self.clients.pop(fd, None)
        if client is None:
            return
        if fd in self.sel.get_map():
            self.sel.unregister(fd)
        client.sock.close()
        if not self.finishing:
            self.update_pid_file()

    # -- lifetime --------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            for key, events in self.sel.select():
                kind = key.data
                if kind == "master":
                    if events & selectors.EVENT_READ and not self._read_master():
                        self.sel.unregister(self.master)
                    elif events & selectors.EVENT_WRITE:
                        self._write_master()
                elif kind == "listener":
                    self._accept()
                elif kind == "exit":
                    self._finish()
                    return
                elif key.fd in self.clients:
                    if events & selectors.EVENT_WRITE:
                        self._flush_client(key.fd)
                    if events & selectors.EVENT_READ and key.fd in self.clients:
                        self._read_client(key.fd)

    def _finish(self) -> None:
        """The VMM exited: keep its last bytes, record its status, let clients see the end."""
        self.finishing = True
        _, status = os.waitpid(self.vmm_pid, 0)
        while self._read_master():
            pass
        code = os.waitstatus_to_exitcode(status)
        try:
            _write_json_atomic(self.spec.exit_file, {
                "exit_code": code if code >= 0 else None,
                "signal": -code if code < 0 else None,
                "ended_at": time.time(),
            })
        except OSError as exc:
            with contextlib.suppress(OSError):  # stderr may sit on the same full disk
                print(f"glidex keeper: cannot record the exit status: {exc}", file=sys.stderr)
        self.listener.close()
        for path in (self.spec.socket_path, self.spec.pid_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        deadline = time.monotonic() + FINAL_FLUSH_SECONDS
        while time.monotonic() < deadline and any(c.outbuf for c in self.clients.values()):
            for fd in [fd for fd, c in self.clients.items() if c.outbuf]:
                self._flush_client(fd)
            time.sleep(0.01)
        for fd in list(self.clients):
            self._drop(fd)
        self.log.close()

    def forward_signal(self, signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.vmm_pid, signum)


def read_spec(argv: list[str]) -> KeeperSpec | None:
    """The spec from the command line, or for a spare from stdin (None at end of file: its
    supervisor let it go or died before it was needed)."""
    if argv != ["--spare"]:
        return KeeperSpec(**json.loads(argv[0]))
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return None
    spec = KeeperSpec(**json.loads(line))
    if spec.env is not None:
        os.environ.clear()
        os.environ.update(spec.env)
    if spec.stderr_path:
        fd = os.open(spec.stderr_path,
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.dup2(fd, 2)
        os.close(fd)
    return spec


def main(argv: list[str]) -> int:
    os.umask(0o077)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        spec = read_spec(argv)
        if spec is None:
            return 0
        keeper = Keeper(spec)
        keeper.write_pid_file()
    except Exception as exc:  # noqa: BLE001 - told to the supervisor, then we are done
        print(f"error {exc}", flush=True)
        return 1
    signal.signal(signal.SIGTERM, keeper.forward_signal)
    print(f"ready {keeper.vmm_pid}", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    keeper.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
