"""One pyte screen row -> one Textual ``Strip``, with styles memoised per attribute tuple.

Why this shape (see notes/textual-and-pyte.md §1.2):

- The widget uses the line API, so only changed rows are rebuilt; a full-screen Rich renderable
  per chunk is O(rows x cols) Python work on every read.
- A guest draws with few distinct attribute combinations, so ``char_style`` is an ``lru_cache``
  keyed by the Char's attribute tuple: one ``Style`` object per combination, shared by all cells.
- Equal-style neighbours are merged into one Segment; pyte's ``""`` stub after a wide glyph is
  skipped because Rich already counts the glyph as two cells.
- "default" colours map to no colour, so the pane's theme shows through; ``reverse`` stays a style
  flag (not a colour swap) so reversed default colours still resolve against the theme.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pyte
from pyte import charsets, modes
from pyte.screens import Cursor
from rich.cells import cell_len
from rich.color import Color, ColorParseError
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from glidex_tui.terminal.emulator import TerminalEmulator, iter_cells, row_text

_ANSI_NAMES = {
    "black": "black",
    "red": "red",
    "green": "green",
    "brown": "yellow",  # pyte calls SGR 33 "brown"
    "yellow": "yellow",
    "blue": "blue",
    "magenta": "magenta",
    "cyan": "cyan",
    "white": "white",
}


@lru_cache(maxsize=512)
def map_colour(name: str) -> Color | None:
    """A pyte colour name -> Rich Color; None for "default" or anything unparsable.

    pyte gives the eight ANSI names (SGR 33 is "brown"), ``bright<name>`` for SGR 90-97/100-107,
    and a 6-digit hex string without '#' for 256-colour and truecolour SGR.
    """
    if not name or name == "default":
        return None
    if name in _ANSI_NAMES:
        return Color.parse(_ANSI_NAMES[name])
    if name.startswith("bright") and name[6:] in _ANSI_NAMES:
        return Color.parse("bright_" + _ANSI_NAMES[name[6:]])
    if len(name) == 6:
        try:
            return Color.parse("#" + name)
        except ColorParseError:
            return None
    return None


@lru_cache(maxsize=4096)
def _style(
    fg: str,
    bg: str,
    bold: bool,
    italics: bool,
    underscore: bool,
    strikethrough: bool,
    reverse: bool,
    blink: bool,
) -> Style:
    # False flags are left unset (None) so a base style (the pane's theme) is not overridden.
    return Style(
        color=map_colour(fg),
        bgcolor=map_colour(bg),
        bold=bold or None,
        italic=italics or None,
        underline=underscore or None,
        strike=strikethrough or None,
        reverse=reverse or None,
        blink=blink or None,
    )


def char_style(char: pyte.screens.Char, *, cursor: bool = False) -> Style:
    """The Rich Style of one pyte cell; ``cursor`` flips reverse so the cursor stays visible."""
    _, fg, bg, bold, italics, underscore, strikethrough, reverse, blink = char
    if cursor:
        reverse = not reverse
    return _style(fg, bg, bold, italics, underscore, strikethrough, reverse, blink)


def render_row(
    screen: pyte.Screen,
    y: int,
    width: int,
    cursor_x: int | None = None,
    *,
    base_style: Style | None = None,
) -> Strip:
    """Render screen row ``y`` as a Strip of exactly ``width`` cells.

    Cells are placed by column (:func:`~glidex_tui.terminal.emulator.iter_cells`), so wide and
    combining characters, and wide characters overwritten in half, never shift the row.

    Args:
        screen: The pyte screen.
        y: Row index in the screen.
        width: Cells wanted; the row is cropped or padded (with ``base_style``) to fit.
        cursor_x: Draw the cursor (reverse video) at this column; None for no cursor.
        base_style: Style under every cell (the widget's colours), so "default" resolves.
    """
    if cursor_x is not None:
        cursor_x = min(cursor_x, screen.columns - 1)
        line = screen.buffer.get(y)
        if cursor_x > 0 and line is not None and line.get(cursor_x, screen.default_char).data == "":
            cursor_x -= 1  # on the stub of a wide glyph: highlight the glyph itself
    segments: list[Segment] = []
    run: list[str] = []
    run_key: tuple | None = None
    run_style = Style.null()
    for x, data, char in iter_cells(screen, y, width):
        is_cursor = x == cursor_x
        key = (char[1:], is_cursor)
        if key != run_key:
            if run:
                segments.append(Segment("".join(run), run_style))
            run = []
            run_key = key
            run_style = char_style(char, cursor=is_cursor)
        run.append(data)
    if run:
        segments.append(Segment("".join(run), run_style))
    strip = Strip(segments)
    if base_style is not None:
        strip = strip.apply_style(base_style)
    return strip.adjust_cell_length(width, base_style)


def highlight_columns(strip: Strip, spans: list[tuple[int, int, Style]]) -> Strip:
    """Overlay ``style`` on cell ranges ``[start, end)`` of a strip (search matches)."""
    length = strip.cell_length
    cuts: set[int] = set()
    for start, end, _style in spans:
        cuts.update((max(0, min(start, length)), max(0, min(end, length))))
    cuts.discard(0)
    ordered = sorted(cuts | {length})
    pieces = strip.divide(ordered)
    out: list[Strip] = []
    position = 0
    for piece, stop in zip(pieces, ordered, strict=False):
        style = None
        for start, end, span_style in spans:
            if start <= position and stop <= end and position < stop:
                style = span_style if style is None else style + span_style
        if style is not None:  # on top of the cell's own style (apply_style would go beneath)
            piece = Strip([Segment(t, (s or Style()) + style, c) for t, s, c in piece])
        out.append(piece)
        position = stop
    return Strip.join(out)


# Bytes that never belong in a one-line history render: vertical movement would scroll the one
# row away (VT, FF) and NUL/DEL draw nothing.
_LINE_DELETE = b"\x00\x0b\x0c\x7f"
_HAS_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_SGR = re.compile(rb"\x1b\[([0-9;]*)m")


def match_spans(
    text: str, columns: list[int], pattern: re.Pattern[str], style: Style
) -> list[tuple[int, int, Style]]:
    """Cell ranges of the matches of ``pattern`` in a row's text (from :func:`row_text`)."""
    spans: list[tuple[int, int, Style]] = []
    for match in pattern.finditer(text):
        start, end = match.span()
        if end <= start:
            continue
        last = end - 1
        spans.append((columns[start], columns[last] + max(1, cell_len(text[last])), style))
    return spans


class LineRenderer:
    """Renders one raw console-log line (bytes, no newline) as a Strip, the way a terminal would.

    A one-row :class:`~glidex_tui.terminal.emulator.GuestScreen` (no alternate screen, no
    wrapping) interprets it, so SGR colours, CR overwrites, backspaces, tabs, erase-in-line and
    charsets come out as on the live screen and use the same style mapping; vertical cursor
    movement is confined to the row, and every line starts from default attributes (a log line
    is rendered on its own, without the lines before it). Plain ASCII takes a fast path.
    """

    def __init__(self, columns: int = 256) -> None:
        self.columns = columns
        self._emulator: TerminalEmulator | None = None
        self._modes: set[int] = set()
        self._sgr_screen = TerminalEmulator(1, 1).screen  # only its SGR state is used

    def _sgr_only(self, raw: bytes, width: int) -> tuple[list[Segment], str] | None:
        """Segments for an ASCII line whose only escapes are SGR (most coloured log lines).

        The same SGR interpretation and style mapping as the screen, without running the
        parser over every character (several times faster); None if the line needs a terminal.
        """
        body = raw[:-1] if raw.endswith(b"\r") else raw
        if not body.isascii():
            return None
        if _HAS_CONTROL.search(_SGR.sub(b"", body)) is not None:
            return None
        screen = self._sgr_screen
        screen.cursor.attrs = screen.default_char
        segments: list[Segment] = []
        texts: list[str] = []
        cells = 0
        position = 0
        for match in [*_SGR.finditer(body), None]:
            end = match.start() if match is not None else len(body)
            if end > position and cells < width:
                text = body[position:end][: width - cells].decode("ascii")
                segments.append(Segment(text, char_style(screen.cursor.attrs)))
                texts.append(text)
                cells += len(text)
            if match is None:
                break
            params = [min(int(p), 9999) if p else 0 for p in match.group(1).split(b";")]
            screen.select_graphic_rendition(*params)
            position = match.end()
        return segments, "".join(texts)

    def _screen_for(self, width: int) -> TerminalEmulator:
        columns = max(self.columns, width + 1)
        emulator = self._emulator
        if emulator is None or emulator.columns != columns:
            emulator = TerminalEmulator(columns, 1)
            emulator.screen.alternate_screen_enabled = False
            emulator.screen.reset_mode(modes.DECAWM >> 5, private=True)
            self._modes = set(emulator.screen.mode)
            self._emulator = emulator
        return emulator

    def screen_row(self, raw: bytes, width: int) -> pyte.Screen:
        """Interpret ``raw`` on the one-row screen and return that screen (row 0)."""
        emulator = self._screen_for(width)
        screen = emulator.screen
        screen.buffer.clear()
        screen.mode = set(self._modes)
        screen.cursor = Cursor(0, 0)
        screen.cursor.attrs = screen.default_char
        screen.charset = 0
        screen.g0_charset = screen.g1_charset = charsets.LAT1_MAP
        screen.margins = None
        screen.savepoints.clear()
        emulator.stream.reset_state()
        emulator.stream.utf8 = True
        emulator.feed(raw.translate(None, _LINE_DELETE), answer=False)
        return screen

    def render(
        self,
        raw: bytes,
        width: int,
        base_style: Style | None = None,
        *,
        highlight: re.Pattern[str] | None = None,
        highlight_style: Style | None = None,
    ) -> Strip:
        """The line as a Strip of exactly ``width`` cells, matches of ``highlight`` styled."""
        simple = self._sgr_only(raw, width)
        if simple is not None:
            segments, text = simple
            strip = Strip(segments)
            if base_style is not None:
                strip = strip.apply_style(base_style)
            strip = strip.adjust_cell_length(width, base_style)
            columns = list(range(len(text)))
        else:
            screen = self.screen_row(raw, width)
            strip = render_row(screen, 0, width, base_style=base_style)
            if highlight is None:
                return strip
            text, columns = row_text(screen, 0, width)
        if highlight is not None and highlight_style is not None:
            spans = match_spans(text, columns, highlight, highlight_style)
            if spans:
                strip = highlight_columns(strip, spans)
        return strip

    def text(self, raw: bytes, width: int) -> str:
        """The line's visible text, cropped to ``width`` cells."""
        simple = self._sgr_only(raw, width)
        if simple is not None:
            return simple[1]
        return row_text(self.screen_row(raw, width), 0, width)[0]
