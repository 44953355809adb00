"""The Glidex dashboard: a live VM table with details, and a workspace of console panes.

The app wires things together: it owns the supervisor (embedded, or a RemoteSupervisor when a
control plane already owns the home), turns keys into actions, and routes events between the
table, the details panel and the console area. Pane actions live in :mod:`.workspace`, VM
actions and ``:`` commands in :mod:`.vm_actions`; the widgets own their own state.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from textual import events
from textual.actions import parse as parse_action
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Footer, Header, Input

from glidex_core.api.remote import RemoteSupervisor
from glidex_core.api.server import ApiServer, read_discovery
from glidex_core.config import Paths, Settings, glidex_home, load_settings, save_settings
from glidex_core.models import GlidexError, VmState
from glidex_core.supervisor import Supervisor, SupervisorBusyError, VmEvent
from glidex_tui.commands import CommandSuggester, VmCommands
from glidex_tui.keymap import (
    PREFIX_KEY,
    PREFIX_KEY_DISPLAY,
    available_prefix_commands,
    find_prefix_command,
)
from glidex_tui.metrics import MetricsSource, VmmMetrics
from glidex_tui.screens.help import HelpScreen
from glidex_tui.screens.prompt import PromptScreen
from glidex_tui.themes import DEFAULT_THEME, load_all_themes
from glidex_tui.vm_actions import VmActions
from glidex_tui.widgets.console_area import ConsoleArea
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.details import QuietStatic, VmDetails
from glidex_tui.widgets.filter_input import FilterInput
from glidex_tui.widgets.prefix_overlay import PrefixOverlay
from glidex_tui.widgets.vm_table import VmTable
from glidex_tui.workspace import WorkspaceActions

# App-level keys a console pane needs for the guest while it has focus (shells use Ctrl+P, ...).
KEYS_YIELDED_TO_CONSOLE = {"quit", "command_palette"}
# The only app actions left while a console has focus; the rest are hidden from the footer
# (they could not fire anyway: the pane takes their keys for the guest).
NOT_ANSWERING = " · NOT ANSWERING"
ACTIONS_WHILE_IN_CONSOLE = {"prefix", "leave_console"}
# Single keys that act on the table's VMs or open something from it: only while the table has
# the keyboard (they are priority bindings, so they must not take keys from other widgets).
TABLE_ACTIONS = {"create", "start", "stop", "pause_resume", "delete", "split", "help",
                 "command_line", "quit"}
MOVEMENT_ACTIONS = {"cursor_up", "cursor_down", "page_up", "page_down", "scroll_top",
                    "scroll_bottom"}
# Textual's own app keys that the dashboard keeps (listed in ? help).
TEXTUAL_APP_KEYS = [
    Binding("ctrl+p", "command_palette", "Command palette (every action, per-VM entries)"),
    Binding("ctrl+q", "quit", "Quit"),
]


class GlidexApp(VmActions, WorkspaceActions, App[None]):
    TITLE = "Glidex"
    SUB_TITLE = "microVM control plane"
    CSS_PATH = "glidex.tcss"
    ESCAPE_TO_MINIMIZE = False  # Esc belongs to the guest, even in a maximised pane
    COMMANDS = App.COMMANDS | {VmCommands}
    # Priority bindings, all of them: keys are then handled in the order they were typed, at
    # the app, before the next key is routed. Without that, "Enter, uname" typed fast would
    # send "uname" to the table (the console opened after the keys were routed), and
    # "Down, Enter" would open the console of the row above. check_action limits the table's
    # keys to the table (in a form, a console or the filter line they are ordinary keys).
    BINDINGS = [
        Binding("n", "create", "New", priority=True, id="vm.create"),
        Binding("s", "start", "Start", priority=True, id="vm.start"),
        Binding("x", "stop", "Stop", priority=True, id="vm.stop"),
        Binding("p", "pause_resume", "Pause/Resume", priority=True, id="vm.pause"),
        Binding("d", "delete", "Delete", priority=True, id="vm.delete"),
        Binding("vertical_line", "split('row')", "Console beside the active pane", show=False,
                priority=True, id="pane.split_row"),
        Binding("minus", "split('column')", "Console below the active pane", show=False,
                priority=True, id="pane.split_column"),
        Binding("question_mark", "help", "Help", priority=True, id="help"),
        Binding("colon", "command_line", "Command", priority=True, id="command_line"),
        Binding(PREFIX_KEY, "prefix", "Pane commands", priority=True,
                key_display=PREFIX_KEY_DISPLAY, id="prefix"),
        # The pane binds Ctrl+] itself, but answers with a message, which arrives after keys
        # typed right behind it; taken here, the focus moves before the next key is routed.
        Binding("ctrl+right_square_bracket", "leave_console", "Leave console", priority=True,
                key_display="^]", id="leave"),
        Binding("q", "quit", "Quit", priority=True, id="quit"),
    ]

    def __init__(
        self,
        home: Path | None = None,
        *,
        serve_api: bool = False,
        url: str | None = None,
        token: str | None = None,
        supervisor: Supervisor | RemoteSupervisor | None = None,
        clock: Callable[[], float] = time.time,
        metrics: MetricsSource | None = None,
    ) -> None:
        """``supervisor``, ``clock`` and ``metrics`` are for tests that need still pictures."""
        super().__init__()
        self.home = home or glidex_home()
        self.serve_api = serve_api
        self.url = url  # a control plane to drive instead of this home's supervisor
        self.token = token
        self.supervisor: Supervisor | RemoteSupervisor | None = supervisor
        self.api_server: ApiServer | None = None
        self.clock = clock
        self.metrics: MetricsSource | None = metrics
        self._saved_theme: str | None = None
        self._command_history: list[str] = []
        self.prefix_armed = False
        self._reachable = True
        self._search_history: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="workspace"):
            with Horizontal(id="top"):
                with Vertical(id="table-column"):
                    yield FilterInput(id="filter")
                    yield QuietStatic("", id="table-status")
                    yield VmTable(id="vms", clock=self.clock)
                yield VmDetails(id="details")
            yield ConsoleArea(id="consoles")
        yield PrefixOverlay(id="prefix-box")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one(FilterInput).display = False
        self.query_one(ConsoleArea).display = False
        self.apply_themes()
        if self.supervisor is None:
            try:
                self.supervisor = await self._open_supervisor()
            except (GlidexError, ValueError, OSError, httpx.HTTPError) as exc:
                self.exit(return_code=1, message=f"glidex: {exc}")
                return
        if self.metrics is None:
            self.metrics = VmmMetrics(self.supervisor.paths)
        self.supervisor.subscribe(self._on_vm_event)
        self.refresh_table()
        self.set_interval(1.0, self._tick)
        self.screen.set_focus(self.query_one(VmTable))  # now: a restored pane may take it next
        self.restore_layout(quiet=True)

    async def _open_supervisor(self) -> Supervisor | RemoteSupervisor:
        """Embed a supervisor, or attach to the control plane that already owns this home, or
        to the one named by --url (consoles then go over its WebSocket)."""
        if self.url:
            self.sub_title = f"control plane at {self.url}"
            return await RemoteSupervisor.open(self.url, self.token, self.home,
                                               bridge_consoles=True)
        try:
            supervisor = await Supervisor.open(self.home)
        except SupervisorBusyError:
            found = read_discovery(Paths(self.home))
            if found is None:
                raise
            self.sub_title = f"attached to the control plane at {found['url']}"
            return await RemoteSupervisor.open(found["url"], found.get("token"), self.home)
        self.sub_title = f"supervisor for {self.home}"
        if self.serve_api or supervisor.settings.extra.get("dashboard_api"):
            settings = supervisor.settings
            self.api_server = ApiServer(supervisor, settings.api_host, settings.api_port, None,
                                        handle_signals=False)
            self.run_worker(self.api_server.serve(), name="api", exit_on_error=False)
            self.sub_title += f" · API on {self.api_server.url}"
        return supervisor

    async def on_unmount(self) -> None:
        if self.api_server is not None:
            self.api_server.stop()
        if self.supervisor is not None:
            await self.supervisor.close()  # VMs keep running: their keepers own them

    # -- settings (config.toml) ------------------------------------------------------------
    def read_settings(self) -> Settings:
        """config.toml as it is now (another program may have changed it); defaults if broken
        (the supervisor reports a broken file when it opens)."""
        try:
            return load_settings(Paths(self.home))
        except (ValueError, OSError):
            return Settings()

    def update_settings(self, change: Callable[[Settings], Any]) -> bool:
        """Read config.toml, apply ``change``, write it back atomically; notify on failure."""
        paths = Paths(self.home)
        try:
            settings = load_settings(paths)
            change(settings)
            save_settings(paths, settings)
        except (ValueError, OSError) as exc:
            self.notify(f"Cannot save to {paths.config_file}: {exc}", severity="error",
                        timeout=10)
            return False
        return True

    # -- themes --------------------------------------------------------------------------
    def apply_themes(self) -> None:
        """Register bundled and user themes, report broken files, pick the remembered one."""
        loaded = load_all_themes(self.home)
        for theme in loaded.themes:
            self.register_theme(theme)
        for error in loaded.errors:
            self.notify(error, title="Theme file not used", severity="error", timeout=20)
        wanted = self.read_settings().theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.notify(f"Theme {wanted!r} from config.toml is not available; using "
                        f"{DEFAULT_THEME}.", severity="warning", timeout=10)
            wanted = DEFAULT_THEME
        self._saved_theme = wanted
        self.theme = wanted
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Theme) -> None:
        """Remember a theme chosen at runtime (palette, :theme) in config.toml."""
        self.refresh_table()  # the state colours come from the theme
        if theme.name == self._saved_theme:
            return
        self._saved_theme = theme.name

        def remember(settings: Settings) -> None:
            settings.theme = theme.name

        self.update_settings(remember)

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        """Plain text unless asked: messages carry paths, names and the VMM's words, and a
        ``[/x]`` in them is not markup (it crashed the app, found by a new user)."""
        super().notify(message, markup=markup, **kwargs)

    # -- the table, details and status line ------------------------------------------------
    @property
    def table(self) -> VmTable:
        return self.query_one(VmTable)

    def _tick(self) -> None:
        if self.supervisor is not None and self.metrics is not None:
            self.metrics.sample(self.supervisor.list())
        self._check_reachable()
        self.refresh_table()

    def _check_reachable(self) -> None:
        """Say so, in the subtitle and once in a notification, when a control plane we are
        attached to stops answering, and when it is back."""
        reachable = getattr(self.supervisor, "reachable", True)
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            self.sub_title = self.sub_title.removesuffix(NOT_ANSWERING)
            self.notify("The control plane answers again.", timeout=5)
        else:
            self.sub_title += NOT_ANSWERING
            self.notify(f"The control plane at {self.supervisor.url} does not answer; the "
                        "table is frozen until it is back (retrying every second).",
                        severity="warning", timeout=10)

    def refresh_table(self) -> None:
        if self.supervisor is None:
            return
        try:
            table = self.table
        except NoMatches:  # a last tick while the app closes and its widgets are gone
            return
        table.sync(self.supervisor.list())
        self._show_details()
        self._show_status()

    def _show_status(self) -> None:
        # Once a second: unchanged text is not set again (each update reflowed the screen)
        self.query_one("#table-status", QuietStatic).show_text(self.table.summary().describe())

    def on_vm_table_view_changed(self, _message: VmTable.ViewChanged) -> None:
        self._show_details()
        self._show_status()

    def on_data_table_row_highlighted(self, _event: VmTable.RowHighlighted) -> None:
        self._show_details()

    def on_data_table_row_selected(self, _event: VmTable.RowSelected) -> None:
        self.action_console()

    def _show_details(self) -> None:
        record = self._selected(quiet=True)
        details = self.query_one(VmDetails)
        if record is None or self.supervisor is None:
            if self.supervisor is not None and self.supervisor.list():
                hint = "No VM shown: / changes the filter, a shows stopped VMs."
            else:
                hint = "No VMs yet: press [b]n[/b] to create one, [b]?[/b] for every key."
            details.show(None, empty_hint=hint)
            return
        stats = self.metrics.stats(record.id) if self.metrics is not None else None
        details.show(record, log_path=self.supervisor.paths.console_log(record.id),
                     console_source=self.supervisor.console_info(record.id).log_path,
                     stats=stats, now=self.clock())

    # -- events ----------------------------------------------------------------------------
    def _on_vm_event(self, event: VmEvent) -> None:
        """Tell the user what changed. Failures of an operation the user asked for are
        reported by that operation (one notification per failure); a crash is news."""
        self.refresh_table()
        name, state = event.vm.name, event.vm.state
        if event.kind == "deleted":
            if event.vm.id in self.area.panes:
                self.area.close(event.vm.id)
            self.notify(f"{name} deleted", timeout=3)
        elif event.kind == "created":
            self.notify(f"{name} created", timeout=3)
        elif event.kind == "state" and state == VmState.CRASHED:
            self.notify(f"{name}: {state} ({event.reason})", severity="error", timeout=15)
        elif event.kind == "state" and state != VmState.FAILED:
            reason = f" ({event.reason})" if event.reason and state == VmState.STOPPED else ""
            self.notify(f"{name} is {state}{reason}", timeout=3)

    def on_console_pane_leave_requested(self, _message: ConsolePane.LeaveRequested) -> None:
        self.action_focus_table()

    def on_console_pane_disconnected(self, message: ConsolePane.Disconnected) -> None:
        info = self.area.mark_closed(message.pane)
        if info is not None:
            self.notify(f"{info.name}: console closed ({message.reason}). ^\\ x closes the "
                        "pane.", timeout=6)

    def on_console_area_changed(self, _message: ConsoleArea.Changed) -> None:
        area = self.area
        area.display = bool(area.panes)
        self.screen.set_class(bool(area.panes), "-with-panes")
        self.screen.set_class(area.zoomed is not None, "-zoomed")

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterInput):
            self.table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if isinstance(event.input, FilterInput):
            event.stop()
            if not event.value.strip():
                event.input.display = False
            self.table.focus()

    def on_filter_input_cleared(self, _message: FilterInput.Cleared) -> None:
        self.table.set_filter("")
        self.query_one(FilterInput).display = False
        self.table.focus()

    # -- keys ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a console captures input, its keys reach the guest instead of the app: the
        priority bindings (quit, palette) stand down, and only the prefix and leave stay.
        The table's single keys work only in the table (False lets the key through)."""
        on_main = self.screen is self.screen_stack[0]
        focused = self.focused
        if getattr(focused, "captures_input", False):
            if action in KEYS_YIELDED_TO_CONSOLE:
                return False
            return on_main and action in ACTIONS_WHILE_IN_CONSOLE
        if action in TABLE_ACTIONS:
            return on_main and (focused is None or isinstance(focused, VmTable))
        if action in ("prefix", "leave_console"):
            return on_main and action == "prefix"
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()  # the footer follows focus (console keys vs table keys)

    async def on_event(self, event: events.Event) -> None:
        """After the prefix key, the next key is a command, whatever has focus. It is taken
        here, before any widget sees it, so the command (which may move the focus) is done
        before the keys typed after it are routed."""
        if self.prefix_armed and isinstance(event, events.Key) and not event.is_forwarded:
            self.prefix_armed = False
            self.query_one(PrefixOverlay).close()
            command = find_prefix_command(event.key, event.character, ConsolePane)
            if command is None:
                self.bell()
            else:
                await self.perform(command.action)
            return
        await super().on_event(event)

    async def perform(self, action: str) -> None:
        """Run an action string (``"focus_direction('left')"``) directly: from the prefix or
        the palette the focus may be in a console, where check_action would refuse it."""
        target, name, params = parse_action(action)
        owner: Any = self.table if target == "table" else self
        method = getattr(owner, f"action_{name}", None)
        if method is None:
            self.notify(f"Unknown action {action!r}", severity="error")
            return
        result = method(*params)
        if inspect.isawaitable(result):
            await result

    def action_prefix(self) -> None:
        """Ctrl+\\: show what the next key can do; :meth:`on_event` takes that key."""
        self.prefix_armed = True
        self.query_one(PrefixOverlay).open(available_prefix_commands(ConsolePane))

    def action_cancel_prefix(self) -> None:
        """Esc after the prefix: nothing happens."""

    def action_leave_console(self) -> None:
        """Ctrl+] in a console: back to the table (the pane stays open)."""
        self.action_focus_table()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        field = self.query_one(FilterInput)
        field.display = True
        field.focus()

    def action_command_line(self) -> None:
        suggester = CommandSuggester(
            lambda: [r.name for r in self.supervisor.list()] if self.supervisor else [],
            lambda: list(self.available_themes),
        )

        async def typed(text: str | None) -> None:
            if text:
                await self.run_command_line(text)

        self.push_screen(PromptScreen(":", history=self._command_history, suggester=suggester,
                                      placeholder="start web · connect web · theme NAME · "
                                                  "help"), typed)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's entries plus every dashboard action (the per-VM ones come from
        :class:`VmCommands`)."""
        titles = set()
        for command in super().get_system_commands(screen):
            if command.title not in ("Maximize", "Minimize"):  # Esc must reach the guest
                titles.add(command.title)
                yield command
        for title, help_text, action in self.palette_actions():
            if title not in titles:
                titles.add(title)
                yield SystemCommand(title, help_text, lambda a=action: self.perform(a))

    def palette_actions(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for every binding and prefix command."""
        own_table = [b for b in Binding.make_bindings(VmTable.BINDINGS)]
        entries: list[tuple[str, str, str]] = []
        for binding in Binding.make_bindings(self.BINDINGS):
            if binding.action not in ("quit", "prefix"):
                entries.append((binding.description, f"key: {self.get_key_display(binding)}",
                                binding.action))
        for binding in own_table:
            if binding.action in MOVEMENT_ACTIONS:
                continue  # arrow keys are not commands
            action = binding.action.removeprefix("app.") if binding.action.startswith(
                "app.") else f"table.{binding.action}"
            entries.append((binding.description, f"key: {self.get_key_display(binding)}",
                            action))
        for command in available_prefix_commands(ConsolePane):
            if command.action not in ("cancel_prefix", "send_prefix", "command_palette"):
                keys = command.display.replace("[", "\\[")  # the palette reads markup
                entries.append((command.description, f"key: {PREFIX_KEY_DISPLAY} then {keys}",
                                command.action))
        return entries
