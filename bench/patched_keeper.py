"""The console keeper with the PROPOSED batching fix applied in memory (bench-only).

``python -m bench.patched_keeper SPEC_JSON`` behaves like ``python -m glidex_core.console.keeper``
except that ``Keeper._read_master`` drains the PTY before passing output on: a PTY read returns
at most 4 KiB (the line discipline's buffer), so the keeper today makes one log write and one
send per client for every 4 KiB. Reading until the PTY is empty (at most ``BATCH_LIMIT``) makes
that one write and one send per client per batch; when the keeper keeps up, batches stay small
and latency does not change. This is the monkeypatch equivalent of the diff in
bench/RESULTS.md, so before and after run side by side in the same benchmark.
"""

from __future__ import annotations

import errno
import os
import sys

from glidex_core.console import keeper

BATCH_LIMIT = 64 << 10


def _read_master(self: keeper.Keeper) -> bool:
    """Read what the VMM wrote, until the PTY is empty; False once the PTY has hung up."""
    chunks: list[bytes] = []
    size = 0
    alive = True
    while size < BATCH_LIMIT:
        try:
            data = os.read(self.master, keeper.READ_CHUNK)
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


keeper.Keeper._read_master = _read_master

if __name__ == "__main__":
    sys.exit(keeper.main(sys.argv[1:]))
