"""Live CPU% and RSS of each VM's VMM process, for the details panel and its sparkline.

Why the pid is checked before it is measured: pids are reused, and a record's ``vmm_pid`` may
outlive its process (a stale record, a dashboard attached to another host's control plane). The
keeper's pid file in the run directory holds the VMM's pid *and* its kernel start ticks; a pid
is measured only if both still match (:func:`glidex_core.console.procinfo.is_same_process`).
Anything else shows as "not measured", never as some other process's numbers.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import psutil

from glidex_core.config import Paths
from glidex_core.console.procinfo import is_same_process
from glidex_core.models import VmRecord

HISTORY = 60  # samples kept per VM: one minute at the dashboard's 1 s refresh


@dataclass
class VmmStats:
    """The latest measurement of one VMM process, with its recent CPU history."""

    pid: int
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    cpu_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))


class MetricsSource(Protocol):
    """What the dashboard needs from a sampler (tests inject a fixed one)."""

    def sample(self, records: Iterable[VmRecord]) -> None: ...

    def stats(self, vm_id: str) -> VmmStats | None: ...


def verified_vmm_pid(paths: Paths, record: VmRecord) -> int | None:
    """The record's VMM pid if the keeper's pid file proves it is still that very process."""
    if not record.is_live or not record.vmm_pid:
        return None
    try:
        info = json.loads(paths.keeper_pid_file(record.id).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("vmm_pid") != record.vmm_pid:
        return None
    return record.vmm_pid if is_same_process(record.vmm_pid, info.get("vmm_start")) else None


class VmmMetrics:
    """Samples every live VM's VMM once per call; keeps a short CPU history per VM."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._processes: dict[str, psutil.Process] = {}
        self._stats: dict[str, VmmStats] = {}

    def sample(self, records: Iterable[VmRecord]) -> None:
        seen: set[str] = set()
        for record in records:
            process = self._processes.get(record.id)
            stats = self._stats.get(record.id)
            if process is not None and stats is not None and record.is_live \
                    and stats.pid == record.vmm_pid:
                # Vouched for when first measured: psutil's own check (pid and start time)
                # is enough from then on, without reading the pid file every second.
                pid = record.vmm_pid if process.is_running() else None
            else:
                pid = verified_vmm_pid(self.paths, record)
            if pid is None:
                continue
            seen.add(record.id)
            if process is None or stats is None or stats.pid != pid:
                try:
                    process = psutil.Process(pid)
                    process.cpu_percent(None)  # the first call only sets the baseline
                except psutil.Error:
                    continue
                self._processes[record.id] = process
                self._stats[record.id] = VmmStats(pid)
                continue
            try:
                with process.oneshot():
                    stats.cpu_percent = process.cpu_percent(None)
                    stats.rss_bytes = process.memory_info().rss
            except psutil.Error:
                seen.discard(record.id)
                continue
            stats.cpu_history.append(stats.cpu_percent)
        for gone in set(self._stats) - seen:
            self._stats.pop(gone, None)
            self._processes.pop(gone, None)

    def stats(self, vm_id: str) -> VmmStats | None:
        """The latest numbers for a VM, or None if its VMM is not (yet) measured."""
        stats = self._stats.get(vm_id)
        return stats if stats is not None and stats.cpu_history else None
