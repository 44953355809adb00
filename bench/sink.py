"""Console clients for the throughput benchmark: N connections to a keeper socket in one process.

``python -m bench.sink SOCKET N EXPECTED_BYTES`` connects N times, prints ``attached``, then
reads every connection until each has EXPECTED_BYTES (or is closed by the keeper, i.e. dropped),
and prints ``{"counts", "crcs", "end", "closed"}``: bytes and CRC-32 per connection and when the
last byte arrived (CLOCK_MONOTONIC). One process for all N keeps the client side cheap, so the
keeper is what is measured.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import sys
import time
import zlib

STALL_SECONDS = 20.0


def main(path: str, n: int, expected: int) -> None:
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(n):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
        socks.append(sock)
    print("attached", flush=True)
    counts = [0] * n
    crcs = [0] * n
    closed = [False] * n
    open_count = n
    end = None
    last_progress = time.monotonic()
    while open_count:
        events = sel.select(timeout=1.0)
        if not events and time.monotonic() - last_progress > STALL_SECONDS:
            break
        for key, _ in events:
            i = key.data
            try:
                data = key.fileobj.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed[i] = counts[i] < expected
                sel.unregister(key.fileobj)
                open_count -= 1
                continue
            counts[i] += len(data)
            crcs[i] = zlib.crc32(data, crcs[i])
            end = last_progress = time.monotonic()
            if counts[i] >= expected:
                sel.unregister(key.fileobj)
                open_count -= 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"counts": counts, "crcs": crcs, "end": end, "closed": closed,
                      "cpu": usage.ru_utime + usage.ru_stime}), flush=True)
    for sock in socks:
        sock.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
