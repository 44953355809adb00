"""The console area: up to MAX_PANES console panes side by side, stacked, or both.

Why absolute positions: the split tree (:mod:`glidex_tui.layout`) changes shape as panes are
split and closed, but a ConsolePane must never be re-mounted (that would drop its keeper
connection and its screen). So every pane is a direct child of this area and gets its rectangle
from the tree as an absolute offset and size; a layout change only moves rectangles.

Maximise ("zoom") is done here too rather than with Textual's ``Screen.maximize``: the zoomed
pane gets the whole area and the app hides the table, and Esc is never taken from the guest.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.widget import Widget

from glidex_core.supervisor import ConsoleInfo
from glidex_tui.keymap import LEAVE_KEY_DISPLAY, PREFIX_KEY_DISPLAY
from glidex_tui.layout import Direction, LayoutError, Orientation, PaneLayout
from glidex_tui.widgets.console_pane import ConsolePane

FOCUSED_HINT = f"{LEAVE_KEY_DISPLAY} table · {PREFIX_KEY_DISPLAY} commands"
ZOOMED_HINT = f"maximised: {PREFIX_KEY_DISPLAY} z restores · {FOCUSED_HINT}"


@dataclass
class PaneInfo:
    """What the area knows about a pane beyond the widget: which VM, and whether it closed."""

    vm_id: str
    name: str
    pane: ConsolePane
    closed: bool = False


class ConsoleArea(Widget, can_focus=False):
    """Holds the panes and the split tree; moves focus between panes; zooms one."""

    ALLOW_MAXIMIZE = False

    class Changed(Message):
        """Panes were opened, closed or zoomed (the app adjusts the screen around them)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.layout_tree = PaneLayout()
        self.panes: dict[str, PaneInfo] = {}
        self.active: str | None = None
        self.zoomed: str | None = None

    # -- queries -------------------------------------------------------------------------
    def pane_for(self, vm_id: str) -> ConsolePane | None:
        info = self.panes.get(vm_id)
        return info.pane if info else None

    def vm_of(self, pane: Widget) -> str | None:
        return next((vm for vm, info in self.panes.items() if info.pane is pane), None)

    @property
    def active_pane(self) -> ConsolePane | None:
        return self.pane_for(self.active) if self.active else None

    def order(self) -> list[str]:
        return self.layout_tree.leaf_keys()

    # -- opening and closing -------------------------------------------------------------
    def open(self, vm_id: str, name: str, info: ConsoleInfo, *, beside: str | None = None,
             orientation: Orientation | None = None) -> ConsolePane:
        """Open a pane on a VM (or replace its closed pane in place); raises LayoutError when
        the area is full. Without ``orientation`` the pane goes where it fits best."""
        old = self.panes.get(vm_id)
        if old is not None and not old.closed:
            return old.pane
        if old is None:
            if orientation is None:
                beside, orientation = self.layout_tree.auto_split(*self._area_size())
            self.layout_tree.add(vm_id, beside, orientation)
        else:
            old.pane.remove()
        pane = ConsolePane(info.console_socket_path, info.log_path, title=name)
        self.panes[vm_id] = PaneInfo(vm_id, name, pane)
        self.mount(pane)
        self.relayout()
        self.post_message(self.Changed())
        return pane

    def replace_all(self, tree: PaneLayout, consoles: dict[str, tuple[str, ConsoleInfo]]) -> None:
        """Close every pane and open ``tree`` (a restored layout) with the given consoles;
        leaves without a console are dropped."""
        for info in self.panes.values():
            info.pane.remove()
        self.panes.clear()
        self.active = self.zoomed = None
        tree.keep(lambda vm_id: vm_id in consoles)
        self.layout_tree = tree
        for vm_id in tree.leaf_keys():
            name, console = consoles[vm_id]
            pane = ConsolePane(console.console_socket_path, console.log_path, title=name)
            self.panes[vm_id] = PaneInfo(vm_id, name, pane)
            self.mount(pane)
        # The first restored pane is the active one, as a newly opened pane would be, so pane
        # commands from the table (:close, prefix x) act on it (found by a new user).
        self.active = next(iter(tree.leaf_keys()), None)
        self.relayout()
        self.post_message(self.Changed())

    def close(self, vm_id: str) -> str | None:
        """Close a pane; return the VM whose pane should get focus next (or None)."""
        info = self.panes.pop(vm_id, None)
        if info is None:
            return None
        order = self.order()
        index = order.index(vm_id) if vm_id in order else 0
        self.layout_tree.remove(vm_id)
        info.pane.remove()
        if self.zoomed == vm_id:
            self.zoomed = None
        remaining = self.order()
        following = remaining[min(index, len(remaining) - 1)] if remaining else None
        if self.active == vm_id:
            self.active = following
        self.relayout()
        self.post_message(self.Changed())
        return following

    def mark_closed(self, pane: ConsolePane) -> PaneInfo | None:
        """The pane's console ended: say so in its title, keep it for reading."""
        vm_id = self.vm_of(pane)
        if vm_id is None:
            return None
        info = self.panes[vm_id]
        info.closed = True
        pane.border_title = f"{info.name} (closed)"
        return info

    # -- focus -----------------------------------------------------------------------------
    def focus_pane(self, vm_id: str) -> bool:
        info = self.panes.get(vm_id)
        if info is None:
            return False
        if self.zoomed is not None and self.zoomed != vm_id:
            self.zoomed = None  # moving to another pane un-zooms, as in tmux
            self.relayout()
            self.post_message(self.Changed())
        self.active = vm_id
        # Focus now, not on the next message loop turn (as Widget.focus does): keys typed
        # right after Enter are already queued, and they belong to the console.
        self.display = True
        self.screen.set_focus(info.pane)
        if self.screen.focused is not info.pane:
            info.pane.focus()
        return True

    def focus_next(self, step: int = 1) -> str | None:
        order = self.order()
        if not order:
            return None
        index = order.index(self.active) if self.active in order else -step
        target = order[(index + step) % len(order)]
        self.focus_pane(target)
        return target

    def focus_direction(self, direction: Direction) -> str | None:
        if self.active is None:
            return self.focus_next()
        target = self.layout_tree.neighbour(self.active, direction, *self._area_size())
        if target is not None:
            self.focus_pane(target)
        return target

    def on_descendant_focus(self, event) -> None:
        vm_id = self.vm_of(event.widget)
        if vm_id is not None:
            self.active = vm_id
            event.widget.border_subtitle = ZOOMED_HINT if self.zoomed == vm_id else FOCUSED_HINT

    def on_descendant_blur(self, event) -> None:
        if self.vm_of(event.widget) is not None:
            event.widget.border_subtitle = ""

    # -- geometry --------------------------------------------------------------------------
    def toggle_zoom(self, vm_id: str | None = None) -> bool:
        """Maximise the pane (default: the active one) or restore; True if now zoomed."""
        target = vm_id or self.active
        self.zoomed = None if self.zoomed is not None or target is None else target
        for key, info in self.panes.items():
            if info.pane.border_subtitle:  # the focused one: say how to restore
                info.pane.border_subtitle = ZOOMED_HINT if self.zoomed == key else FOCUSED_HINT
        self.relayout()
        self.post_message(self.Changed())
        return self.zoomed is not None

    def _area_size(self) -> tuple[int, int]:
        size = self.content_region.size if self.is_mounted else None
        if not size or not size.width or not size.height:
            return 120, 24  # not laid out yet: assume a common terminal
        return size.width, size.height

    def relayout(self) -> None:
        """Give every pane its rectangle (the zoomed one gets everything)."""
        width, height = self._area_size()
        rects = self.layout_tree.rects(width, height)
        for vm_id, info in self.panes.items():
            styles = info.pane.styles
            if self.zoomed is not None:
                show = vm_id == self.zoomed
                x, y, w, h = 0, 0, width, height
            else:
                rect = rects.get(vm_id)
                show = rect is not None
                x, y, w, h = (rect.x, rect.y, rect.width, rect.height) if rect else (0, 0, 1, 1)
            info.pane.display = show
            styles.offset = (x, y)
            styles.width = max(w, 1)
            styles.height = max(h, 1)

    def on_resize(self) -> None:
        self.relayout()


__all__ = ["ConsoleArea", "LayoutError", "PaneInfo"]
