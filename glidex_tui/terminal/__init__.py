"""The terminal layer of the console pane, kept free of Textual widgets so it tests fast.

- :mod:`.emulator` turns guest console bytes into a screen grid (pyte) and collects answerback.
- :mod:`.keys` turns Textual key events and pastes into the bytes a real terminal would send.
- :mod:`.render` turns one row of that grid into a Textual ``Strip`` (Rich styles, memoised).
- :mod:`.logtail` reads the tail of a console log so a freshly attached pane shows earlier output.
"""

from glidex_tui.terminal.emulator import TerminalEmulator
from glidex_tui.terminal.keys import key_to_bytes, paste_to_bytes
from glidex_tui.terminal.render import char_style, render_row

__all__ = ["TerminalEmulator", "char_style", "key_to_bytes", "paste_to_bytes", "render_row"]
