"""BENCHMARK STAND-IN VMM: a tiny program that plays a VMM's part, never a real hypervisor.

Benchmarks that measure Glidex itself (keeper, supervisor, API, dashboard) need a process in the
VMM's place whose own cost is known and small, so what is measured is Glidex. This is it. Stdlib
only, started as a script (``python -S bench/standin_vmm.py MODE ...``) so it imports nothing
from the bench package or from Glidex. Modes:

``emit``   write ``--bytes`` bytes of console-like text (``pattern_stream``) to stdout, as fast as
           possible or at ``--rate`` bytes/s. With ``--wait-signal`` it first blocks SIGUSR1,
           creates ``--ready-file`` and writes nothing until SIGUSR1 arrives, so every reader can
           be attached before the first byte. When done it writes ``--report`` (JSON: start and
           end on the system-wide CLOCK_MONOTONIC, bytes) and then idles until killed.
           ``--bytes 0`` means forever (a steady stream at ``--rate``).
``echo``   copy stdin to stdout (on a raw PTY this is a guest echoing what is typed), after an
           optional ``--banner``.
``qemu``   a STAND-IN ``qemu-system-x86_64``: parses ``-qmp unix:PATH,server=on,wait=off``,
           serves a minimal QMP on it (greeting, ``qmp_capabilities``, ``query-status``,
           ``stop``, ``cont``, ``system_powerdown`` - the last one ends the process with code 0),
           prints a few boot lines and ``/ # `` on stdout and then echoes stdin. It boots
           nothing. ``bench/work/.../bin/qemu-system-x86_64`` wrappers put it first on PATH.
           With ``GLIDEX_BENCH_STANDIN_LOG`` set it appends ``<exec-time> <qmp-ready-time>``
           (CLOCK_MONOTONIC) to that file, so its own start can be subtracted. With
           ``glidex_bench_flood=RATE`` in ``-append`` (the VM's kernel args) it writes
           ``pattern_stream`` text at RATE bytes/s between SIGUSR1 and SIGUSR2.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time

_LINE = b" glidex bench console line: the quick brown fox jumps over the lazy dog 0123456789"


def pattern_block() -> bytes:
    """1 MiB of console-like lines (CR LF endings, as a guest's serial console sends)."""
    lines = []
    size = 0
    n = 0
    while size < 1 << 20:
        line = b"%08d" % n + _LINE + b"\r\n"
        lines.append(line)
        size += len(line)
        n += 1
    return b"".join(lines)[: 1 << 20]


def pattern_stream(total: int) -> bytes:
    """The exact bytes ``emit`` writes for ``--bytes total``."""
    block = pattern_block()
    whole, rest = divmod(total, len(block))
    return block * whole + block[:rest]


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def emit(args: dict) -> None:
    total = int(args.get("bytes", 0))
    rate = float(args.get("rate", 0))
    chunk = int(args.get("chunk", 65536))
    if args.get("wait-signal"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        with open(args["ready-file"], "w") as f:
            f.write(str(os.getpid()))
        signal.sigwait({signal.SIGUSR1})
    block = pattern_block()
    view = memoryview(block * 2)  # chunks may wrap around the block end
    start = time.monotonic()
    sent = 0
    offset = 0
    while total == 0 or sent < total:
        n = chunk if total == 0 else min(chunk, total - sent)
        if rate:
            due = start + (sent + n) / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        _write_all(1, view[offset : offset + n])
        sent += n
        offset = (offset + n) % len(block)
    end = time.monotonic()
    if args.get("report"):
        tmp = args["report"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"start": start, "end": end, "bytes": sent}, f)
        os.replace(tmp, args["report"])
    while True:
        signal.pause()


def echo(args: dict) -> None:
    if args.get("banner"):
        _write_all(1, memoryview(args["banner"].encode()))
    while True:
        data = os.read(0, 65536)
        if not data:
            return
        _write_all(1, memoryview(data))


# -- the qemu-system-x86_64 stand-in ---------------------------------------------------------
_GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 0},
                                 "package": "glidex-bench-standin"}, "capabilities": []}}


def _qmp_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == "-qmp" and argv[i + 1].startswith("unix:"):
            return argv[i + 1][5:].split(",")[0]
    return None


def _flood_rate(argv: list[str]) -> float:
    for i, arg in enumerate(argv[:-1]):
        if arg == "-append":
            for word in argv[i + 1].split():
                if word.startswith("glidex_bench_flood="):
                    return float(word.split("=", 1)[1])
    return 0.0


def qemu(argv: list[str]) -> None:
    exec_time = time.monotonic()
    path = _qmp_path(argv)
    flood_rate = _flood_rate(argv)
    flood = {"on": False, "start": 0.0, "sent": 0, "offset": 0}
    block = pattern_block() if flood_rate else b""
    view = memoryview(block * 2)

    def flood_on(*_: object) -> None:
        flood.update(on=True, start=time.monotonic(), sent=0)

    def flood_off(*_: object) -> None:
        flood["on"] = False

    signal.signal(signal.SIGUSR1, flood_on)
    signal.signal(signal.SIGUSR2, flood_off)
    sel = selectors.DefaultSelector()
    state = {"running": True, "buffers": {}}
    listener = None
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Listen before the path appears (bind a temporary name, then rename): Glidex polls
        # for the path and connects at once, so a bound-but-not-listening socket would refuse.
        temporary = f"{path}.{os.getpid()}"
        listener.bind(temporary)
        listener.listen(64)
        os.rename(temporary, path)
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ, "listen")
    ready_time = time.monotonic()
    log = os.environ.get("GLIDEX_BENCH_STANDIN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{exec_time:.6f} {ready_time:.6f} {os.getpid()}\n")
    banner = (b"glidex bench STAND-IN qemu-system-x86_64: no guest is booted\r\n"
              b"Run /bin/sh\r\n/ # ")
    _write_all(1, memoryview(banner))
    sel.register(0, selectors.EVENT_READ, "stdin")  # stdin and stdout share one PTY: blocking

    def drop(conn: socket.socket) -> None:
        if conn.fileno() >= 0:
            state["buffers"].pop(conn.fileno(), None)
            sel.unregister(conn)
            conn.close()

    def reply(conn: socket.socket, message: dict) -> None:
        try:
            conn.setblocking(True)
            conn.sendall(json.dumps(message).encode() + b"\r\n")
            conn.setblocking(False)
        except OSError:  # a client that connected only to see the socket listens, and left
            drop(conn)

    def powerdown() -> None:
        _write_all(1, memoryview(b"\r\nreboot: Power down\r\n"))
        sys.exit(0)

    def handle(conn: socket.socket, request: dict) -> None:
        command = request.get("execute")
        if command == "query-status":
            status = "running" if state["running"] else "paused"
            reply(conn, {"return": {"status": status, "running": state["running"],
                                    "singlestep": False}})
        elif command in ("qmp_capabilities", "stop", "cont", "system_powerdown"):
            if command == "stop":
                state["running"] = False
            elif command == "cont":
                state["running"] = True
            reply(conn, {"return": {}})
            if command == "system_powerdown":
                powerdown()
        else:
            reply(conn, {"error": {"class": "CommandNotFound",
                                   "desc": f"The command {command} has not been found"}})

    tick = 0.005
    while True:
        if flood["on"]:
            due = int((time.monotonic() - flood["start"]) * flood_rate) - flood["sent"]
            if due > 0:
                offset = flood["offset"]
                n = min(due, len(block))
                _write_all(1, view[offset : offset + n])
                flood["sent"] += n
                flood["offset"] = (offset + n) % len(block)
        for key, _ in sel.select(tick if flood["on"] else 0.05):
            if key.data == "listen":
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "qmp")
                state["buffers"][conn.fileno()] = b""
                reply(conn, _GREETING)
            elif key.data == "stdin":
                try:
                    data = os.read(0, 65536)
                except OSError:
                    data = b""
                if not data:
                    sys.exit(0)
                _write_all(1, memoryview(data))
            else:
                conn = key.fileobj
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    drop(conn)
                    continue
                buffer = state["buffers"][conn.fileno()] + data
                *lines, buffer = buffer.split(b"\n")
                state["buffers"][conn.fileno()] = buffer
                for line in lines:
                    if line.strip() and conn.fileno() >= 0:
                        handle(conn, json.loads(line))


def _options(argv: list[str]) -> dict:
    """``--name value`` pairs and bare ``--flag``s."""
    args: dict = {}
    i = 0
    while i < len(argv):
        name = argv[i].removeprefix("--")
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            args[name] = argv[i + 1]
            i += 2
        else:
            args[name] = True
            i += 1
    return args


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    mode, rest = argv[0], argv[1:]
    if mode == "emit":
        emit(_options(rest))
    elif mode == "echo":
        echo(_options(rest))
    elif mode == "qemu":
        qemu(rest)
    else:
        raise SystemExit(f"unknown stand-in mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
