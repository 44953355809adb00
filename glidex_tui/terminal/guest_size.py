"""The terminal size a guest was told (``stty rows R cols C``), kept beside its console log.

A serial console has no resize signal, so the guest keeps whatever size it was last told until
it reboots. Opening its console again (a new pane, a restarted dashboard) must use that size,
or every line wraps at 80 columns while the guest writes 198. The note is valid for as long as
the console keeper that was running then: it is ignored when the keeper's socket is newer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glidex_core.store import atomic_write

FILE_NAME = "guest-terminal.json"


def remember(log_path: Path, socket_path: Path, columns: int, lines: int) -> None:
    """Note the size told to the guest; quietly nothing if the folder is not ours to write."""
    try:
        atomic_write(log_path.parent / FILE_NAME,
                     json.dumps({"columns": columns, "lines": lines,
                                 "socket": str(socket_path)}).encode())
    except OSError:
        pass


def recall(log_path: Path, socket_path: Path) -> tuple[int, int] | None:
    """(columns, lines) told to the guest on this keeper's watch, or None."""
    note = log_path.parent / FILE_NAME
    try:
        if os.stat(note).st_mtime < os.stat(socket_path).st_mtime:
            return None  # told before this keeper started: the guest has booted since
        data = json.loads(note.read_bytes())
        columns, lines = data["columns"], data["lines"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data.get("socket") != str(socket_path):
        return None
    if not (isinstance(columns, int) and isinstance(lines, int)
            and 2 <= columns <= 1000 and 1 <= lines <= 1000):
        return None
    return columns, lines
