"""The raw PTY baseline: a bare reader of a PTY fed by the stand-in VMM, nothing else.

Started as ``python -m bench.pty_reader SPEC_JSON`` with ``{"argv": [...], "bytes": N}``. It
starts the stand-in on a PTY exactly as the console keeper starts a VMM (``pty.fork``, raw mode,
output translation off), prints ``ready <pid>``, then reads the PTY master in 64 KiB reads until
N bytes arrived and prints ``{"bytes", "crc", "end"}`` (end on CLOCK_MONOTONIC). No log, no
clients: the most a single reader can take out of this PTY on this machine.
"""

from __future__ import annotations

import json
import os
import pty
import sys
import termios
import time
import tty
import zlib


def main(spec: dict) -> None:
    pid, master = pty.fork()
    if pid == 0:
        tty.setraw(0)
        attrs = termios.tcgetattr(0)
        attrs[1] &= ~(termios.ONLCR | termios.OCRNL | termios.ONOCR | termios.ONLRET)
        termios.tcsetattr(0, termios.TCSANOW, attrs)
        os.execvp(spec["argv"][0], spec["argv"])
    print(f"ready {pid}", flush=True)
    expected = spec["bytes"]
    count = 0
    crc = 0
    end = None
    while count < expected:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        count += len(data)
        crc = zlib.crc32(data, crc)
        end = time.monotonic()
    print(json.dumps({"bytes": count, "crc": crc, "end": end}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
