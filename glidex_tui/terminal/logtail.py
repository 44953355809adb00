"""Read the end of a console log, so a pane attached to a running guest shows what came before.

The keeper sends attached clients only live bytes; history lives in the VM's console log. pyte is
pure Python (~1 MB/s), so only a bounded tail is replayed, never the whole log. The window starts
after its first newline so the replay does not begin in the middle of a line or an escape sequence.

The pane connects *before* reading the tail, so nothing printed in between is lost; the few bytes
that then arrive both in the tail and on the socket are dropped by :func:`overlap`.
"""

from __future__ import annotations

import os
from pathlib import Path

from glidex_tui.terminal.history import ConsoleLog

DEFAULT_TAIL_BYTES = 64 * 1024


def log_size(path: Path) -> int:
    """Current size of the log, 0 if it does not exist (yet)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def read_log_tail(path: Path, max_bytes: int = DEFAULT_TAIL_BYTES) -> tuple[bytes, int]:
    """Return (tail bytes, file offset where the tail ends); (b"", 0) if the log is unreadable.

    If the file is longer than ``max_bytes`` the tail starts after the first newline inside the
    last ``max_bytes`` (an empty tail if that window holds no newline at all).
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(size - start)
    except OSError:
        return b"", 0
    end = start + len(data)
    if start > 0:
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else b""
    return data, end


def overlap(tail: bytes, head: bytes, limit: int) -> int:
    """How many leading bytes of ``head`` (first live chunk) repeat the end of ``tail``.

    ``limit`` is how much the log grew between connecting and reading it; only that much can be
    duplicated, and with ``limit == 0`` (the usual case) nothing is ever dropped.
    """
    if not head or not tail:
        return 0
    start = len(tail) - min(limit, len(head), len(tail))
    first = head[:1]
    i = tail.find(first, start)  # longest candidate first: the earliest start in the window
    while i != -1:
        if head.startswith(tail[i:]):
            return len(tail) - i
        i = tail.find(first, i + 1)
    return 0


def read_console_tail(log: ConsoleLog, max_bytes: int = DEFAULT_TAIL_BYTES) -> tuple[bytes, int]:
    """Like :func:`read_log_tail`, over a :class:`ConsoleLog` (rotated parts included).

    Returns (tail bytes, offset in the combined log where the tail ends).
    """
    log.refresh()
    size = log.size
    start = max(0, size - max_bytes)
    data = log.read(start, size - start)
    end = start + len(data)
    if start > 0:
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else b""
    return data, end
