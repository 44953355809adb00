"""What every benchmark shares: the work dir, process bookkeeping, statistics, results."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from glidex_core.console.procinfo import start_ticks

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
STANDIN = BENCH_DIR / "standin_vmm.py"
_SUN_PATH_MAX = 107


def work_root() -> Path:
    """``bench/work`` (gitignored), or ~/.cache/glidex-bench when that path is too long for
    Unix sockets. Never /tmp."""
    root = BENCH_DIR / "work"
    if len(str(root)) > 50:
        root = Path.home() / ".cache" / "glidex-bench"
    return root


def fresh_dir(name: str) -> Path:
    path = work_root() / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    return path


def standin_argv(mode: str, *args: str) -> list[str]:
    """The stand-in VMM's command line (``-S``: it needs no site-packages)."""
    return [sys.executable, "-S", str(STANDIN), mode, *args]


def write_qemu_standin(bin_dir: Path) -> Path:
    """A ``qemu-system-x86_64`` on ``bin_dir`` that is the bench STAND-IN, not QEMU."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "qemu-system-x86_64"
    path.write_text(
        f"#!{sys.executable} -S\n"
        "# BENCHMARK STAND-IN for qemu-system-x86_64 (see bench/standin_vmm.py): boots nothing.\n"
        "import sys\n"
        f"sys.path.insert(0, {str(BENCH_DIR)!r})\n"
        "import standin_vmm\n"
        "standin_vmm.main(['qemu', *sys.argv[1:]])\n"
    )
    path.chmod(0o755)
    return path


# -- processes -----------------------------------------------------------------------------------
class Procs:
    """Every process a benchmark starts or learns of, ended at cleanup by pid *and* start time."""

    def __init__(self) -> None:
        self._known: list[tuple[int, int | None, bool]] = []  # pid, start ticks, own group
        self._popens: list[subprocess.Popen] = []

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("start_new_session", True)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(argv, **kwargs)
        self._popens.append(process)
        self._known.append((process.pid, start_ticks(process.pid),
                            bool(kwargs["start_new_session"])))
        return process

    def adopt(self, pid: int | None, ticks: int | None = None) -> None:
        if pid:
            self._known.append((pid, ticks if ticks is not None else start_ticks(pid), False))

    def adopt_keepers(self, folder: Path) -> None:
        """Keepers (and their VMMs) found through pid files under ``folder``."""
        for pid_file in folder.rglob("*.keeper.pid"):
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(pid_file.read_text())
                self.adopt(info.get("keeper_pid"), info.get("keeper_start"))
                self.adopt(info.get("vmm_pid"), info.get("vmm_start"))

    def end(self, pid: int, ticks: int | None, group: bool = False, grace: float = 3.0) -> None:
        if ticks is None or start_ticks(pid) != ticks:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and start_ticks(pid) == ticks:
            self._reap()
            time.sleep(0.02)
        if start_ticks(pid) == ticks:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)

    def _reap(self) -> None:
        for process in self._popens:
            process.poll()

    def cleanup(self) -> None:
        for pid, ticks, group in reversed(self._known):
            self.end(pid, ticks, group)
        for process in self._popens:
            with contextlib.suppress(Exception):
                process.wait(1)
        self._known.clear()
        self._popens.clear()


PROCS = Procs()


def sweep(folder: Path) -> None:
    """End whatever keepers and VMMs are still running under ``folder``."""
    PROCS.adopt_keepers(folder)
    PROCS.cleanup()


# -- statistics ----------------------------------------------------------------------------------
def percentile(values: Iterable[float], p: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def mib(n: float) -> float:
    return n / (1 << 20)


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             interval: float = 0.005) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS in MiB (psutil memory_full_info)."""
    info = psutil.Process(pid).memory_full_info()
    return {"rss": mib(info.rss), "pss": mib(getattr(info, "pss", info.rss)),
            "uss": mib(info.uss)}


# -- results -------------------------------------------------------------------------------------
@dataclass
class Row:
    """One figure: its value, the baseline measured in the same run, the target."""

    key: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None  # None: no target or not measurable
    note: str = ""
    fmt: str = "{:.3g}"
    paired_ratio: float | None = None  # median of per-round ratios, when runs were paired

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def show(self, number: float | None) -> str:
        return "-" if number is None else self.fmt.format(number)


@dataclass
class Section:
    number: int
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def machine_facts() -> dict[str, str]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    accel = os.environ.get("GLIDEX_ACCEL", "tcg")
    qemu_version = "-"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                             text=True, timeout=10).stdout
        qemu_version = out.splitlines()[0].strip()
    commit = "-"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / (1 << 30):.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "qemu": qemu_version,
        "accel": f"{accel} (QEMU, from GLIDEX_ACCEL; /dev/kvm "
                 f"{'openable' if kvm else 'not openable'})",
        "commit": commit,
    }
