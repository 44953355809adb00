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

from functools import lru_cache

import pyte
from rich.color import Color, ColorParseError
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

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

    Args:
        screen: The pyte screen.
        y: Row index in the screen.
        width: Cells wanted; the row is cropped or padded (with ``base_style``) to fit.
        cursor_x: Draw the cursor (reverse video) at this column; None for no cursor.
        base_style: Style under every cell (the widget's colours), so "default" resolves.
    """
    line = screen.buffer.get(y)
    columns = min(screen.columns, width)
    default = screen.default_char
    if cursor_x is not None:
        cursor_x = min(cursor_x, screen.columns - 1)
        if cursor_x > 0 and line is not None and line[cursor_x].data == "":
            cursor_x -= 1  # on the stub of a wide glyph: highlight the glyph itself
    segments: list[Segment] = []
    run: list[str] = []
    run_key: tuple | None = None
    run_style = Style.null()
    for x in range(columns):
        char = line[x] if line is not None else default
        if char.data == "":
            continue  # right half of a wide character
        is_cursor = x == cursor_x
        key = (char[1:], is_cursor)
        if key != run_key:
            if run:
                segments.append(Segment("".join(run), run_style))
            run = []
            run_key = key
            run_style = char_style(char, cursor=is_cursor)
        run.append(char.data)
    if run:
        segments.append(Segment("".join(run), run_style))
    strip = Strip(segments)
    if base_style is not None:
        strip = strip.apply_style(base_style)
    return strip.adjust_cell_length(width, base_style)
