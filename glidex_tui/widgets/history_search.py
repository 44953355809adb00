"""A one-line prompt for searching a console's history (what ``/`` opens in a pager).

:meth:`ConsolePane.action_search_prompt` pushes it and searches for what is entered; the app only
needs a key for that action. Enter searches, Escape cancels (an empty query clears the search).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class HistorySearchPrompt(ModalScreen[str | None]):
    """Asks for a search query; dismisses with the text, or None when cancelled."""

    DEFAULT_CSS = """
    HistorySearchPrompt {
        align: left bottom;
        background: $background 0%;
    }
    HistorySearchPrompt > #history-search-bar {
        layout: horizontal;
        dock: bottom;
        height: 1;
        width: 100%;
        background: $panel;
    }
    HistorySearchPrompt Label {
        width: auto;
        padding: 0 1;
        color: $text-accent;
    }
    HistorySearchPrompt Input {
        width: 1fr;
        height: 1;
        border: none;
        padding: 0;
        background: $panel;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel search", show=False),
    ]

    def __init__(self, query: str = "", *, title: str = "Search history") -> None:
        super().__init__()
        self.query_text = query
        self.title_text = title

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        with Horizontal(id="history-search-bar"):
            yield Label(f"{self.title_text} /")
            yield Input(self.query_text, placeholder="text (smart case)", id="history-search")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


__all__ = ["HistorySearchPrompt"]
