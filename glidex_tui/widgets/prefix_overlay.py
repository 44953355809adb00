"""The prefix overlay: after Ctrl+\\ it shows, at the bottom of the screen, what the next key
does. It only shows: the key itself is taken by the app before any widget sees it (see
``GlidexApp.on_event``), so the console keeps its focus and its cursor, and keys typed right
after the command go where the command sent the focus.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from glidex_tui.keymap import PREFIX_KEY_DISPLAY, PrefixCommand


def prefix_table(commands: list[PrefixCommand]) -> Table:
    """Two columns of "key  what it does"."""
    table = Table.grid(padding=(0, 2))
    half = (len(commands) + 1) // 2
    for left, right in zip(commands[:half], [*commands[half:], None], strict=False):
        cells = [Text(left.display, style="bold"), Text(left.description)]
        if right is not None:
            cells += [Text(right.display, style="bold"), Text(right.description)]
        table.add_row(*cells)
    return table


class PrefixOverlay(Static):
    """Hidden until the prefix key is pressed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.border_title = f"{PREFIX_KEY_DISPLAY} then…"
        self.display = False

    def open(self, commands: list[PrefixCommand]) -> None:
        self.update(prefix_table(commands))
        self.display = True

    def close(self) -> None:
        self.display = False
