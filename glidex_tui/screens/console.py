"""A full-screen console on one VM. Every key goes to the guest except Ctrl+], which leaves."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from glidex_core.supervisor import ConsoleInfo
from glidex_tui.widgets.console_pane import ConsolePane

LEAVE_HINT = "Ctrl+] leaves the console (the VM is not affected)"


class ConsoleScreen(Screen[None]):
    def __init__(self, vm_name: str, info: ConsoleInfo) -> None:
        super().__init__()
        self.vm_name = vm_name
        self.info = info

    def compose(self) -> ComposeResult:
        yield Static(f" Console: [b]{self.vm_name}[/b]   {LEAVE_HINT}", id="console-title")
        yield ConsolePane(self.info.console_socket_path, self.info.log_path,
                          title=self.vm_name, id="console-pane")

    def on_mount(self) -> None:
        self.query_one(ConsolePane).focus()

    def on_console_pane_leave_requested(self, _message: ConsolePane.LeaveRequested) -> None:
        self.dismiss(None)

    def on_console_pane_disconnected(self, _message: ConsolePane.Disconnected) -> None:
        self.notify(f"{self.vm_name}: console closed (the VM ended). {LEAVE_HINT}")
