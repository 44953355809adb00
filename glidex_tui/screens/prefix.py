"""The prefix overlay: after Ctrl+\\ it shows what the next key does, then returns that key.

Why a modal screen: while it is up, the next key goes to it and not to the guest, without the
console pane having to know about prefixes at all. Focus returns to the pane afterwards.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static

from glidex_tui.keymap import PREFIX_KEY_DISPLAY, PrefixCommand


class PrefixScreen(ModalScreen[PrefixCommand | None]):
    """Waits for one key; dismisses with its command (None: cancelled or unknown key)."""

    def __init__(self, commands: list[PrefixCommand]) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        half = (len(self.commands) + 1) // 2
        for left, right in zip(self.commands[:half], self.commands[half:] + [None],
                               strict=False):
            cells = [Text(left.display, style="bold"), Text(left.description)]
            if right is not None:
                cells += [Text(right.display, style="bold"), Text(right.description)]
            table.add_row(*cells)
        box = Static(table, id="prefix-box")
        box.border_title = f"{PREFIX_KEY_DISPLAY} then…"
        yield box

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        for command in self.commands:
            if event.key in command.keys or (event.character and event.character in
                                             command.keys):
                self.dismiss(command)
                return
        self.app.bell()
        self.dismiss(None)
