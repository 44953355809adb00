"""The Glidex dashboard: a live table of VMs over an embedded supervisor, with consoles."""

from __future__ import annotations

from pathlib import Path

import httpx
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

from glidex_core.api.remote import RemoteSupervisor
from glidex_core.api.server import ApiServer, read_discovery
from glidex_core.config import Paths, default_hypervisor, glidex_home
from glidex_core.models import GlidexError, VmSpec, VmState
from glidex_core.policy import max_mem_mib
from glidex_core.supervisor import Supervisor, SupervisorBusyError, VmEvent
from glidex_tui.screens.confirm import ConfirmScreen
from glidex_tui.screens.console import ConsoleScreen
from glidex_tui.screens.create_form import CreateVmScreen, FormDefaults
from glidex_tui.widgets.vm_table import VmTable

# App-level keys a console pane needs for the guest while it has focus (shells use Ctrl+P, ...).
KEYS_YIELDED_TO_CONSOLE = {"quit", "command_palette"}
# Failures of an operation the user asked for are reported by that operation; a crash is news.
CRASH_STATES = (VmState.CRASHED,)


class GlidexApp(App[None]):
    TITLE = "Glidex"
    SUB_TITLE = "microVM control plane"
    CSS_PATH = "glidex.tcss"
    BINDINGS = [
        Binding("n", "create", "New"),
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("p", "pause_resume", "Pause/Resume"),
        Binding("d", "delete", "Delete"),
        Binding("enter", "console", "Console", priority=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, home: Path | None = None, *, serve_api: bool = False) -> None:
        super().__init__()
        self.home = home or glidex_home()
        self.serve_api = serve_api
        self.supervisor: Supervisor | RemoteSupervisor | None = None
        self.api_server: ApiServer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield VmTable(id="vms")
        yield Static("", id="details")
        yield Footer()

    async def on_mount(self) -> None:
        try:
            self.supervisor = await self._open_supervisor()
        except (GlidexError, ValueError, OSError, httpx.HTTPError) as exc:
            self.exit(return_code=1, message=f"glidex: {exc}")
            return
        self.supervisor.subscribe(self._on_vm_event)
        self.refresh_table()
        self.set_interval(1.0, self.refresh_table)
        self.query_one(VmTable).focus()

    async def _open_supervisor(self) -> Supervisor | RemoteSupervisor:
        """Embed a supervisor, or attach to the control plane that already owns this home."""
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

    # -- table -----------------------------------------------------------------------------
    def _on_vm_event(self, event: VmEvent) -> None:
        self.refresh_table()
        if event.kind == "state" and event.vm.state in CRASH_STATES:
            self.notify(f"{event.vm.name}: {event.vm.state} ({event.reason})", severity="error")

    def refresh_table(self) -> None:
        if self.supervisor is None:
            return
        table = self.query_one(VmTable)
        table.sync(self.supervisor.list())
        self._show_details()

    def on_data_table_row_highlighted(self, _event: VmTable.RowHighlighted) -> None:
        self._show_details()

    def _show_details(self) -> None:
        record = self._selected(quiet=True)
        details = self.query_one("#details", Static)
        if record is None:
            details.update("No VMs yet: press [b]n[/b] to create one.")
            return
        reason = f"  ({record.reason})" if record.reason else ""
        details.update(
            f"[b]{record.name}[/b]  {record.id}  {record.state}{reason}\n"
            f"kernel {record.kernel_image_path}  rootfs {record.rootfs_path}"
        )

    def _selected(self, quiet: bool = False):
        vm_id = self.query_one(VmTable).selected_id
        if vm_id is None or self.supervisor is None:
            if not quiet:
                self.notify("No VM selected: press n to create one.", severity="warning")
            return None
        try:
            return self.supervisor.get(vm_id)
        except GlidexError:
            return None

    # -- key bindings ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a console captures input, let its keys reach the guest instead of the app."""
        console_focused = getattr(self.focused, "captures_input", False)
        return not (console_focused and action in KEYS_YIELDED_TO_CONSOLE)

    def action_create(self) -> None:
        if self.supervisor is None:
            return
        paths, names = self.supervisor.paths, {r.name for r in self.supervisor.list()}
        suggestion = next(f"vm{i}" for i in range(1, len(names) + 2) if f"vm{i}" not in names)
        defaults = FormDefaults(
            name=suggestion,
            kernel_image_path=str(paths.default_kernel),
            rootfs_path=str(paths.default_rootfs),
            hypervisor=default_hypervisor(self.supervisor.settings),
            max_mem_mib=max_mem_mib(self.supervisor.settings),
            taken_names=frozenset(names),
        )
        self.push_screen(CreateVmScreen(defaults), self._create_from_form)

    def _create_from_form(self, spec: VmSpec | None) -> None:
        if spec is not None:
            self.run_worker(self._run("create", self.supervisor.create(spec)))

    async def _run(self, what: str, operation) -> None:
        """Run a supervisor operation, turning its errors into notifications."""
        try:
            record = await operation
        except GlidexError as exc:
            self.notify(f"{what} failed: {exc}", severity="error", timeout=10)
            return
        self.refresh_table()
        if what == "create" and record is not None:
            table = self.query_one(VmTable)
            table.move_cursor(row=table.get_row_index(record.id))

    def action_start(self) -> None:
        if record := self._selected():
            self.run_worker(self._run("start", self.supervisor.start(record.id)))

    def action_stop(self) -> None:
        if record := self._selected():
            self.run_worker(self._run("stop", self.supervisor.stop(record.id)))

    def action_pause_resume(self) -> None:
        if record := self._selected():
            operation = (self.supervisor.resume if record.state == VmState.PAUSED
                         else self.supervisor.pause)
            self.run_worker(self._run("pause/resume", operation(record.id)))

    def action_delete(self) -> None:
        record = self._selected()
        if record is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._run("delete", self.supervisor.delete(record.id)))

        running = " It is running and will be stopped first." if record.is_live else ""
        self.push_screen(
            ConfirmScreen(f"Delete VM {record.name}?{running} Its disk files are kept."), answered
        )

    def action_console(self) -> None:
        record = self._selected()
        if record is None:
            return
        info = self.supervisor.console_info(record.id)
        if not info.available:
            self.notify(f"{record.name} is {record.state}: start it (s) to use its console.",
                        severity="warning")
            return
        self.push_screen(ConsoleScreen(record.name, info))

    def on_data_table_row_selected(self, _event: VmTable.RowSelected) -> None:
        self.action_console()
