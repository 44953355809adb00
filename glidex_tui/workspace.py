"""The dashboard's pane actions: open consoles beside each other, move between them, close,
maximise, scroll back and search, and save/restore the layout in config.toml.

Kept apart from app.py so the App class stays about wiring; this mixin only drives the
:class:`ConsoleArea` and talks to ConsolePane through its public API.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from glidex_core.models import GlidexError, VmRecord
from glidex_tui.layout import Direction, LayoutError, Orientation, PaneLayout
from glidex_tui.screens.picker import PickVmScreen
from glidex_tui.screens.prompt import PromptScreen
from glidex_tui.widgets.console_area import ConsoleArea
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.vm_table import VmTable

if TYPE_CHECKING:
    from glidex_tui.app import GlidexApp

LAYOUT_KEY = "dashboard_layout"  # config.toml table holding the saved split tree


class WorkspaceActions:
    """Mixed into GlidexApp: every action on the console panes."""

    _search_history: list[str]

    # -- helpers -------------------------------------------------------------------------
    @property
    def area(self: GlidexApp) -> ConsoleArea:
        return self.query_one(ConsoleArea)

    def _live_pane(self: GlidexApp) -> ConsolePane | None:
        pane = self.area.active_pane
        if pane is None:
            self.notify("No console pane open: select a running VM and press Enter.",
                        severity="warning")
        return pane

    def open_console(self: GlidexApp, record: VmRecord, *, beside: str | None = None,
                     orientation: Orientation | None = None, focus: bool = True) -> bool:
        """Open (or focus) the VM's console pane; False with a notification if it cannot."""
        area = self.area
        existing = area.panes.get(record.id)
        if existing is not None and not existing.closed:
            if focus:
                area.focus_pane(record.id)
            return True
        info = self.supervisor.open_console(record.id)
        if not info.available:
            self.notify(f"{record.name} is {record.state}: start it (s) to use its console.",
                        severity="warning")
            return False
        try:
            area.open(record.id, record.name, info, beside=beside, orientation=orientation)
        except LayoutError as exc:
            self.notify(f"Cannot open {record.name}: {exc}. Close a pane first "
                        f"(^\\ then x).", severity="warning")
            return False
        if focus:
            area.focus_pane(record.id)
        return True

    # -- opening -------------------------------------------------------------------------
    def action_console(self: GlidexApp) -> None:
        """Enter: the selected VM's console, placed where it fits best (four make a grid)."""
        if record := self._selected():
            self.open_console(record)

    def action_split(self: GlidexApp, orientation: Orientation) -> None:
        """| or -: the selected VM's console beside / below the active pane."""
        if record := self._selected():
            self.open_console(record, beside=self.area.active, orientation=orientation)

    def action_split_pick(self: GlidexApp, orientation: Orientation) -> None:
        """From inside a console: ask which running VM to show beside / below it."""
        open_ids = {vm for vm, info in self.area.panes.items() if not info.closed}
        choices = [(r.id, r.name) for r in self.supervisor.list()
                   if r.is_live and r.id not in open_ids]
        if not choices:
            self.notify("No other running VM to show: start one first.", severity="warning")
            return
        anchor = self.area.active
        where = "beside" if orientation == "row" else "below"

        def chosen(vm_id: str | None) -> None:
            if vm_id is not None:
                try:
                    record = self.supervisor.get(vm_id)
                except GlidexError:
                    return
                self.open_console(record, beside=anchor, orientation=orientation)

        self.push_screen(PickVmScreen(f"Console to open {where} the focused pane:", choices),
                         chosen)

    # -- focus -----------------------------------------------------------------------------
    def action_focus_panes(self: GlidexApp) -> None:
        """Tab from the table: back to the pane used last."""
        area = self.area
        target = area.active or next(iter(area.order()), None)
        if target is None:
            self.notify("No console pane open: select a running VM and press Enter.")
            return
        area.focus_pane(target)

    def action_focus_table(self: GlidexApp) -> None:
        area = self.area
        if area.zoomed is not None:
            area.toggle_zoom()
        self.screen.set_focus(self.query_one(VmTable))  # at once: see ConsoleArea.focus_pane

    def action_focus_direction(self: GlidexApp, direction: Direction) -> None:
        if self._live_pane() is not None and self.area.focus_direction(direction) is None:
            self.bell()  # at the edge, as tmux does nothing there

    def action_focus_next_pane(self: GlidexApp, step: int = 1) -> None:
        if self._live_pane() is not None:
            self.area.focus_next(step)

    # -- closing and maximising ----------------------------------------------------------
    def action_close_pane(self: GlidexApp) -> None:
        area = self.area
        if area.active is None:
            self._live_pane()
            return
        from_table = self.focused is self.query_one(VmTable)
        following = area.close(area.active)
        if following is not None and not from_table:
            area.focus_pane(following)
        else:  # closed from the table (^\ x, :close): the keyboard stays there
            area.active = following
            self.screen.set_focus(self.query_one(VmTable))

    def action_zoom_pane(self: GlidexApp) -> None:
        area = self.area
        if self._live_pane() is None:
            return
        area.toggle_zoom()
        if area.active is not None:
            area.focus_pane(area.active)

    # -- into the pane (ConsolePane's public API) --------------------------------------------
    async def action_pane_call(self: GlidexApp, method: str, *args: object) -> None:
        """Run a ConsolePane action (scroll_history_up, jump_to_live, search_next, ...) on the
        active pane, if this version of the pane has it."""
        pane = self._live_pane()
        if pane is None:
            return
        function = getattr(pane, f"action_{method}", None) or getattr(pane, method, None)
        if not callable(function):
            self.notify(f"The console cannot {method.replace('_', ' ')} yet.",
                        severity="warning")
            return
        result: Any = function(*args)
        if inspect.isawaitable(result):
            await result

    def action_pane_search(self: GlidexApp) -> None:
        pane = self._live_pane()
        if pane is None:
            return
        if callable(getattr(pane, "action_search_prompt", None)):
            pane.action_search_prompt()  # the pane's own prompt remembers the last query
            return
        search = getattr(pane, "search", None)
        if not callable(search):
            self.notify("The console cannot search its history yet.", severity="warning")
            return

        async def searched(text: str | None) -> None:
            if text:
                result = search(text)
                if inspect.isawaitable(result):
                    await result
            pane.focus()

        self.push_screen(PromptScreen("/", history=self._search_history,
                                      placeholder="search the console history"), searched)

    async def action_send_prefix(self: GlidexApp) -> None:
        """The prefix twice: the guest gets a real Ctrl+\\ (SIGQUIT in a shell)."""
        focused = self.focused
        pane = focused if isinstance(focused, ConsolePane) else self.area.active_pane
        if pane is not None:
            await pane.send(b"\x1c")

    # -- layout in config.toml -------------------------------------------------------------
    def action_save_layout(self: GlidexApp) -> None:
        records = {r.id: r.name for r in self.supervisor.list()}
        tree = self.area.layout_tree.to_dict(lambda vm_id: records.get(vm_id, vm_id))

        def update(settings) -> None:
            if tree is None:
                settings.extra.pop(LAYOUT_KEY, None)
            else:
                settings.extra[LAYOUT_KEY] = tree

        if self.update_settings(update):
            count = len(self.area.layout_tree)
            self.notify(f"Layout saved ({count} pane{'s' if count != 1 else ''}); "
                        "it is restored when glidex starts.")

    def forget_layout(self: GlidexApp) -> None:
        if self.update_settings(lambda s: s.extra.pop(LAYOUT_KEY, None)):
            self.notify("Saved layout forgotten.")

    def restore_layout(self: GlidexApp, *, quiet: bool = False) -> None:
        """Re-open the saved panes whose VMs are running; say which ones were left out."""
        saved = self.read_settings().extra.get(LAYOUT_KEY)
        if saved is None:
            if not quiet:
                self.notify("No saved layout (^\\ S or :layout save saves one).")
            return
        by_name = {r.name: r for r in self.supervisor.list()}
        try:
            tree = PaneLayout.from_dict(saved)
        except LayoutError as exc:
            self.notify(f"The saved layout in config.toml is not usable: {exc}",
                        severity="error")
            return
        missing = tree.keep(lambda name: name in by_name and by_name[name].is_live)
        id_tree = PaneLayout.from_dict(tree.to_dict(), key=lambda name: by_name[name].id)
        consoles = {}
        for vm_id in id_tree.leaf_keys():
            info = self.supervisor.open_console(vm_id)
            if info.available:
                consoles[vm_id] = (self.supervisor.get(vm_id).name, info)
        self.area.replace_all(id_tree, consoles)
        if missing:
            self.notify(f"Layout restored without {', '.join(missing)} (not running).",
                        severity="warning")
        elif not quiet:
            self.notify(f"Layout restored ({len(consoles)} panes).")
