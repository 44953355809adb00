"""The live VM table: rows keyed by VM id and updated cell by cell, so nothing flickers and the
cursor stays on the same VM while states change."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from glidex_core.models import VmRecord, VmState

# Fixed widths (name aside) so a row never shows a cut-off value while others change.
COLUMNS = (
    ("name", "Name", None),
    ("state", "State", 8),
    ("hypervisor", "Hypervisor", 11),
    ("vcpus", "vCPU", 4),
    ("memory", "Memory", 10),
    ("uptime", "Uptime", 8),
)

STATE_STYLES = {
    VmState.RUNNING: "bold green",
    VmState.PAUSED: "yellow",
    VmState.CREATED: "cyan",
    VmState.STOPPED: "dim",
    VmState.FAILED: "bold red",
    VmState.CRASHED: "bold red",
}


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def row_cells(record: VmRecord) -> dict[str, object]:
    return {
        "name": record.name,
        "state": Text(str(record.state), style=STATE_STYLES.get(record.state, "")),
        "hypervisor": record.hypervisor,
        "vcpus": str(record.vcpu_count),
        "memory": f"{record.mem_size_mib} MiB",
        "uptime": format_uptime(record.uptime),
    }


class VmTable(DataTable):
    """A DataTable that knows how to mirror a list of VM records."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def sync(self, records: list[VmRecord]) -> None:
        """Add, update and remove rows to match ``records``, touching only what changed."""
        wanted = {r.id: r for r in records}
        for row_key in list(self.rows):
            if row_key.value not in wanted:
                self.remove_row(row_key)
        for record in records:
            cells = row_cells(record)
            if record.id not in self.rows:
                self.add_row(*cells.values(), key=record.id)
                continue
            for column, value in cells.items():
                if self.get_cell(record.id, column) != value:
                    self.update_cell(record.id, column, value, update_width=column == "name")

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value
