"""Process identity that survives pid reuse: a pid plus its kernel start time.

Stdlib only, because the console keeper imports it and its memory counts once per VM.
"""

from __future__ import annotations


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_same_process(pid: int | None, ticks: int | None) -> bool:
    """True only if ``pid`` is alive and is the very process that started at ``ticks``."""
    return bool(pid) and ticks is not None and start_ticks(pid) == ticks
