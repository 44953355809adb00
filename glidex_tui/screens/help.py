"""The ``?`` screen: every key and every ``:`` command, generated from the bindings themselves.

Why generated: a hand-written key list drifts the first time someone adds a binding. Here each
section is read from the classes that own the keys (their ``BINDINGS``), from the prefix table
and from the command table, so the help cannot promise a key that does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from glidex_tui.commands import COMMANDS
from glidex_tui.keymap import (
    PREFIX_KEY,
    PREFIX_KEY_DISPLAY,
    available_prefix_commands,
    key_label,
)


@dataclass
class HelpSection:
    title: str
    rows: list[tuple[str, str]]  # (keys, what they do)


def _bindings_of(*classes: type) -> list[Binding]:
    """The bindings ``classes`` really have: their own and their bases', a subclass's binding
    replacing a base's for the same key (as Textual merges them)."""
    found: list[Binding] = []
    for cls in classes:
        keys: dict[str, list[Binding]] = {}
        for klass in reversed(cls.__mro__):
            if not klass.__dict__.get("_inherit_bindings", True):
                keys.clear()
            declared: list[BindingType] = klass.__dict__.get("BINDINGS", [])
            keys.update(BindingsMap(declared).key_to_bindings)
        found.extend(b for bindings in keys.values() for b in bindings)
    return found


def _describe(binding: Binding) -> str:
    if binding.description:
        return binding.description
    return binding.action.replace("app.", "").replace("_", " ")


def _rows(app: App, bindings: list[Binding]) -> list[tuple[str, str]]:
    """One row per action, its keys joined (e.g. 'enter' and the DataTable's 'enter')."""
    rows: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    for binding in bindings:
        if binding.action in ("help_quit", "screen.copy_text"):
            continue  # Textual's own reminders, not keys of this dashboard
        label = key_label(binding.key) if binding.key == PREFIX_KEY else app.get_key_display(
            binding)
        action = binding.action.removeprefix("app.")
        keys = rows.setdefault(action, [])
        if label not in keys:
            keys.append(label)
        descriptions.setdefault(action, _describe(binding))
    return [(" ".join(keys), descriptions[action]) for action, keys in rows.items()]


def help_sections(app: App) -> list[HelpSection]:
    """Every key the dashboard answers to, grouped by where it works."""
    from glidex_tui.app import TEXTUAL_APP_KEYS, GlidexApp
    from glidex_tui.widgets.console_pane import ConsolePane
    from glidex_tui.widgets.filter_input import FilterInput
    from glidex_tui.widgets.vm_table import VmTable

    own_table = list(Binding.make_bindings(VmTable.BINDINGS))
    own_keys = {b.key for b in own_table}
    moving = [b for b in _bindings_of(VmTable) if b.key not in own_keys]
    app_keys = [b for b in Binding.make_bindings(GlidexApp.BINDINGS)
                if b.action != "leave_console"]  # listed with the console's keys
    textual_keys = list(Binding.make_bindings(TEXTUAL_APP_KEYS))
    prefix_rows = [(c.display, c.description) for c in available_prefix_commands(ConsolePane)]
    return [
        HelpSection("VM table and workspace", _rows(app, app_keys + own_table)),
        HelpSection("Moving in the table", _rows(app, moving)),
        HelpSection("Filter line (after /)", _rows(app, list(Binding.make_bindings(
            FilterInput.BINDINGS))) + [("enter", "Keep the filter, back to the table")]),
        HelpSection("Anywhere outside a console", _rows(app, textual_keys)),
        HelpSection(
            "In a console pane (every other key goes to the guest)",
            _rows(app, _bindings_of(ConsolePane))
            + [(PREFIX_KEY_DISPLAY, "Prefix: the next key is a dashboard command (below)")],
        ),
        HelpSection(f"After the prefix {PREFIX_KEY_DISPLAY} (in a console or the table)",
                    prefix_rows),
        HelpSection("Commands (type : then a command, Enter runs it)",
                    [(f":{c.usage}", c.help + _also(c)) for c in COMMANDS]),
    ]


def _also(command) -> str:
    """The other names of a command, without the one its usage already shows (``:q``)."""
    shown = command.usage.split()[0]
    others = [alias for alias in command.aliases if alias != shown]
    return f"  (also :{', :'.join(others)})" if others else ""


def help_text(sections: list[HelpSection]) -> str:
    """Plain text of the help (tests read it; it is also what the screen shows)."""
    lines = []
    for section in sections:
        lines.append(section.title)
        lines += [f"  {keys:<24} {what}" for keys, what in section.rows]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Shows :func:`help_sections`; any of Esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        self.sections = help_sections(self.app)
        with VerticalScroll(id="help-body"):
            for section in self.sections:
                table = Table.grid(padding=(0, 2))
                table.add_column(min_width=16, style="bold")
                table.add_column()
                for keys, what in section.rows:
                    table.add_row(Text(keys), Text(what))
                yield Static(f"[b $accent]{section.title}[/]", classes="help-title")
                yield Static(table, classes="help-table")

    def on_mount(self) -> None:
        body = self.query_one("#help-body")
        body.border_title = "Keys and commands"
        body.border_subtitle = "esc / q / ? closes · scroll with ↑ ↓ pgup pgdn"
        body.focus()

    def action_close(self) -> None:
        self.dismiss(None)
