"""TEST STAND-IN for ``qemu-system-x86_64``: a tiny VMM with no guest, for fault-injection tests.

It is NOT QEMU. It understands just enough of QEMU's command line (``-qmp unix:PATH,...``,
``-append ARGS``) and of QMP (greeting, qmp_capabilities, query-status, stop, cont,
system_powerdown, quit) to stand where the QEMU backend expects a VMM, so tests can make a "VMM"
crash, hang, flood or panic on cue, hundreds of times, in milliseconds. Tests that need a real
guest boot the real QEMU instead.

Behaviour is chosen with ``standin.*`` words in the kernel command line (``-append``):
  standin.counter=MS     print "c<N>" every MS milliseconds (N from 0)
  standin.flood=BYTES    print BYTES bytes of "x" as fast as possible, then idle
  standin.panic=MS       after MS ms print a kernel panic message and exit 0 (as a guest reboot)
  standin.segv=MS        after MS ms print "last words" and kill itself with SIGSEGV
  standin.exit=CODE      exit with CODE once "exit" is typed at the console
  standin.noread         never read the console (stdin)
  standin.qmp_hang       accept QMP connections but never answer
  standin.no_powerdown   ignore system_powerdown
  standin.fail_start=W   exit 1 at once, saying "qemu-system-x86_64: W" on stderr (as QEMU does
                         when it cannot open a disk), before any QMP socket exists
Otherwise it prints "standin ready" and a "/ # " prompt and echoes what it reads, answering
"echo <text>" lines with <text>.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time


def parse(argv: list[str]) -> tuple[str | None, dict[str, str]]:
    qmp_path = None
    options: dict[str, str] = {}
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "-qmp" and value.startswith("unix:"):
            qmp_path = value[5:].split(",")[0]
        elif flag == "-append":
            for word in value.split():
                if word.startswith("standin."):
                    key, _, val = word[8:].partition("=")
                    options[key] = val
    return qmp_path, options


class StandinVmm:
    def __init__(self, qmp_path: str | None, options: dict[str, str]) -> None:
        self.options = options
        self.sel = selectors.DefaultSelector()
        self.paused = False
        self.counter = 0
        self.line = b""
        self.out = sys.stdout.buffer
        self.deadline_actions: list[tuple[float, str]] = []
        now = time.monotonic()
        for action in ("panic", "segv"):
            if action in options:
                self.deadline_actions.append((now + int(options[action]) / 1000, action))
        self.period = int(options["counter"]) / 1000 if "counter" in options else None
        self.next_tick = now
        if qmp_path:
            self.qmp = socket.socket(socket.AF_UNIX)
            self.qmp.bind(qmp_path)
            self.qmp.listen(4)
            self.sel.register(self.qmp, selectors.EVENT_READ, "qmp-listen")
        if "noread" not in options:
            # Read through a separate non-blocking fd: making fd 0 non-blocking would make
            # stdout (the same PTY) non-blocking too, and lose output when the PTY is full.
            self.console_in = os.open(os.ttyname(0), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            self.sel.register(self.console_in, selectors.EVENT_READ, "stdin")

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def run(self) -> None:
        self.write(b"standin ready\r\n/ # ")
        if "flood" in self.options:
            chunk = b"x" * 65536
            remaining = int(self.options["flood"])
            while remaining > 0:
                self.write(chunk[:remaining])
                remaining -= len(chunk)
        while True:
            timeout = self._timeout()
            for key, _ in self.sel.select(timeout):
                if key.data == "stdin":
                    self._on_input()
                elif key.data == "qmp-listen":
                    conn, _ = self.qmp.accept()
                    if "qmp_hang" not in self.options:
                        try:
                            conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
                        except OSError:
                            conn.close()
                            continue
                    self.sel.register(conn, selectors.EVENT_READ, "qmp")
                else:
                    self._on_qmp(key.fileobj)
            self._on_time()

    def _timeout(self) -> float | None:
        moments = [t for t, _ in self.deadline_actions]
        if self.period is not None and not self.paused:
            moments.append(self.next_tick)
        return max(0.0, min(moments) - time.monotonic()) if moments else None

    def _on_time(self) -> None:
        now = time.monotonic()
        for moment, action in list(self.deadline_actions):
            if now >= moment and not self.paused:
                if action == "panic":
                    self.write(b"\r\n[   12.345678] Kernel panic - not syncing: Attempted to kill"
                               b" init! exitcode=0x00000009\r\n")
                    sys.exit(0)
                self.write(b"\r\nlast words\r\n")
                os.kill(os.getpid(), signal.SIGSEGV)
        while self.period is not None and not self.paused and now >= self.next_tick:
            self.write(b"c%d\r\n" % self.counter)
            self.counter += 1
            self.next_tick += self.period

    def _on_input(self) -> None:
        try:
            data = os.read(self.console_in, 65536)
        except BlockingIOError:
            return
        if not data:
            self.sel.unregister(self.console_in)
            return
        if self.paused:
            return
        self.write(data.replace(b"\r", b"\r\n"))
        self.line += data
        while b"\r" in self.line:
            command, _, self.line = self.line.partition(b"\r")
            if command.startswith(b"echo "):
                self.write(command[5:] + b"\r\n/ # ")
            elif command == b"exit" and "exit" in self.options:
                sys.exit(int(self.options["exit"]))

    def _on_qmp(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except ConnectionResetError:  # a client that only probed the socket
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()
            return
        if "qmp_hang" in self.options:
            return
        for line in data.splitlines():
            command = json.loads(line).get("execute")
            reply: dict = {"return": {}}
            if command == "query-status":
                reply = {"return": {"status": "paused" if self.paused else "running",
                                    "running": not self.paused}}
            elif command == "stop":
                self.paused = True
            elif command == "cont":
                self.paused = False
                self.next_tick = time.monotonic()
            conn.sendall(json.dumps(reply).encode() + b"\r\n")
            if command == "quit" or (command == "system_powerdown"
                                     and "no_powerdown" not in self.options):
                sys.exit(0)


def main() -> None:
    qmp_path, options = parse(sys.argv[1:])
    if "fail_start" in options:
        sys.stderr.write(f"qemu-system-x86_64: {options['fail_start']}\n")
        sys.exit(1)
    StandinVmm(qmp_path, options).run()


if __name__ == "__main__":
    main()
