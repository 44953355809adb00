"""The live VM table: rows keyed by VM id and updated cell by cell, so nothing flickers and the
cursor stays on the same VM while states change, sorting or filtering included.

The table owns how VMs are *viewed* (filter, sort, show/hide stopped, marks); the app owns what
is *done* to them. Its own keys are listed in BINDINGS (and so in ``?`` and the palette).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.markup import escape
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.theme import Theme
from textual.widgets import DataTable

from glidex_core.models import VmRecord, VmState

MARK = "●"
# Fixed widths (name aside) so a row never shows a cut-off value while others change.
COLUMNS = (
    ("mark", " ", 1),
    ("name", "Name", None),
    ("state", "State", 8),
    ("hypervisor", "Hypervisor", 11),
    ("vcpus", "vCPU", 5),  # room for the sort arrow
    ("memory", "Memory", 10),
    ("uptime", "Uptime", 8),
)
SORTABLE = ("name", "state", "hypervisor", "vcpus", "memory", "uptime")  # keys 1-6
SORT_NAMES = {"created": None, "name": "name", "state": "state", "hypervisor": "hypervisor",
              "vcpu": "vcpus", "vcpus": "vcpus", "memory": "memory", "uptime": "uptime"}

STATE_STYLES = {
    VmState.RUNNING: "bold green",
    VmState.PAUSED: "yellow",
    VmState.CREATED: "cyan",
    VmState.STOPPED: "dim",
    VmState.FAILED: "bold red",
    VmState.CRASHED: "bold red",
}
STATE_ORDER = {s: i for i, s in enumerate((VmState.RUNNING, VmState.PAUSED, VmState.CREATED,
                                           VmState.CRASHED, VmState.FAILED, VmState.STOPPED))}


def format_uptime(seconds: float | None) -> str:
    """Exact uptime (``1:02:03``), for the details panel, which re-renders every second anyway."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_table_uptime(seconds: float | None) -> str:
    """Uptime as the table shows it: to the minute (``<1m``, ``5m``, ``1h 02m``, ``2d 03h``).

    Every cell change re-renders the whole visible DataTable, so a column that ticks every
    second kept the dashboard busy when idle (bench figure 6.7, G). To the minute, a row
    changes at most once a minute; the details panel beside it shows the exact uptime.
    """
    if seconds is None:
        return "-"
    minutes = int(seconds) // 60
    if minutes < 1:
        return "<1m"
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02}h"


def uptime_at(record: VmRecord, now: float) -> float | None:
    """Seconds since start at ``now`` (an injected clock keeps snapshots still)."""
    return max(0.0, now - record.started_at) if record.is_live and record.started_at else None


def theme_state_styles(theme: Theme | None) -> dict[VmState, str]:
    """State colours from the theme's success/warning/error colours (the defaults otherwise),
    so a light or high-contrast theme keeps the states readable."""
    if theme is None:
        return STATE_STYLES
    styles = dict(STATE_STYLES)
    if theme.success:
        styles[VmState.RUNNING] = f"bold {theme.success}"
    if theme.warning:
        styles[VmState.PAUSED] = theme.warning
    if theme.secondary:
        styles[VmState.CREATED] = theme.secondary
    if theme.error:
        styles[VmState.FAILED] = styles[VmState.CRASHED] = f"bold {theme.error}"
    return styles


def row_cells(record: VmRecord, now: float, marked: bool = False,
              styles: dict[VmState, str] = STATE_STYLES) -> dict[str, Text]:
    """The cells of a row, as ``Text`` so a re-render does not parse every cell as markup."""
    return {
        "mark": Text(MARK, style="bold") if marked else Text(" "),
        "name": Text(record.name),
        "state": Text(str(record.state), style=styles.get(record.state, "")),
        "hypervisor": Text(record.hypervisor),
        "vcpus": Text(str(record.vcpu_count)),
        "memory": Text(f"{record.mem_size_mib} MiB"),
        "uptime": Text(format_table_uptime(uptime_at(record, now))),
    }


def same_cell(shown: object, wanted: Text) -> bool:
    """Whether a cell already shows ``wanted``: ``Text ==`` ignores the base style, which is
    what a theme switch changes in the state column."""
    return (isinstance(shown, Text) and shown.plain == wanted.plain
            and shown.style == wanted.style and shown.spans == wanted.spans)


def sort_value(record: VmRecord, column: str | None, now: float) -> object:
    """What a column sorts by: the value, not its text (memory 512 before 2048)."""
    if column == "name":
        return record.name
    if column == "state":
        return STATE_ORDER.get(record.state, 99)
    if column == "hypervisor":
        return record.hypervisor
    if column == "vcpus":
        return record.vcpu_count
    if column == "memory":
        return record.mem_size_mib
    if column == "uptime":
        return uptime_at(record, now) or -1.0
    return record.created_at


def matches_filter(record: VmRecord, text: str) -> bool:
    """Case-insensitive substring of name, state or hypervisor; a leading ``!`` inverts."""
    text = text.strip().lower()
    invert = text.startswith("!")
    text = text.removeprefix("!").strip()
    if not text:
        return True
    found = any(text in str(v).lower() for v in (record.name, record.state, record.hypervisor))
    return found != invert


@dataclass
class ViewSummary:
    """What the status line says about the view: counts, filter, hiding, marks, sort."""

    total: int
    shown: int
    hidden_stopped: int
    marked: int
    filter_text: str
    show_stopped: bool
    sort_column: str | None
    sort_reverse: bool

    def describe(self) -> str:
        parts = [f"{self.shown} of {self.total} VMs" if self.shown != self.total
                 else f"{self.total} VM{'s' if self.total != 1 else ''}"]
        if self.filter_text:
            parts.append(f"filter [b]{escape(self.filter_text)}[/b]")
        if not self.show_stopped:
            parts.append(f"running only ({self.hidden_stopped} hidden, a shows all)")
        if self.marked:
            parts.append(f"{self.marked} marked (s/x act on them)")
        if self.sort_column is not None or self.sort_reverse:
            sort = self.sort_column or "creation"
            parts.append(f"sort {sort} {'▼' if self.sort_reverse else '▲'}")
        return " · ".join(parts)


class VmTable(DataTable):
    """A DataTable that mirrors a list of VM records through a filter, a sort and marks."""

    # Priority bindings (active only while the table has focus): handled at the app in the
    # order typed, so "Down, Enter" opens the row below and keys typed after Enter go to the
    # console it opened (see GlidexApp.BINDINGS). The movement keys are DataTable's own,
    # re-bound as priority for that reason.
    BINDINGS = [
        Binding("enter", "app.console", "Console", priority=True),
        Binding("space", "toggle_mark", "Mark", show=False, priority=True),
        Binding("u", "unmark_all", "Unmark all", show=False, priority=True),
        Binding("a", "toggle_stopped", "All/running", show=False, priority=True),
        Binding("O", "cycle_sort", "Sort column", show=False, key_display="shift+o",
                priority=True),
        *(Binding(str(i + 1), f"sort_by({i + 1})", f"Sort by {SORTABLE[i]} (again: reverse)",
                  show=False, priority=True) for i in range(len(SORTABLE))),
        Binding("0", "sort_by(0)", "Sort by creation", show=False, priority=True),
        Binding("slash", "app.filter", "Filter", priority=True),
        Binding("tab", "app.focus_panes", "To consoles", show=False, priority=True),
        Binding("up", "cursor_up", "Cursor up", show=False, priority=True),
        Binding("down", "cursor_down", "Cursor down", show=False, priority=True),
        Binding("pageup", "page_up", "Page up", show=False, priority=True),
        Binding("pagedown", "page_down", "Page down", show=False, priority=True),
        Binding("home", "scroll_top", "First VM", show=False, priority=True),
        Binding("end", "scroll_bottom", "Last VM", show=False, priority=True),
    ]

    class ViewChanged(Message):
        """The filter, sort, hiding or marks changed (the app updates its status line)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.filter_text = ""
        self.show_stopped = True
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.marked: set[str] = set()
        self._records: list[VmRecord] = []
        self._order: list[str] = []

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    # -- mirroring ---------------------------------------------------------------------------
    def visible(self, records: list[VmRecord]) -> list[VmRecord]:
        shown = [r for r in records if (self.show_stopped or r.is_live)
                 and matches_filter(r, self.filter_text)]
        now = self.clock()
        if self.sort_column is None:
            ordered = sorted(shown, key=lambda r: r.created_at, reverse=self.sort_reverse)
        else:
            ordered = sorted(shown, key=lambda r: (sort_value(r, self.sort_column, now),
                                                   r.name), reverse=self.sort_reverse)
        return ordered

    def sync(self, records: list[VmRecord] | None = None, *, resort: bool = False) -> None:
        """Add, update and remove rows to match ``records`` (default: the last ones given)
        through the view, touching only what changed, keeping the cursor on its VM."""
        if records is not None:
            self._records = list(records)
        selected = self.selected_id
        wanted = self.visible(self._records)
        ids = {r.id for r in wanted}
        self.marked &= {r.id for r in self._records}
        now = self.clock()
        styles = theme_state_styles(self.app.current_theme if self.is_attached else None)
        for row_key in list(self.rows):
            if row_key.value not in ids:
                self.remove_row(row_key)
        for record in wanted:
            cells = row_cells(record, now, record.id in self.marked, styles)
            if record.id not in self.rows:
                self.add_row(*cells.values(), key=record.id)
                continue
            for column, value in cells.items():
                if not same_cell(self.get_cell(record.id, column), value):
                    self.update_cell(record.id, column, value, update_width=column == "name")
        order = [r.id for r in wanted]
        if resort or order != self._current_order():
            rank = {r.name: i for i, r in enumerate(wanted)}
            self.sort("name", key=lambda name: rank.get(str(name), len(rank)))
        if selected is not None and selected in ids:
            index = self.get_row_index(selected)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)

    def _current_order(self) -> list[str]:
        return [row.key.value for row in self.ordered_rows]

    def summary(self) -> ViewSummary:
        shown = self.visible(self._records)
        hidden = 0 if self.show_stopped else sum(1 for r in self._records if not r.is_live)
        return ViewSummary(len(self._records), len(shown), hidden, len(self.marked),
                           self.filter_text, self.show_stopped, self.sort_column,
                           self.sort_reverse)

    def _changed(self) -> None:
        self._update_headers()
        self.sync(resort=True)  # sorting also redraws the header with its new arrow
        self.post_message(self.ViewChanged())

    def _update_headers(self) -> None:
        for key, label, _ in COLUMNS:
            arrow = ""
            if key == self.sort_column:  # no space before it: it fits in every column's width
                arrow = "▼" if self.sort_reverse else "▲"
            column = self.columns[key]  # type: ignore[index]
            column.label = Text(label + arrow)
            if column.auto_width:  # the name column: widen for the arrow
                column.content_width = max(column.content_width, column.label.cell_len)

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def marked_ids(self) -> list[str]:
        """Marked VMs in table order (hidden ones included: a mark is a deliberate choice)."""
        return [r.id for r in self._records if r.id in self.marked]

    # -- view changes --------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._changed()

    def set_sort(self, column: str | None) -> None:
        """Sort by ``column`` (a key of COLUMNS, or None for creation order); choosing the
        current column again reverses it."""
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._changed()

    def toggle_mark(self, vm_id: str) -> None:
        self.marked ^= {vm_id}
        self._changed()

    def action_toggle_mark(self) -> None:
        """Mark or unmark the selected VM and move down, so marking a run of VMs is quick."""
        if (vm_id := self.selected_id) is not None:
            self.toggle_mark(vm_id)
            self.action_cursor_down()

    def action_unmark_all(self) -> None:
        self.marked.clear()
        self._changed()

    def action_toggle_stopped(self) -> None:
        self.show_stopped = not self.show_stopped
        self._changed()

    def action_cycle_sort(self) -> None:
        columns: list[str | None] = [None, *SORTABLE]
        following = columns[(columns.index(self.sort_column) + 1) % len(columns)]
        self.sort_column, self.sort_reverse = following, False
        self._changed()

    def action_sort_by(self, number: int) -> None:
        self.set_sort(SORTABLE[number - 1] if 1 <= number <= len(SORTABLE) else None)
