"""The details panel: everything about the selected VM on one screen, including what its VMM
process costs right now (CPU%, RSS and a sparkline of recent CPU) and the last lines of its
console, so "why did it stop?" is answered without opening anything.

The text is built by pure functions from plain values (record, paths, clock, stats) so the
panel is deterministic under test: no clock, pid or path is read here behind the caller's back.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from glidex_core.models import VmRecord, VmState
from glidex_core.supervisor import describe_exit
from glidex_tui.metrics import VmmStats
from glidex_tui.widgets.vm_table import format_uptime, uptime_at

CONSOLE_LINES = 6
_TAIL_BYTES = 8192
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, queries
                      rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles
                      rb"|\x1b[()][0-9A-Za-z]"  # character set selection
                      rb"|\x1b[@-Z\\-_=>78]")  # the rest of the two-byte escapes
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def console_tail_lines(log_path: Path, count: int = CONSOLE_LINES) -> list[str]:
    """The last ``count`` non-blank lines of a console log as plain text (escape sequences
    removed, a carriage return keeps what was written after it, as a terminal shows it)."""
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    text = _ESCAPES.sub(b"", data).decode("utf-8", errors="replace")
    lines = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r").rsplit("\r", 1)[-1]
        line = _CONTROLS.sub("", line).rstrip()
        if line:
            lines.append(line)
    return lines[-count:]


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def describe_record(record: VmRecord, log_path: Path, now: float) -> str:
    """The panel's first part (Rich markup): identity, config, paths, process, exit."""
    state = f"[b]{record.state}[/b]"
    if record.is_live:
        state += f" for {format_uptime(uptime_at(record, now))}"
    lines = [
        f"[b]{escape(record.name)}[/b]  {record.id}",
        f"state       {state}",
    ]
    if record.reason:
        lines.append(f"reason      {escape(record.reason)}")
    if record.exit_code is not None or record.exit_signal:
        exit_status = describe_exit(record.exit_code, record.exit_signal)
        if exit_status not in (record.reason or ""):
            lines.append(f"exit        {exit_status}")
    lines += [
        f"hypervisor  {record.hypervisor}   {record.vcpu_count} vCPU   "
        f"{record.mem_size_mib} MiB",
        f"kernel      {escape(record.kernel_image_path)}",
        f"rootfs      {escape(record.rootfs_path)}",
    ]
    if record.initrd_path:
        lines.append(f"initrd      {escape(record.initrd_path)}")
    if record.kernel_args:
        lines.append(f"args        {escape(record.kernel_args)}")
    lines.append(f"console log {escape(str(log_path))}")
    if record.vmm_pid:
        keeper = f"   keeper pid {record.keeper_pid}" if record.keeper_pid else ""
        lines.append(f"VMM pid     {record.vmm_pid}{keeper}")
    return "\n".join(lines)


def describe_usage(record: VmRecord, stats: VmmStats | None) -> str:
    if not record.is_live:
        return "CPU  -   RSS  -   (no VMM process)"
    if stats is None:
        return "CPU  …   RSS  …   (measuring the VMM process)"
    return f"CPU  [b]{stats.cpu_percent:5.1f}%[/b]   RSS  [b]{format_bytes(stats.rss_bytes)}[/b]"


BARS = "▁▂▃▄▅▆▇█"  # idle is a flat line of the lowest bar


def cpu_bars(history: list[float], width: int) -> str:
    """The last ``width`` CPU samples as bars on an absolute scale: 0 to 100% of a core (more
    if the VMM used more). Textual's Sparkline scales to the data's own range, which drew an
    idle VM at 0-1% as full bars (found by a new user)."""
    samples = history[-width:] if width > 0 else []
    top = max(100.0, *samples) if samples else 100.0
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))]
                   for v in samples)


def _line_lengths(text: str) -> list[int]:
    return [len(line) for line in text.split("\n")]


class QuietStatic(Static):
    """A Static that ignores an update to what it already shows, and asks for a layout only
    when its lines change length: the panel is refreshed every second (the uptime, CPU%), and
    every update with a layout reflowed the whole screen (bench figure 6.7, idle CPU)."""

    _shown: str | None = None

    def show_text(self, content: str) -> None:
        if content == self._shown:
            return
        before, self._shown = self._shown, content
        same_shape = before is not None and _line_lengths(before) == _line_lengths(content)
        self.update(content, layout=not same_shape)  # same lengths: same wrapping, same size


class _TailCache:
    """The last console lines of one log, read again only when the log has changed."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._lines: list[str] = []

    def lines(self, log_path: Path) -> list[str]:
        try:
            stat = log_path.stat()
        except OSError:
            return []
        key = (str(log_path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key != self._key:
            self._key, self._lines = key, console_tail_lines(log_path)
        return self._lines


class CpuSparkline(QuietStatic):
    """Recent CPU of the VMM, one bar per second."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.data: list[float] = []

    def show(self, history: list[float]) -> None:
        self.data = history
        self.show_text(cpu_bars(history, self.content_size.width or 40))


class VmDetails(VerticalScroll, can_focus=False):
    """Shows one VM: its record, live usage with a CPU sparkline, and its last console lines."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._tail = _TailCache()

    def compose(self) -> ComposeResult:
        yield QuietStatic("", id="details-info")
        yield QuietStatic("", id="details-usage")
        yield CpuSparkline(id="details-cpu")
        yield QuietStatic("", id="details-console")

    def show(self, record: VmRecord | None, *, log_path: Path | None = None,
             console_source: Path | None = None, stats: VmmStats | None = None,
             now: float = 0.0, empty_hint: str = "") -> None:
        """Show ``record`` (None: ``empty_hint``). ``log_path`` is shown; ``console_source``
        is read."""
        info = self.query_one("#details-info", QuietStatic)
        usage = self.query_one("#details-usage", QuietStatic)
        sparkline = self.query_one("#details-cpu", CpuSparkline)
        console = self.query_one("#details-console", QuietStatic)
        if record is None:
            info.show_text(empty_hint or "No VM selected.")
            usage.show_text("")
            sparkline.show([])
            sparkline.display = False
            console.show_text("")
            return
        info.show_text(describe_record(record, log_path or Path("-"), now))
        usage.show_text(describe_usage(record, stats))
        sparkline.show(list(stats.cpu_history) if stats is not None else [])
        sparkline.display = stats is not None
        tail = self._tail.lines(console_source) if console_source else []
        if tail:
            console.show_text("[b]last console lines[/b]\n" + "\n".join(escape(t) for t in tail))
        else:
            console.show_text("[b]last console lines[/b]\n[dim](none yet)[/dim]")
        if record.state in (VmState.CRASHED, VmState.FAILED):
            console.add_class("-alert")
        else:
            console.remove_class("-alert")
