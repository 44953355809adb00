"""SVG snapshots of the dashboard's main screens (pytest-textual-snapshot).

Everything that could vary is injected, so the pictures are the same on every run and machine:
the VMs come from a fixed in-memory supervisor (fixed ids, times and paths under a made-up
home), the clock is frozen, CPU/RSS come from fixed numbers, and the console panes replay
recorded guest output (``/work/shared/guest/boot-capture.bin`` and a small coloured session)
from a log file, attached to a Unix socket that never sends anything.

The snapshots live in ``tests/__snapshots__/test_dashboard_snapshots/``. After a deliberate
change, look at the report (``snapshot_report.html``) and run
``pytest tests/test_dashboard_snapshots.py --snapshot-update`` to accept the new pictures.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pytest

from glidex_core.config import Paths, Settings
from glidex_core.models import NotFoundError, VmRecord, VmState
from glidex_core.supervisor import ConsoleInfo
from glidex_tui.app import GlidexApp
from glidex_tui.metrics import VmmStats
from glidex_tui.screens.help import HelpScreen
from glidex_tui.widgets.vm_table import VmTable

CAPTURE = Path("/work/shared/guest/boot-capture.bin")
NOW = 1_790_000_000.0  # the frozen clock
HOME = Path("/home/demo/.glidex")  # shown in the details panel; never touched
SIZE = (130, 40)
SESSION = (
    b"\x1b[2J\x1b[H/ # ls --color /srv\r\n"
    b"\x1b[1;34mbackups\x1b[0m  \x1b[1;32mdeploy.sh\x1b[0m  \x1b[1;36mlatest\x1b[0m  notes.txt\r\n"
    b"/ # cat /proc/loadavg\r\n0.42 0.31 0.18 2/87 311\r\n"
    b"/ # printf '\\033[38;5;208mamber\\033[0m \\033[7mreverse\\033[0m "
    b"\\033[4munder\\033[0m\\n'\r\n"
    b"\x1b[38;5;208mamber\x1b[0m \x1b[7mreverse\x1b[0m \x1b[4munder\x1b[0m\r\n"
    b"/ # echo \xe6\xbc\xa2\xe5\xad\x97 ok\r\n\xe6\xbc\xa2\xe5\xad\x97 ok\r\n/ # "
)


PANIC = (b"/ # kill -SEGV 1\r\n[   42.123456] traps: init[1] general protection fault\r\n"
         b"[   42.130001] Kernel panic - not syncing: Attempted to kill init! "
         b"exitcode=0x00000009\r\n[   42.131002] ---[ end Kernel panic - not syncing ]---\r\n")


def record(n: int, name: str, state: VmState, **extra) -> VmRecord:
    base = dict(
        id=f"{n:08x}-0000-4000-8000-{n:012x}", name=name, vcpu_count=1 + n % 2,
        mem_size_mib=256 * n, kernel_image_path="/srv/images/vmlinuz",
        rootfs_path=f"/srv/images/{name}.ext4", hypervisor="qemu",
        kernel_args="console=ttyS0 root=/dev/nvme0n1 rw", state=state,
        created_at=NOW - 86_400 + n, updated_at=NOW - 60,
    )
    if state in (VmState.RUNNING, VmState.PAUSED):
        base.update(started_at=NOW - 3_725 * n, vmm_pid=4100 + n, keeper_pid=4000 + n)
    base.update(extra)
    return VmRecord(**base)


RECORDS = [
    record(1, "web", VmState.RUNNING),
    record(2, "db", VmState.RUNNING, hypervisor="firecracker"),
    record(3, "cache", VmState.STOPPED, exit_code=0, reason="the guest powered off",
           stopped_at=NOW - 600),
    record(4, "queue", VmState.CRASHED, exit_code=0, stopped_at=NOW - 120,
           reason="guest kernel panic (VMM exited with code 0): Kernel panic - not syncing: "
                  "Attempted to kill init! exitcode=0x00000009"),
    record(5, "batch", VmState.PAUSED),
]


class FrozenSupervisor:
    """The supervisor surface the dashboard uses, over fixed records (no processes)."""

    def __init__(self, consoles: dict[str, ConsoleInfo]) -> None:
        self.paths = Paths(HOME)
        self.settings = Settings()
        self.consoles = consoles

    def list(self) -> list[VmRecord]:
        return list(RECORDS)

    def get(self, ref: str) -> VmRecord:
        for r in RECORDS:
            if ref in (r.id, r.name):
                return r
        raise NotFoundError(ref)

    def console_info(self, ref: str) -> ConsoleInfo:
        r = self.get(ref)
        info = self.consoles.get(r.name)
        if info is None:
            return ConsoleInfo(r.id, Path("/nonexistent.sock"), Path("/nonexistent.log"), False)
        return info if r.is_live else ConsoleInfo(r.id, info.console_socket_path,
                                                  info.log_path, False)

    open_console = console_info

    def subscribe(self, callback) -> None:
        return None

    async def close(self) -> None:
        return None


class FixedMetrics:
    def sample(self, records: Iterable[VmRecord]) -> None:
        return None

    def stats(self, vm_id: str) -> VmmStats | None:
        if vm_id != RECORDS[0].id:
            return None
        history = [3, 5, 4, 8, 20, 55, 97, 88, 60, 35, 22, 14, 9, 12, 18, 11, 7, 6, 9, 12.5]
        return VmmStats(4101, 12.5, 187 * 1024 * 1024, deque(history, maxlen=60))


@pytest.fixture
def consoles():
    """Log files with recorded output and listening sockets for web and db."""
    if not CAPTURE.exists():
        pytest.skip("boot capture not available")
    folder = Path(tempfile.mkdtemp(prefix="gxsnap"))  # short: socket paths are limited
    listeners = []
    infos = {}
    for name, data in (("web", CAPTURE.read_bytes()), ("db", SESSION), ("queue", PANIC)):
        log = folder / f"{name}.log"
        log.write_bytes(data)
        path = folder / f"{name}.sock"
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen(8)  # connections complete in the backlog; nothing is ever sent
        listeners.append(listener)
        infos[name] = ConsoleInfo(next(r.id for r in RECORDS if r.name == name), path, log,
                                  True)
    yield infos
    for listener in listeners:
        listener.close()


def make_app(home: Path, consoles: dict[str, ConsoleInfo]) -> GlidexApp:
    return GlidexApp(home=home, supervisor=FrozenSupervisor(consoles), clock=lambda: NOW,
                     metrics=FixedMetrics())


async def settle(pilot, app: GlidexApp) -> None:
    """Wait until every pane has replayed its log and nothing changes any more."""
    panes = [info.pane for info in app.area.panes.values()]
    last = None
    for _ in range(100):
        state = [p.screen_lines() for p in panes] + [[p.connected for p in panes]]
        if state == last and all(p.connected for p in panes):
            break
        last = state
        await pilot.pause(0.1)
    for field in app.screen.query("Input"):
        field.cursor_blink = False
    await pilot.pause(0.2)


async def open_consoles(pilot, app: GlidexApp, names: list[str]) -> None:
    for name in names:
        app.open_console(app.supervisor.get(name))
    await settle(pilot, app)


def select(app: GlidexApp, name: str) -> None:
    table = app.query_one(VmTable)
    table.move_cursor(row=table.get_row_index(app.supervisor.get(name).id), animate=False)


def test_main_screen(snap_compare, home, consoles):
    """The VM table (five states) and the details panel of a running VM with CPU/RSS."""
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_details_of_a_crashed_vm(snap_compare, home, consoles):
    """A crashed VM: exit signal, reason, and no process to measure."""
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        select(app, "queue")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_two_consoles_side_by_side(snap_compare, home, consoles):
    """Two panes fed recorded bytes (a boot, and a coloured session with CJK); db focused."""
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await open_consoles(pilot, app, ["web", "db"])

    assert snap_compare(app, terminal_size=(170, 50), run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_maximised_console(snap_compare, home, consoles):
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await open_consoles(pilot, app, ["web", "db"])
        app.area.focus_pane(app.supervisor.get("web").id)
        await pilot.press("ctrl+backslash", "z")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_prefix_overlay(snap_compare, home, consoles):
    """Ctrl+\\ in a console: what the next key does."""
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await open_consoles(pilot, app, ["db"])
        await pilot.press("ctrl+backslash")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_filter_marks_and_sort(snap_compare, home, consoles):
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await pilot.press("1", "1")  # by name, descending
        select(app, "db")
        await pilot.press("space")
        select(app, "batch")
        await pilot.press("space", "slash", "b")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_command_line(snap_compare, home, consoles):
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await pilot.press("colon", "s", "t", "a", "r", "t", "space", "w")
        await asyncio.sleep(0.2)  # let the suggester answer
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


def test_help_screen(snap_compare, home, consoles):
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await pilot.press("question_mark")
        await settle(pilot, app)
        assert isinstance(app.screen, HelpScreen)

    assert snap_compare(app, terminal_size=(120, 60), run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'


@pytest.mark.parametrize("theme", ["glidex-light", "glidex-high-contrast"])
def test_themes(snap_compare, home, consoles, theme):
    """The remembered theme (config.toml) applied at start, with a console open."""
    home.mkdir(parents=True)
    (home / "config.toml").write_text(f'theme = "{theme}"\n')
    app = make_app(home, consoles)

    async def run_before(pilot) -> None:
        await open_consoles(pilot, app, ["db"])
        await pilot.press("ctrl+right_square_bracket")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.return_code == 0, 'the app crashed while the picture was taken'
