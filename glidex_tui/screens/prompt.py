"""A one-line prompt at the bottom of the screen, for ``:`` commands and history search.

Why a modal: typing must go to the line, not to a focused console or the table, and Esc must
give focus back exactly where it was. Up/Down walk this prompt's history, like a shell.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label


class PromptScreen(ModalScreen[str | None]):
    """Returns the text typed (Enter) or None (Esc)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    def __init__(self, prompt: str, *, history: list[str] | None = None,
                 suggester: Suggester | None = None, placeholder: str = "") -> None:
        super().__init__()
        self.prompt = prompt
        self.history = history if history is not None else []
        self.suggester = suggester
        self.placeholder = placeholder
        self._position = len(self.history)

    def compose(self) -> ComposeResult:
        with Horizontal(id="prompt-line"):
            yield Label(self.prompt, id="prompt-label")
            yield Input(id="prompt-input", suggester=self.suggester,
                        placeholder=self.placeholder)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self.dismiss(text or None)

    def on_click(self, event: events.Click) -> None:
        if event.widget is self:  # a click outside the line cancels, as Esc does
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._position = max(0, min(len(self.history), self._position + step))
        field = self.query_one(Input)
        field.value = self.history[self._position] if self._position < len(self.history) else ""
        field.cursor_position = len(field.value)
