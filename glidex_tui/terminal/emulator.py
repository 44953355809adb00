"""A guest console screen: pyte fed with raw bytes, hardened for a live serial line.

Why a wrapper and not pyte directly (pyte 0.8.2):

- The guest size is fixed (80x24 by default). A serial console has no SIGWINCH, so the guest keeps
  its own idea of the size; the widget crops or shifts the grid instead of resizing it, and only
  :meth:`TerminalEmulator.resize` (the pane's "stty" action) changes it. ``ESC[?3h`` (DECCOLM,
  132 columns) is ignored, as xterm does by default.
- ``ByteStream``-style incremental UTF-8 decoding, so a character split across two reads is fine.
- pyte raises from ``feed`` on input it does not expect (e.g. ``ESC[1;2;3H`` calls
  ``cursor_position`` with three arguments). A console must never die of guest output, so errors
  are logged once, the parser is reset, and parsing resumes with the next character.
- pyte drops answerback (``write_process_input`` is a no-op). busybox asks ``ESC[6n`` before every
  prompt, and ``resize``/vi wait for replies, so replies are collected and handed to ``reply``.
- pyte has no alternate screen (modes 1049, 1047, 47): :class:`GuestScreen` swaps buffers, so vi
  or top leave the shell screen exactly as it was.
- pyte ignores ``ESC ( 0`` and SI/SO in UTF-8 mode, so ncurses line drawing (TERM=vt220/xterm)
  showed ``lqqk``; here G0/G1 designations work in UTF-8 mode too, as in xterm (G1 starts as
  ASCII, like xterm, so a stray SO in binary output does not garble the screen).
- pyte's ``draw`` stops at the first zero-width non-combining character (VS16, ZWJ), dropping the
  rest of the text; it leaves half a wide character behind when either half is overwritten (the
  row then renders one cell too long or short); it puts a wide character in the last column with
  no room for its right half; and it attaches a combining mark after a wide character to the
  empty right half. :meth:`GuestScreen.draw` fixes all four (xterm behaviour).
- 256-colour indexes 0-15 are mapped to the 16 ANSI colour names, so they follow the theme's ANSI
  palette like SGR 30-37/90-97 do (pyte turns them into fixed hex values).

Nothing here imports Textual (Rich only measures cell widths), and nothing here sits on the
keeper's byte path: the keeper is a separate process, and this only runs in the dashboard.
"""

from __future__ import annotations

import codecs
import copy
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import pyte
from pyte import charsets, modes
from pyte.screens import wcwidth
from rich.cells import cell_len

log = logging.getLogger(__name__)

# pyte records private modes shifted left by 5 (even ones it does not implement).
DECCKM = 1 << 5  # ESC[?1h: cursor keys send SS3 instead of CSI
BRACKETED_PASTE = 2004 << 5  # ESC[?2004h: wrap pastes in ESC[200~ ... ESC[201~
ALT_SCREEN_MODES = (47, 1047, 1049)  # private modes that switch to the alternate screen
_DECCOLM = 3  # private mode: 80/132 columns, ignored (the guest size is fixed)


class GuestScreen(pyte.Screen):
    """A pyte Screen with answerback, an alternate screen and column-exact drawing.

    Args:
        columns: Width in cells.
        lines: Height in rows.
        alternate_screen: Honour modes 47/1047/1049 (off for one-line history rendering).
    """

    def __init__(self, columns: int, lines: int, *, alternate_screen: bool = True) -> None:
        self.replies: list[str] = []
        self.alternate_screen_enabled = alternate_screen
        self._main_buffer: Any = None  # the normal screen's rows while the alternate one shows
        self._alt_buffer: Any = None  # kept for mode 47, which does not clear it
        self._alt_saved: tuple | None = None  # cursor state saved by 1049
        super().__init__(columns, lines)

    # -- answerback -----------------------------------------------------------------------------
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

    # -- reset, modes, alternate screen ---------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.g1_charset = charsets.LAT1_MAP  # xterm: G1 is ASCII until ESC ) 0 designates it
        self._main_buffer = None
        self._alt_buffer = None
        self._alt_saved = None

    @property
    def in_alternate_screen(self) -> bool:
        return self._main_buffer is not None

    def set_mode(self, *mode_list: int, **kwargs: Any) -> None:
        self._private_modes(mode_list, kwargs, super().set_mode, self._enter_alternate)

    def reset_mode(self, *mode_list: int, **kwargs: Any) -> None:
        self._private_modes(mode_list, kwargs, super().reset_mode, self._leave_alternate)

    def _private_modes(self, mode_list: tuple[int, ...], kwargs: dict[str, Any],
                       pyte_mode: Any, alternate: Any) -> None:
        """Take the private modes pyte lacks (the alternate screen) or must not act on
        (DECCOLM: 132 columns is ignored, as xterm does by default); pass on the rest."""
        if not kwargs.get("private"):
            pyte_mode(*mode_list, **kwargs)
            return
        for mode in mode_list:
            if mode == _DECCOLM:
                continue
            if mode in ALT_SCREEN_MODES:
                if self.alternate_screen_enabled:
                    alternate(mode)
                continue
            pyte_mode(mode, **kwargs)

    def _new_buffer(self) -> Any:
        return type(self.buffer)(self.buffer.default_factory)

    def _enter_alternate(self, mode: int) -> None:
        if mode == 1049:  # save the cursor as DECSC does, then switch and clear
            self._alt_saved = (
                copy.copy(self.cursor),
                self.g0_charset,
                self.g1_charset,
                self.charset,
                modes.DECOM in self.mode,
                modes.DECAWM in self.mode,
            )
        if self._main_buffer is None:
            self._main_buffer = self.buffer
            alt = self._alt_buffer if self._alt_buffer is not None else self._new_buffer()
            self._alt_buffer = None
            self.buffer = alt
        if mode == 1049:
            self.buffer.clear()
        self.mode.add(1049 << 5)
        self.dirty.update(range(self.lines))

    def _leave_alternate(self, mode: int) -> None:
        if self._main_buffer is not None:
            if mode == 1047:
                self.buffer.clear()  # 1047 clears the alternate screen on the way out
            self._alt_buffer = self.buffer
            self.buffer = self._main_buffer
            self._main_buffer = None
        self.mode.discard(1049 << 5)
        if mode == 1049 and self._alt_saved is not None:
            cursor, g0, g1, charset, origin, wrap = self._alt_saved
            self._alt_saved = None
            self.cursor = cursor
            self.g0_charset, self.g1_charset, self.charset = g0, g1, charset
            (self.mode.add if origin else self.mode.discard)(modes.DECOM)
            (self.mode.add if wrap else self.mode.discard)(modes.DECAWM)
            self.ensure_hbounds()
            self.ensure_vbounds()
        self.dirty.update(range(self.lines))

    # -- resize (only from the pane's stty action) ------------------------------------------------
    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize, keeping the cursor's row on screen (drop rows from the top only if needed)."""
        lines = max(1, lines or self.lines)
        columns = max(1, columns or self.columns)
        if lines == self.lines and columns == self.columns:
            return
        drop = max(0, self.cursor.y - (lines - 1))
        for buffer in (self.buffer, self._main_buffer, self._alt_buffer):
            if buffer is not None:
                self._fit(buffer, drop, lines, columns)
        self.cursor.y -= drop
        if self._alt_saved is not None:
            self._alt_saved[0].y = max(0, min(self._alt_saved[0].y - drop, lines - 1))
            self._alt_saved[0].x = min(self._alt_saved[0].x, columns - 1)
        old_columns = self.columns
        self.lines, self.columns = lines, columns
        if columns > old_columns:
            self.tabstops.update(range(max(8, (old_columns + 7) // 8 * 8), columns, 8))
        self.margins = None
        self.cursor.x = min(self.cursor.x, columns)
        self.dirty.update(range(lines))

    def _fit(self, buffer: Any, drop: int, lines: int, columns: int) -> None:
        rows = {y - drop: row for y, row in buffer.items() if 0 <= y - drop < lines}
        buffer.clear()
        for y, row in rows.items():
            for x in [x for x in row if x >= columns]:
                del row[x]
            last = row.get(columns - 1)
            if last is not None and last.data and wcwidth(last.data[0]) == 2:
                row[columns - 1] = last._replace(data=" ")  # its right half was cut off
            buffer[y] = row

    # -- drawing --------------------------------------------------------------------------------
    def draw(self, data: str) -> None:
        """Draw text at the cursor, placing every character by column (see the module notes)."""
        data = data.translate(self.g1_charset if self.charset else self.g0_charset)
        columns = self.columns
        autowrap = modes.DECAWM in self.mode
        insert = modes.IRM in self.mode
        cursor = self.cursor
        line = self.buffer[cursor.y]
        attrs = cursor.attrs
        cells: dict[str, Any] = {}  # one Char per distinct character in this call
        for char in data:
            width = 1 if " " <= char <= "~" else wcwidth(char)
            if width <= 0:
                if width == 0 and unicodedata.combining(char):
                    self._combine(char)
                continue  # other zero-width or unprintable characters: dropped, drawing goes on
            if width > columns:
                continue
            if cursor.x + width > columns:
                if autowrap:
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                    cursor = self.cursor
                    line = self.buffer[cursor.y]
                else:
                    cursor.x = columns - width
            if insert:
                self.insert_characters(width)
            x = cursor.x
            old = line.get(x)
            if width == 2 or (old is not None and not (old.data and old.data.isascii())):
                self._split_wide(line, x, width)
            cell = cells.get(char)
            if cell is None:
                cell = cells[char] = attrs._replace(data=char)
            line[x] = cell
            if width == 2:
                line[x + 1] = attrs._replace(data="")
            cursor.x = x + width
        self.dirty.add(cursor.y)

    def _split_wide(self, line: Any, x: int, width: int) -> None:
        """Blank the other half of any wide character that cells x..x+width-1 overwrite."""
        cell = line.get(x)
        if cell is not None and cell.data == "" and x > 0:
            left = line.get(x - 1)
            if left is not None and left.data:
                line[x - 1] = left._replace(data=" ")
        last = x + width - 1
        cell = line.get(last)
        if (
            cell is not None
            and cell.data
            and not cell.data.isascii()
            and wcwidth(cell.data[0]) == 2
            and last + 1 < self.columns
        ):
            right = line.get(last + 1)
            if right is not None and right.data == "":
                line[last + 1] = right._replace(data=" ")

    def _combine(self, char: str) -> None:
        """Attach a combining mark to the character before the cursor (the glyph, not a stub)."""
        y, x = self.cursor.y, self.cursor.x - 1
        if x < 0:
            if y == 0:
                return
            y, x = y - 1, self.columns - 1
        line = self.buffer[y]
        if x > 0 and line[x].data == "":
            x -= 1
        last = line[x]
        if not last.data:
            return
        line[x] = last._replace(data=unicodedata.normalize("NFC", last.data + char))
        self.dirty.add(y)

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        """ED with background colour erase: erased rows take the current background entirely.

        pyte only restyles the cells a row already holds, so ``ESC[44m ESC[2J`` (mc, top, dialog)
        left most of the screen in the default colour instead of blue.
        """
        if how == 0:
            rows = range(self.cursor.y + 1, self.lines)
        elif how == 1:
            rows = range(self.cursor.y)
        elif how in (2, 3):
            rows = range(self.lines)
        else:
            return
        self.dirty.update(rows)
        attrs = self.cursor.attrs
        if attrs == self.default_char:
            for y in rows:
                self.buffer.pop(y, None)
        else:
            for y in rows:
                line = self.buffer[y]
                line.clear()
                for x in range(self.columns):
                    line[x] = attrs
        if how in (0, 1):
            self.erase_in_line(how)

    # -- colours --------------------------------------------------------------------------------
    def select_graphic_rendition(self, *attrs: int, **kwargs: Any) -> None:
        """SGR, with 256-colour indexes 0-15 turned into the ANSI colours they stand for."""
        if kwargs.get("private"):
            return  # CSI ? ... m is not SGR (xterm: query key modifiers)
        fixed: list[int] = []
        i, n = 0, len(attrs)
        while i < n:
            attr = attrs[i]
            if attr in (38, 48) and i + 1 < n:
                if attrs[i + 1] == 5 and i + 2 < n:
                    index = attrs[i + 2]
                    if index < 16:
                        bright = 60 if index >= 8 else 0
                        fixed.append((30 if attr == 38 else 40) + bright + index % 8)
                    else:
                        fixed.extend(attrs[i : i + 3])
                    i += 3
                    continue
                if attrs[i + 1] == 2:
                    fixed.extend(attrs[i : i + 5])
                    i += 5
                    continue
            fixed.append(attr)
            i += 1
        super().select_graphic_rendition(*fixed)


_AFTER_CHARSET_SWITCH = re.compile(rb"(?<=\x1b%[@G8])")


class _GuardedStream(pyte.Stream):
    """A bytes-fed stream whose parser errors are reported and skipped instead of raised.

    - Decodes UTF-8 incrementally (``ESC % @`` switches to Latin-1 and ``ESC % G`` back, like
      ``pyte.ByteStream``), but tells pyte's parser it is *not* in UTF-8 mode, because that is
      the only way to make it honour ``ESC ( 0`` / ``ESC ) 0`` and SI/SO (DEC line drawing).
    - pyte's ``Stream.feed`` sends control characters one at a time through ``_send_to_parser``,
      which re-initialises the parser and re-raises on any error. Catching it here (instead of
      around ``feed``) means the rest of the chunk is still parsed rather than lost.
    """

    def __init__(self, screen: pyte.Screen, on_error: Callable[[BaseException], None]) -> None:
        self._on_error = on_error
        self.utf8 = True
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        super().__init__(screen)
        self.use_utf8 = False  # read by the parser only: charset designations are honoured

    def feed_bytes(self, data: bytes) -> None:
        if b"\x1b%" in data:  # the encoding may change mid-chunk: decode piece by piece
            for piece in _AFTER_CHARSET_SWITCH.split(data):
                self._feed_decoded(piece)
        else:
            self._feed_decoded(data)

    def _feed_decoded(self, data: bytes) -> None:
        text = self.decoder.decode(data) if self.utf8 else data.decode("latin-1")
        self.feed(text)

    def select_other_charset(self, code: str) -> None:
        if code == "@":
            self.utf8 = False
            self.decoder.reset()
        elif code in ("G", "8"):
            self.utf8 = True

    def reset_state(self) -> None:
        """Back to the ground state: a fresh parser and no half-decoded character."""
        self.decoder.reset()
        self._initialize_parser()

    def _send_to_parser(self, data: str) -> bool | None:
        try:
            return super()._send_to_parser(data)
        except Exception as exc:  # noqa: BLE001 - guest output must never kill the console
            self._on_error(exc)
            return True  # the fresh parser is back in its ground state: plain text allowed


# Sequences whose effect outlasts the text around them, replayed when output is fast-forwarded.
_STATE_SEQUENCE = re.compile(
    rb"\x1bc"  # RIS
    rb"|\x1b\[\?([0-9;]*)([hl])"  # private modes (cursor keys, paste, alternate screen, ...)
    rb"|\x1b\[([0-9;:]*)m"  # SGR
    rb"|\x1b\[[0-9;]*r"  # scroll region
    rb"|\x1b[()][0-9A-Za-z]"  # G0/G1 designation
    rb"|[\x0e\x0f]"  # SO/SI
)
# Points after which the earlier screen content no longer matters: clear screen (with the cursor
# move that usually precedes it), reset, alternate screen switches. Found with rfind (memrchr
# speed) rather than a regex, since this runs on every fast-forward of a flood.
_SCREEN_RESETS = (b"\x1b[2J", b"\x1bc", b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?1047h",
                  b"\x1b[?1047l", b"\x1b[?47h", b"\x1b[?47l")
_CURSOR_MOVE_BEFORE = re.compile(rb"\x1b\[[0-9;]*H$")
MAX_REPLAYED_SGR = 8


def plan_fast_forward(data: bytes, keep: int) -> int:
    """Where to resume feeding so only about ``keep`` bytes of ``data`` go through pyte.

    Returns an index ``cut``: ``data[:cut]`` may be skipped (pass it to
    :meth:`TerminalEmulator.fast_forward`), ``data[cut:]`` must be fed. The cut is at a point
    where the screen is rebuilt anyway (a clear screen, reset or alternate-screen switch within
    the last ``8 * keep`` bytes), else just after a newline, else at an escape sequence start, so
    feeding never begins inside a sequence or a line.
    """
    if len(data) <= keep:
        return 0
    cut = len(data) - keep
    window = max(0, len(data) - 8 * keep)
    if data.find(b"\x1b", window) != -1:
        last_reset = max(data.rfind(marker, window) for marker in _SCREEN_RESETS)
        if last_reset != -1:
            if data.startswith(b"\x1b[2J", last_reset):  # include the usual ESC[H before it
                move = _CURSOR_MOVE_BEFORE.search(data, max(0, last_reset - 16), last_reset)
                if move is not None:
                    return move.start()
            return last_reset
    newline = data.find(b"\n", cut)
    if newline != -1:
        return newline + 1
    escape = data.find(b"\x1b", cut)
    return escape if escape != -1 else len(data)


def iter_cells(screen: pyte.Screen, y: int, width: int) -> Iterator[tuple[int, str, Any]]:
    """Walk row ``y`` by column: ``(x, text, char)`` for each visible glyph, up to ``width`` cells.

    ``text`` takes exactly one cell, or two for a wide character (whose right-half stub is then
    skipped), in Rich's measure too, so a row never renders one cell too long or short:

    - a stub whose glyph was overwritten, or a wide glyph whose stub is missing or falls outside
      ``width``, shows as a blank;
    - a glyph Rich measures differently from wcwidth is padded or replaced by U+FFFD.
    """
    line = screen.buffer.get(y)
    default = screen.default_char
    columns = min(screen.columns, width)
    x = 0
    while x < columns:
        char = line.get(x, default) if line is not None else default
        data = char.data
        if data.isascii() and data:
            yield x, data, char
            x += 1
            continue
        if not data:
            yield x, " ", char  # an orphaned right half
            x += 1
            continue
        cells = 1
        if wcwidth(data[0]) == 2:
            right = line.get(x + 1) if x + 1 < columns and line is not None else None
            if right is not None and right.data == "":
                cells = 2
            else:
                data = " "  # a left half without its right half, or cut off by the crop
        measured = cell_len(data)
        if measured < cells:
            data += " " * (cells - measured)
        elif measured > cells:
            data = "\ufffd" * cells
        yield x, data, char
        x += cells


def row_text(screen: pyte.Screen, y: int, width: int) -> tuple[str, list[int]]:
    """Row ``y`` as text (cropped to ``width`` cells) and the column of every character in it."""
    parts: list[str] = []
    columns: list[int] = []
    for x, data, _char in iter_cells(screen, y, width):
        parts.append(data)
        columns.extend([x] * len(data))
    return "".join(parts), columns


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
        self.screen = GuestScreen(columns, lines)
        self.stream = _GuardedStream(self.screen, self._on_error)
        self.reply = reply
        self.errors = 0
        """How many pyte errors were contained (only the first is logged with a traceback)."""
        self.skipped_bytes = 0
        """Output bytes fast-forwarded over (never drawn; the console log keeps them)."""
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
            self.stream.feed_bytes(data)
        except Exception as exc:  # noqa: BLE001 - e.g. from the plain-text fast path
            self._on_error(exc)
            self._reset_parser()
        return self._collect(before, answer)

    def fast_forward(self, skipped: bytes) -> set[int]:
        """Skip output nobody could read: keep its lasting state, clear the screen, draw nothing.

        Used when a guest prints faster than pyte parses (``seq 1 2000000``). Only what outlasts
        the skipped text is applied: a reset, private modes (cursor keys, bracketed paste,
        alternate screen) by their last value, the scroll region, G0/G1/SO/SI and the last few
        SGRs. Then the screen is cleared with the cursor on the bottom row, where streaming
        output leaves it; the caller feeds the tail (from :func:`plan_fast_forward`) next.
        Queries in the skipped bytes are not answered.
        """
        screen = self.screen
        before = (screen.cursor.x, screen.cursor.y, screen.cursor.hidden)
        self.skipped_bytes += len(skipped)
        try:
            self.stream.reset_state()
            reset_at = skipped.rfind(b"\x1bc")
            if reset_at != -1:
                screen.reset()
                skipped = skipped[reset_at + 2 :]
            private: dict[bytes, bytes] = {}
            sgr: list[bytes] = []
            other: dict[bytes, bytes] = {}
            for match in _STATE_SEQUENCE.finditer(skipped):
                seq = match.group()
                if match.group(2) is not None:
                    for number in match.group(1).split(b";"):
                        private.pop(number, None)
                        private[number] = match.group(2)
                elif match.group(3) is not None:
                    if match.group(3).split(b";")[0] in (b"", b"0"):
                        sgr.clear()
                    sgr.append(seq)
                elif seq in (b"\x0e", b"\x0f"):
                    other[b"shift"] = seq
                elif seq.startswith((b"\x1b(", b"\x1b)")):
                    other[seq[:2]] = seq
                else:
                    other[b"margins"] = seq
            prelude = b"".join(b"\x1b[?" + n + h for n, h in private.items() if n)
            prelude += other.pop(b"margins", b"")
            self.stream.feed_bytes(prelude)
            screen.buffer.clear()
            self.stream.feed_bytes(b"".join(other.values()) + b"".join(sgr[-MAX_REPLAYED_SGR:]))
            screen.cursor.x = 0
            screen.cursor.y = screen.margins.bottom if screen.margins else screen.lines - 1
        except Exception as exc:  # noqa: BLE001 - as in feed: never raise out of the emulator
            self._on_error(exc)
            self._reset_parser()
        screen.replies.clear()
        screen.dirty.update(range(screen.lines))
        return self._collect(before, answer=False)

    def _collect(self, before: tuple[int, int, bool], answer: bool) -> set[int]:
        screen = self.screen
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

    def resize(self, columns: int, lines: int) -> None:
        """Change the guest size (after telling the guest with ``stty``)."""
        self.screen.resize(lines, columns)
        self.screen.dirty.clear()

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

    @property
    def alternate_screen(self) -> bool:
        """A full-screen program switched to the alternate screen (1049/1047/47)."""
        return self.screen.in_alternate_screen

    def text_lines(self) -> list[str]:
        """The screen as plain text, one string per row, trailing blanks removed."""
        screen = self.screen
        return [row_text(screen, y, screen.columns)[0].rstrip() for y in range(screen.lines)]
