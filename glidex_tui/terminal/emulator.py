"""A guest console screen: pyte fed with raw bytes, hardened for a live serial line.

Why a wrapper and not pyte directly:

- The guest size is fixed (80x24 by default). A serial console has no SIGWINCH, so the guest keeps
  its own idea of the size; the widget crops or shifts the grid instead of resizing it.
- ``pyte.ByteStream`` decodes UTF-8 incrementally, so a character split across two reads is fine.
- pyte raises from ``feed`` on input it does not expect (e.g. ``ESC[1;2;3H`` calls
  ``cursor_position`` with three arguments). A console must never die of guest output, so errors
  are logged once, the parser is reset, and parsing resumes with the next character.
- pyte drops answerback (``write_process_input`` is a no-op). busybox asks ``ESC[6n`` before every
  prompt, and ``resize``/vi wait for replies, so replies are collected and handed to ``reply``.

Nothing here imports Textual, and nothing here sits on the keeper's byte path: the keeper is a
separate process, and this only runs in the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pyte
from pyte import modes

log = logging.getLogger(__name__)

# pyte records private modes shifted left by 5 (even ones it does not implement).
DECCKM = 1 << 5  # ESC[?1h: cursor keys send SS3 instead of CSI
BRACKETED_PASTE = 2004 << 5  # ESC[?2004h: wrap pastes in ESC[200~ ... ESC[201~


class _AnsweringScreen(pyte.Screen):
    """A pyte Screen that queues answerback (DA, DSR, CPR) instead of dropping it."""

    def __init__(self, columns: int, lines: int) -> None:
        self.replies: list[str] = []
        super().__init__(columns, lines)

    def write_process_input(self, data: str) -> None:
        self.replies.append(data)

    def report_device_status(self, mode: int, **kwargs: Any) -> None:
        """Answer DSR; CPR is clamped to the last column, as real terminals report it.

        pyte leaves ``cursor.x == columns`` after writing the last column (a pending wrap), which
        would report column 81 on an 80-column screen. ``**kwargs`` swallows ``private=True``
        (DECXCPR, ``ESC[?6n``), which pyte's own method would reject with a TypeError.
        """
        if mode != 6:
            super().report_device_status(mode)
            return
        x = min(self.cursor.x, self.columns - 1) + 1
        y = self.cursor.y + 1
        if modes.DECOM in self.mode and self.margins is not None:
            y -= self.margins.top
        self.write_process_input(f"\x1b[{y};{x}R")


class _GuardedStream(pyte.ByteStream):
    """A ByteStream whose parser errors are reported and skipped instead of raised.

    pyte's ``Stream.feed`` sends control characters one at a time through ``_send_to_parser``,
    which re-initialises the parser and re-raises on any error. Catching it here (instead of around
    ``feed``) means the rest of the chunk is still parsed rather than lost.
    """

    def __init__(self, screen: pyte.Screen, on_error: Callable[[BaseException], None]) -> None:
        self._on_error = on_error
        super().__init__(screen)

    def _send_to_parser(self, data: str) -> bool | None:
        try:
            return super()._send_to_parser(data)
        except Exception as exc:  # noqa: BLE001 - guest output must never kill the console
            self._on_error(exc)
            return True  # the fresh parser is back in its ground state: plain text allowed


class TerminalEmulator:
    """The screen state of one guest console.

    Args:
        columns: Guest terminal width (what ``stty cols`` says inside the guest).
        lines: Guest terminal height.
        reply: Called with answerback bytes (e.g. ``b"\\x1b[24;5R"``) that must go to the guest.
    """

    def __init__(
        self,
        columns: int = 80,
        lines: int = 24,
        reply: Callable[[bytes], None] | None = None,
    ) -> None:
        self.screen = _AnsweringScreen(columns, lines)
        self.stream = _GuardedStream(self.screen, self._on_error)
        self.reply = reply
        self.errors = 0
        """How many pyte errors were contained (only the first is logged with a traceback)."""
        self.screen.dirty.clear()  # the widget paints everything once anyway

    # -- feeding -------------------------------------------------------------------------------
    def feed(self, data: bytes, *, answer: bool = True) -> set[int]:
        """Parse guest output; return the rows that changed (cursor rows included). Never raises.

        Args:
            data: Raw console bytes, cut anywhere (mid-sequence and mid-character are fine).
            answer: Hand answerback to ``reply``. False when replaying a log: the queries in it
                were asked long ago, and answering them now would type junk into the guest.
        """
        screen = self.screen
        cursor = screen.cursor
        before = (cursor.x, cursor.y, cursor.hidden)
        try:
            self.stream.feed(data)
        except Exception as exc:  # noqa: BLE001 - e.g. from the plain-text fast path
            self._on_error(exc)
            self._reset_parser()
        cursor = screen.cursor  # pyte may replace the cursor object (reset, restore)
        dirty = set(screen.dirty)
        screen.dirty.clear()
        if before != (cursor.x, cursor.y, cursor.hidden):
            dirty.add(before[1])
            dirty.add(cursor.y)
        if screen.replies:
            replies, screen.replies = screen.replies, []
            if answer and self.reply is not None:
                self._send_reply("".join(replies).encode())
        return {y for y in dirty if 0 <= y < screen.lines}

    def _send_reply(self, data: bytes) -> None:
        try:
            self.reply(data)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - a broken socket is the pane's business, not ours
            log.exception("console answerback callback failed")

    def _on_error(self, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1:
            log.warning(
                "terminal emulator: unparsable guest output, skipped (further errors are only "
                "counted): %r",
                exc,
                exc_info=exc,
            )
        else:
            log.debug("terminal emulator error #%d: %r", self.errors, exc)

    def _reset_parser(self) -> None:
        try:
            self.stream._initialize_parser()
        except Exception:  # noqa: BLE001 - leave the old parser if even this fails
            log.exception("terminal emulator: parser reset failed")

    # -- state the widget needs ----------------------------------------------------------------
    @property
    def columns(self) -> int:
        return self.screen.columns

    @property
    def lines(self) -> int:
        return self.screen.lines

    @property
    def cursor_x(self) -> int:
        """Cursor column, clamped to the grid (pyte allows ``columns`` for a pending wrap)."""
        return min(self.screen.cursor.x, self.screen.columns - 1)

    @property
    def cursor_y(self) -> int:
        return self.screen.cursor.y

    @property
    def cursor_hidden(self) -> bool:
        """DECTCEM (``ESC[?25l``): the guest asked for no visible cursor."""
        return bool(self.screen.cursor.hidden)

    @property
    def application_cursor(self) -> bool:
        """DECCKM (``ESC[?1h``): arrow keys must be sent as SS3 sequences."""
        return DECCKM in self.screen.mode

    @property
    def bracketed_paste(self) -> bool:
        """Mode 2004: the guest wants pastes wrapped in ``ESC[200~`` / ``ESC[201~``."""
        return BRACKETED_PASTE in self.screen.mode

    def text_lines(self) -> list[str]:
        """The screen as plain text, one string per row, trailing blanks removed."""
        return [line.rstrip() for line in self.screen.display]
