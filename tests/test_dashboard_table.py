"""The VM table and details panel, driven with Pilot on stand-in VMs: filter, sort, show/hide
stopped VMs, marks and bulk start/stop, and the details panel with live CPU%/RSS."""

from __future__ import annotations

import dataclasses
import os

from textual.app import App

from glidex_core.models import VmState
from glidex_tui.app import GlidexApp
from glidex_tui.metrics import VmmMetrics, verified_vmm_pid
from glidex_tui.widgets.details import console_tail_lines, cpu_bars
from glidex_tui.widgets.filter_input import FilterInput
from glidex_tui.widgets.vm_table import VmTable, format_table_uptime
from tests.test_dashboard_helpers import standin_vms, type_text, wait_until
from tests.test_dashboard_snapshots import RECORDS

NAMES = ["web", "db", "cache", "queue"]


def names_in_table(table: VmTable) -> list[str]:
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def status_text(app: GlidexApp) -> str:
    return str(app.query_one("#table-status").render())


async def test_filter_narrows_the_table_in_place_and_esc_clears(home, qemu_standin):
    async with standin_vms(home, NAMES, running=[]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 4)
            field = app.query_one(FilterInput)
            assert not field.display
            await pilot.press("slash")
            assert field.display and app.focused is field
            await type_text(pilot, "ue")
            assert names_in_table(table) == ["queue"]  # narrows while typing
            assert "1 of 4 VMs" in status_text(app) and "filter" in status_text(app)
            await pilot.press("enter")
            assert app.focused is table and field.display
            await pilot.press("slash", "ctrl+u")
            await type_text(pilot, "!ca")  # ! inverts: everything without "ca"
            assert names_in_table(table) == ["web", "db", "queue"]
            await pilot.press("escape")
            assert names_in_table(table) == NAMES
            assert not field.display and app.focused is table and field.value == ""
            await pilot.press("slash")
            await type_text(pilot, "created")  # the state matches too
            assert table.row_count == 4


async def test_sort_by_column_keys_and_shift_o(home, qemu_standin):
    async with standin_vms(home, NAMES, running=["db"]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 4)
            assert names_in_table(table) == NAMES  # creation order
            await pilot.press("1")
            assert names_in_table(table) == ["cache", "db", "queue", "web"]
            assert str(table.columns["name"].label) == "Name▲"
            await pilot.press("1")
            assert names_in_table(table) == ["web", "queue", "db", "cache"]
            assert str(table.columns["name"].label) == "Name▼"
            await pilot.press("O")  # the next column: state (running first)
            assert table.sort_column == "state" and names_in_table(table)[0] == "db"
            assert str(table.columns["name"].label) == "Name"
            await pilot.press("0")
            assert names_in_table(table) == NAMES and "sort" not in status_text(app)
            # The cursor stays on its VM while rows move.
            table.move_cursor(row=names_in_table(table).index("queue"))
            await pilot.press("1")
            assert str(table.get_row_at(table.cursor_row)[1]) == "queue"
            for number, key in enumerate(("name", "state", "hypervisor", "vcpus", "memory",
                                          "uptime"), start=1):  # every arrow fits in every column
                await pilot.press(str(number))
                column = table.columns[key]
                width = column.content_width if column.auto_width else column.width
                assert column.label.cell_len <= width, (key, str(column.label), width)


async def test_a_hides_and_shows_stopped_vms(home, qemu_standin):
    async with standin_vms(home, NAMES, running=["web", "cache"]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 4)
            await pilot.press("a")
            assert names_in_table(table) == ["web", "cache"]
            assert "running only (2 hidden" in status_text(app)
            await pilot.press("a")
            assert names_in_table(table) == NAMES


async def test_marks_and_bulk_start_then_stop(home, qemu_standin):
    async with standin_vms(home, NAMES, running=[]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 4)

            def state(name: str) -> VmState:
                return app.supervisor.get(name).state

            await pilot.press("space")  # marks web and moves down
            await pilot.press("down", "space")  # marks cache
            assert {app.supervisor.get(i).name for i in table.marked} == {"web", "cache"}
            assert str(table.get_row_at(0)[0]) == "●" and "2 marked" in status_text(app)
            await pilot.press("s")
            await wait_until(pilot, lambda: state("web") == state("cache") == VmState.RUNNING,
                             what="both started")
            assert state("db") == state("queue") == VmState.CREATED
            assert not table.marked  # a bulk action uses the marks up

            table.move_cursor(row=1)
            await pilot.press("space", "space")  # db and cache
            assert len(table.marked) == 2
            await pilot.press("u")
            assert not table.marked and "marked" not in status_text(app)
            for name in ("web", "cache"):
                table.move_cursor(row=table.get_row_index(app.supervisor.get(name).id))
                await pilot.press("space")
            await pilot.press("x")
            await wait_until(pilot, lambda: state("web") == state("cache") == VmState.STOPPED,
                             what="both stopped")


async def test_details_panel_shows_config_process_usage_and_console(home, qemu_standin):
    async with standin_vms(home, NAMES[:2], running=["web"]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 2)
            web = app.supervisor.get("web")
            table.move_cursor(row=table.get_row_index(web.id))

            def details() -> str:
                return "\n".join(str(app.query_one(f"#details-{part}").render())
                                 for part in ("info", "usage", "console"))

            await wait_until(pilot, lambda: "RSS" in details() and "MiB" in details(),
                             what="CPU and RSS")
            text = details()
            assert "web" in text and web.id in text and "running" in text
            assert f"VMM pid     {web.vmm_pid}" in text
            assert "standin-kernel" in text and "console.log" in text
            assert "standin ready" in text  # the last console lines
            sparkline = app.query_one("#details-cpu")
            await wait_until(pilot, lambda: len(sparkline.data or []) >= 2, what="CPU history")
            bars = str(sparkline.render())
            assert len(bars) >= 2 and set(bars) <= set("▁▂▃▄▅▆▇█")

            await pilot.press("x")
            await wait_until(pilot, lambda: app.supervisor.get("web").state == VmState.STOPPED)
            await pilot.pause(1.1)
            assert "no VMM process" in details() and "exit" in details()
            assert "stopped on request" in details()


async def test_metrics_only_measure_the_vmm_the_pid_file_vouches_for(home, qemu_standin):
    async with standin_vms(home, ["web"]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 30)) as pilot:
            record = app.supervisor.get("web")
            paths = app.supervisor.paths
            assert verified_vmm_pid(paths, record) == record.vmm_pid
            impostor = dataclasses.replace(record, vmm_pid=os.getpid())
            assert verified_vmm_pid(paths, impostor) is None
            metrics = VmmMetrics(paths)
            metrics.sample([impostor])
            metrics.sample([impostor])
            assert metrics.stats(record.id) is None
            metrics.sample([record])
            await pilot.pause(0.2)
            metrics.sample([record])
            stats = metrics.stats(record.id)
            assert stats is not None and stats.pid == record.vmm_pid and stats.rss_bytes > 0


def test_console_tail_lines_are_plain_text(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"\x1b[2J\x1b[Hboot\r\n\x1b[1;31mred\x1b[0m line\r\nprogress 10%\rdone\r\n"
                    b"/ # \x1b[6n")
    assert console_tail_lines(log) == ["boot", "red line", "done", "/ #"]
    assert console_tail_lines(tmp_path / "missing") == []


async def test_transitions_and_crashes_are_notified(home, qemu_standin):
    async with standin_vms(home, ["web", "db"], running=[],
                           behaviours={"db": "standin.segv=400"}):  # db crashes once started
        app = GlidexApp(home=home)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 2)

            def said(text: str, severity: str = "information") -> bool:
                return any(text in n.message and n.severity == severity
                           for n in app._notifications)

            await pilot.press("s")  # web
            await wait_until(pilot, lambda: said("web is running"), what="running notice")
            await pilot.press("x")
            await wait_until(pilot, lambda: said("web is stopped"), what="stopped notice")
            await pilot.press("down", "s")  # db: starts, then its VMM dies of SIGSEGV
            await wait_until(pilot, lambda: said("db: crashed", "error"), what="crash notice")
            assert said("SIGSEGV", "error")


def test_cpu_bars_are_on_an_absolute_scale():
    """An idle VMM is a flat low line, not full bars scaled to its own 0-1% range."""
    assert cpu_bars([0, 1, 0.5, 1], 10) == "▁▁▁▁"
    assert cpu_bars([0, 50, 100], 10) == "▁▅█"
    assert cpu_bars([100, 200], 10) == "▅█"  # over one core: scaled to the peak
    assert cpu_bars([float(i) for i in range(30)], 5) == "▃▃▃▃▃"  # the last 5 samples only


def test_table_uptime_is_to_the_minute():
    assert [format_table_uptime(s) for s in (None, 0, 59.9, 60, 3599, 3600, 3660 + 59,
                                             86_399, 86_400 + 7_200)] == [
        "-", "<1m", "<1m", "1m", "59m", "1h 00m", "1h 01m", "23h 59m", "1d 02h"]


class CountingTable(VmTable):
    """The real table, counting the cell updates (each one re-renders the visible table)."""

    updates = 0

    def update_cell(self, *args, **kwargs):
        self.updates += 1
        return super().update_cell(*args, **kwargs)


async def ticking(records, start: float, seconds: int) -> tuple[list[str], list[str], int]:
    """The uptime column before and after ``seconds`` one-second ticks, and the updates."""
    clock = [start]

    class TableApp(App):
        def compose(self):
            yield CountingTable(clock=lambda: clock[0])

    app = TableApp()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(CountingTable)
        table.sync(records)
        await pilot.pause()
        before = [str(table.get_row_at(i)[6]) for i in range(len(records))]
        table.updates = 0
        for second in range(1, seconds + 1):
            clock[0] = start + second
            table.sync()
        after = [str(table.get_row_at(i)[6]) for i in range(len(records))]
        return before, after, table.updates


def running_vms(count: int, started_at) -> list:
    return [dataclasses.replace(
        RECORDS[0], id=f"{n:08x}-0000-4000-8000-{n:012x}", name=f"vm{n}",
        started_at=started_at(n)) for n in range(count)]


async def test_table_rows_of_running_vms_change_once_a_minute_not_every_second():
    """Every cell change re-renders the whole table (bench figure 6.7): with 20 VMs started at
    different seconds, a minute of one-second ticks changes each row once, not 60 times."""
    minute = 1_800_000_000.0  # a whole minute of the clock
    records = running_vms(20, lambda n: minute - 3_600 - 2 * n)
    before, after, updates = await ticking(records, minute + 0.5, 60)
    assert before == ["1h 00m"] * 20
    assert after == ["1h 01m"] * 20 and updates == 20


async def test_table_of_just_started_vms_stays_still_in_their_first_minute():
    now = 1_800_000_000.0
    records = running_vms(20, lambda n: now - n)  # started 0 to 19 s ago
    before, after, updates = await ticking(records, now + 0.5, 40)
    assert before == after == ["<1m"] * 20 and updates == 0
