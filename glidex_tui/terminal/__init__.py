"""The terminal layer of the console pane, kept free of Textual widgets so it tests fast.

- :mod:`.emulator` turns guest console bytes into a screen grid (pyte, wrapped where it falls
  short: alternate screen, wide characters by column, DEC graphics in UTF-8, answerback) and
  fast-forwards over output nobody could read.
- :mod:`.keys` turns Textual key events and pastes into the bytes a real terminal would send.
- :mod:`.render` turns one row of that grid, or one raw log line, into a Textual ``Strip``.
- :mod:`.history` indexes the console log (rotated parts included) lazily from the end, reads
  lines on demand and searches it.
- :mod:`.logtail` reads the tail of a console log so a freshly attached pane shows earlier output.
"""

from glidex_tui.terminal.emulator import TerminalEmulator, plan_fast_forward
from glidex_tui.terminal.history import ConsoleLog, LineIndex, SearchPattern, search
from glidex_tui.terminal.keys import key_to_bytes, paste_to_bytes
from glidex_tui.terminal.render import LineRenderer, char_style, render_row

__all__ = [
    "ConsoleLog",
    "LineIndex",
    "LineRenderer",
    "SearchPattern",
    "TerminalEmulator",
    "char_style",
    "key_to_bytes",
    "paste_to_bytes",
    "plan_fast_forward",
    "render_row",
    "search",
]
