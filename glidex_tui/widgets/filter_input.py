"""The table's filter line: shown by ``/``, filters as you type, Esc clears and hides it.

Why in place (not a dialog): the table narrows while typing, the way k9s and lazydocker do,
so what the filter catches is visible before Enter.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    """An Input that reports Esc as "clear the filter" (the app hides it and refocuses)."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear the filter, back to the table")]

    class Cleared(Message):
        """Esc was pressed: the filter is to be emptied and the line hidden."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="filter: part of a name, state or hypervisor; !x excludes",
                         id=id)

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.Cleared())
