"""Typed commands (``:start web``) and the command palette's per-VM entries.

Why one table: the ``:`` line, its completion, the ``?`` help screen and the palette all read
:data:`COMMANDS`, so a command cannot exist in one place and be missing from another. The app
carries each command out in a ``command_<name>(args)`` method; this module only parses.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.suggester import Suggester

from glidex_core.models import VmState

if TYPE_CHECKING:
    from glidex_tui.app import GlidexApp

Takes = Literal["none", "vms", "vm", "word"]


@dataclass(frozen=True)
class Command:
    """A ``:`` command. ``takes`` says what its arguments are, for parsing and completion."""

    name: str
    usage: str
    help: str
    takes: Takes = "none"
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # fixed words for "word" commands (completed, checked)


COMMANDS: tuple[Command, ...] = (
    Command("start", "start [VM...]", "Start VMs (default: the marked ones, else the selected)",
            "vms"),
    Command("stop", "stop [VM...]", "Stop VMs (default: the marked ones, else the selected)",
            "vms"),
    Command("pause", "pause [VM...]", "Pause (or resume) VMs", "vms"),
    Command("resume", "resume [VM...]", "Resume paused VMs", "vms"),
    Command("connect", "connect [VM]", "Open the VM's console in a pane", "vm",
            aliases=("console", "c")),
    Command("delete", "delete [VM]", "Delete a VM (asks first)", "vm", aliases=("rm",)),
    Command("new", "new", "Create a VM (opens the form)", aliases=("create",)),
    Command("close", "close", "Close the focused console pane"),
    Command("theme", "theme NAME", "Switch theme (remembered in config.toml)", "word"),
    Command("filter", "filter [TEXT]", "Filter the VM table (no text clears it)", "word"),
    Command("sort", "sort [COLUMN]", "Sort the VM table by a column (again: reverse)", "word",
            choices=("created", "name", "state", "hypervisor", "vcpu", "memory", "uptime")),
    Command("layout", "layout save|restore|clear", "Save, restore or forget the pane layout",
            "word", choices=("save", "restore", "clear")),
    Command("help", "help", "Show every key and command", aliases=("h",)),
    Command("quit", "q", "Quit the dashboard (VMs keep running)", aliases=("q", "qa", "q!")),
)


class CommandError(ValueError):
    """A command line that cannot be run; the message says why and what would work."""


def _by_word() -> dict[str, Command]:
    table = {}
    for command in COMMANDS:
        table[command.name] = command
        for alias in command.aliases:
            table[alias] = command
    return table


def parse_command_line(text: str) -> tuple[Command, list[str]]:
    """``"start web db"`` -> (the start command, ["web", "db"]); raises CommandError."""
    try:
        words = shlex.split(text.strip().removeprefix(":"))
    except ValueError as exc:
        raise CommandError(f"cannot read {text!r}: {exc}") from None
    if not words:
        raise CommandError("type a command, e.g. :start web (:help lists them)")
    table = _by_word()
    command = table.get(words[0])
    if command is None:
        close = difflib.get_close_matches(words[0], list(table), n=1)
        hint = f"; did you mean :{close[0]}?" if close else " (:help lists them)"
        raise CommandError(f"unknown command :{words[0]}{hint}")
    args = words[1:]
    if command.takes == "none" and args:
        raise CommandError(f":{command.name} takes no arguments (usage: :{command.usage})")
    if command.takes == "vm" and len(args) > 1:
        raise CommandError(f":{command.name} takes one VM (usage: :{command.usage})")
    if command.choices and args and args[0] not in command.choices:
        raise CommandError(f":{command.name}: {args[0]!r} is not one of "
                           f"{', '.join(command.choices)}")
    return command, args


class CommandSuggester(Suggester):
    """Completes the command word, then VM names, theme names or fixed choices (accept the
    grey suggestion with the right arrow, as in a shell)."""

    def __init__(self, vm_names: Callable[[], Iterable[str]],
                 theme_names: Callable[[], Iterable[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.vm_names = vm_names
        self.theme_names = theme_names

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value.endswith(" ") and value.strip() == "":
            return None
        head, _, rest = value.partition(" ")
        if not _:
            matches = sorted(w for w in _by_word() if w.startswith(head) and len(w) > 1)
            return matches[0] if matches else None
        command = _by_word().get(head)
        if command is None:
            return None
        if command.choices:
            candidates: Iterable[str] = command.choices
        elif command.name == "theme":
            candidates = self.theme_names()
        elif command.takes in ("vm", "vms"):
            candidates = self.vm_names()
        else:
            return None
        done, _, last = rest.rpartition(" ")
        for candidate in sorted(candidates):
            if candidate.startswith(last) and candidate != last:
                return f"{head} {done + ' ' if done else ''}{candidate}"
        return None


class VmCommands(Provider):
    """Palette entries for each VM: start/stop/pause/resume/connect/delete/mark <name>."""

    def _entries(self) -> list[tuple[str, str, Callable[[], object]]]:
        app: GlidexApp = self.app  # type: ignore[assignment]
        if app.supervisor is None:
            return []
        entries = []
        for record in app.supervisor.list():
            name = record.name
            run = app.run_command_line
            if record.is_live:
                entries.append((f"Connect to {name}", f"open {name}'s console in a pane",
                                partial(run, f"connect {name}")))
                entries.append((f"Stop {name}", f"stop the VM {name}",
                                partial(run, f"stop {name}")))
                verb = "Resume" if record.state == VmState.PAUSED else "Pause"
                entries.append((f"{verb} {name}", f"{verb.lower()} the VM {name}",
                                partial(run, f"{verb.lower()} {name}")))
            else:
                entries.append((f"Start {name}", f"start the VM {name}",
                                partial(run, f"start {name}")))
            entries.append((f"Delete {name}", f"delete the VM {name} (asks first)",
                            partial(run, f"delete {name}")))
            entries.append((f"Mark {name}", f"mark or unmark {name} for bulk start/stop",
                            partial(app.toggle_mark_by_name, name)))
        return entries

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            if title.startswith("Connect"):
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
