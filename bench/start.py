"""Figures 3 and 5: start overhead and burst starts; control plane start-up, adoption, memory.

The VMM is the STAND-IN ``qemu-system-x86_64`` (``standin_vmm.py qemu``) first on the control
plane's PATH: it creates the QMP socket and answers QMP, so the QEMU backend's start path runs
unchanged (``command()`` -> console keeper -> VMM exec -> wait for the QMP socket ->
``query-status`` -> record saved) while no guest boots.

Baseline, measured alternately in the same run: the same stand-in started directly by the bench
with the argv the backend builds, until it answers ``query-status`` on its QMP socket through the
product's own ``wait_for_socket`` and ``qmp_command`` (exactly what ``QemuBackend.boot`` waits
for). Overhead = glidex start latency - direct start latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import (
    PROCS,
    Row,
    Section,
    fresh_dir,
    median,
    mib,
    percentile,
    start_ticks,
    sweep,
    wait_for,
)
from bench.controlplane import ControlPlane, standin_home, vm_body
from glidex_core.config import Paths, Settings
from glidex_core.models import VmRecord
from glidex_core.vmm.base import wait_for_socket
from glidex_core.vmm.qemu import QemuBackend
from glidex_core.vmm.qmp import qmp_command

BURST = 100


class DirectStarter:
    """Start the stand-in VMM the way a user would run the backend's command by hand."""

    def __init__(self, folder: Path, bin_dir: Path, body: dict) -> None:
        self.folder = folder
        self.log = folder / "standin-direct.log"
        self.env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                        GLIDEX_ACCEL="tcg", GLIDEX_BENCH_STANDIN_LOG=str(self.log))
        self.exec_delays: list[float] = []
        self.paths = Paths(folder / "direct")
        self.paths.ensure()
        self.backend = QemuBackend(self.paths, Settings())
        self.body = body
        self.running: list[tuple[subprocess.Popen, int, int]] = []

    def argv(self, name: str) -> tuple[list[str], Path]:
        os.environ.setdefault("GLIDEX_ACCEL", "tcg")
        record = VmRecord.from_spec(_spec(name, self.body), "qemu")
        return self.backend.command(record), self.paths.qmp_socket(record.id)

    async def start(self, argv: list[str], qmp: Path, *, note_exec: bool = False) -> float:
        qmp.unlink(missing_ok=True)
        master, slave = os.openpty()
        lines_before = _lines(self.log)
        begin = time.monotonic()
        process = PROCS.popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                              env=self.env)
        os.close(slave)
        await wait_for_socket(qmp, timeout=30)
        await qmp_command(qmp, "query-status")
        elapsed = time.monotonic() - begin
        self.running.append((process, master, start_ticks(process.pid) or 0))
        if note_exec:
            self.exec_delays.append(_exec_time(self.log, lines_before) - begin)
        return elapsed

    def stop_all(self) -> None:
        for process, master, ticks in self.running:
            PROCS.end(process.pid, ticks, group=True)
            process.wait(10)
            os.close(master)
        self.running.clear()


def _lines(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def _exec_time(log: Path, line: int) -> float:
    """When the stand-in started running its own code (it logs CLOCK_MONOTONIC)."""
    return float(log.read_text().splitlines()[line].split()[0])


def _spec(name: str, body: dict):
    from glidex_core.models import VmSpec

    return VmSpec(name=name, **{k: v for k, v in body.items() if k != "hypervisor"},
                  hypervisor=body["hypervisor"])


async def _sequential(planes: dict[str, ControlPlane], direct: DirectStarter, body: dict,
                      n: int) -> dict[str, list[float]]:
    """n alternating rounds: a start (then forced stop) on each control plane, then a direct
    start of the stand-in (then kill). Returns the latencies, and when each stand-in began
    running its own code (``exec:<label>``)."""
    out: dict[str, list[float]] = {"direct": []}
    clients = {label: httpx.AsyncClient(base_url=cp.url, timeout=120)
               for label, cp in planes.items()}
    try:
        vms = {label: (await client.post("/vms", json=vm_body(body, "seq")))
               .raise_for_status().json() for label, client in clients.items()}
        for i in range(n + 1):
            for label, client in clients.items():
                log = planes[label].home.parent / f"standin-starts-{label}.log"
                lines_before = _lines(log)
                begin = time.monotonic()
                response = await client.post(f"/vms/{vms[label]['id']}/start")
                elapsed = time.monotonic() - begin
                response.raise_for_status()
                exec_time = _exec_time(log, lines_before)
                await client.post(f"/vms/{vms[label]['id']}/stop", params={"force": "true"})
                if i:  # round 0 is a warm-up (page cache, first imports)
                    out.setdefault(label, []).append(elapsed)
                    out.setdefault(f"exec:{label}", []).append(exec_time - begin)
            argv, qmp = direct.argv(f"direct{i}")
            direct_elapsed = await direct.start(argv, qmp, note_exec=i > 0)
            direct.stop_all()
            if i:
                out["direct"].append(direct_elapsed)
        for label, client in clients.items():
            await client.delete(f"/vms/{vms[label]['id']}")
    finally:
        for client in clients.values():
            await client.aclose()
    return out


async def _burst(cp: ControlPlane, direct: DirectStarter, body: dict) -> tuple[float, float]:
    """BURST VMs started by BURST concurrent requests; the same number of direct starts."""
    limits = httpx.Limits(max_connections=BURST + 10, max_keepalive_connections=BURST + 10)
    async with httpx.AsyncClient(base_url=cp.url, timeout=300, limits=limits) as client:
        ids = []
        for i in range(BURST):
            response = await client.post("/vms", json=vm_body(body, f"burst{i:03d}"))
            ids.append(response.raise_for_status().json()["id"])
        begin = time.monotonic()
        responses = await asyncio.gather(*(client.post(f"/vms/{i}/start") for i in ids))
        glidex_wall = time.monotonic() - begin
        failed = [r.text for r in responses if r.status_code != 200]
        if failed:
            raise RuntimeError(f"{len(failed)} burst starts failed: {failed[0]}")
    starts = [direct.argv(f"directburst{i}") for i in range(BURST)]
    begin = time.monotonic()
    await asyncio.gather(*(direct.start(argv, qmp) for argv, qmp in starts))
    direct_wall = time.monotonic() - begin
    direct.stop_all()
    return BURST / glidex_wall, BURST / direct_wall


def _adopt_once(home: Path, bin_dir: Path, expect_running: int) -> tuple[float, ControlPlane]:
    """Start a control plane; seconds until /health answers with every VM running."""
    begin = time.monotonic()
    cp = ControlPlane(home, standin_bin=bin_dir)

    def adopted() -> bool:
        try:
            return cp.health()["vms"].get("running", 0) == expect_running
        except httpx.HTTPError:
            return False

    wait_for(adopted, 60, f"{expect_running} running VMs in /health", interval=0.005)
    return time.monotonic() - begin, cp


def run(quick: bool) -> tuple[Section, Section]:
    work = fresh_dir("start")
    home, bin_dir, body = standin_home(work)
    n = 12 if quick else 100
    adopt_rounds = 2 if quick else 5
    s3 = Section(3, "Start overhead: POST /vms/{id}/start vs the stand-in VMM started directly")
    s5 = Section(5, "Control plane memory, start-up and adoption")
    planes = {
        "glidex": ControlPlane(home, standin_bin=bin_dir, env={
            "GLIDEX_BENCH_STANDIN_LOG": str(work / "standin-starts-glidex.log")}),
    }
    direct = DirectStarter(work, bin_dir, body)
    try:
        seq = asyncio.run(_sequential(planes, direct, body, n))
        base50 = median(seq["direct"])
        over = [g - base50 for g in seq["glidex"]]
        s3.rows.append(Row("3.1", "start overhead p50 (latency - direct p50)",
                           1e3 * median(over), "ms", 1e3 * base50, "direct stand-in start p50",
                           target="<= 30 ms", met=median(over) <= 0.030, fmt="{:.1f}"))
        s3.rows.append(Row("3.2", "start overhead p99", 1e3 * percentile(over, 99), "ms",
                           1e3 * percentile(seq["direct"], 99), "direct stand-in start p99",
                           fmt="{:.1f}"))
        direct_exec = median(direct.exec_delays)
        s3.notes.append(
            f"{n} alternating rounds after one warm-up round; whole-request latency p50: "
            + ", ".join(f"{label} {1e3 * median(seq[label]):.0f} ms" for label in planes)
            + f", direct {1e3 * base50:.0f} ms. Until the stand-in runs its first line: p50 "
            + ", ".join(f"{label} {1e3 * median(seq['exec:' + label]):.0f} ms"
                        for label in planes)
            + f" from the request; {1e3 * direct_exec:.0f} ms when started directly (its own "
            "interpreter start). The difference is spent before the VMM is exec'd: HTTP, "
            "supervisor, and above all the console keeper's Python start-up.")
        keeper_rows, keeper_note = keeper_start_rows(work, 8 if quick else 30)
        s3.rows += keeper_rows
        s3.notes.append(keeper_note)
        cp = planes["glidex"]
        burst, burst_base = asyncio.run(_burst(cp, direct, body))
        s3.rows.append(Row("3.3", f"starts/s, {BURST} concurrent POST start", burst,
                           "starts/s", burst_base, f"{BURST} direct stand-in starts at once",
                           target=">= 10/s", met=burst >= 10, fmt="{:.1f}"))
        s3.notes.append("The control plane's keepers' command line: "
                        + _keeper_cmdline(home) + ".")
        running_mem = cp.memory()
        cp.stop()  # its 100 VMs keep running: now adopt them
        planes.clear()
        adopt: list[float] = []
        empty: list[float] = []
        for i in range(adopt_rounds):
            elapsed, cp = _adopt_once(home, bin_dir, BURST)
            adopt.append(elapsed)
            adopted_mem = cp.memory()
            cp.stop()
            elapsed, cp = _adopt_once(work / f"empty-home-{i}", bin_dir, 0)
            empty.append(elapsed)
            cp.stop()
        s5.rows.append(Row("5.2", f"start control plane + adopt {BURST} running VMs",
                           median(adopt), "s", median(empty), "start with an empty home",
                           target="<= 2 s", met=median(adopt) <= 2.0, fmt="{:.2f}"))
        s5.notes.append(
            f"Adoption: {adopt_rounds} alternating rounds, from exec until /health answers "
            f"with {BURST} running (runs: " + ", ".join(f"{a:.2f}" for a in adopt)
            + " s; empty home: " + ", ".join(f"{e:.2f}" for e in empty) + " s). Control "
            f"plane RSS with {BURST} running VMs: {running_mem['rss']:.0f} MiB after the "
            f"burst, {adopted_mem['rss']:.0f} MiB after adopting them.")
        _, cp = _adopt_once(home, bin_dir, BURST)
        planes["glidex"] = cp
        _stop_all(cp)
    finally:
        for cp in planes.values():
            cp.stop()
        direct.stop_all()
        sweep(work)
    return s3, s5


def _keeper_cmdline(home: Path) -> str:
    for pid_file in home.rglob("*.keeper.pid"):
        try:
            pid = json.loads(pid_file.read_text())["keeper_pid"]
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError):
            continue
        return " ".join(a.decode() for a in argv[:4])
    return "(no keeper found)"


def keeper_start_rows(work: Path, n: int) -> tuple[list[Row], str]:
    """The console keeper's own start (spawn -> "ready") as the supervisor spawns it
    (``python -S``), next to a bare interpreter's start (spawn -> exit of ``python3 -c pass``);
    and, for the notes, the keeper started without ``-S`` (as before fix D)."""
    from bench.console import KEEPER_FLAGS, KeeperProcess

    times: dict[str, list[float]] = {"keeper": [], "no -S": [], "bare": []}
    for i in range(n + 1):
        for label, flags in (("keeper", KEEPER_FLAGS), ("no -S", ())):
            folder = work / f"keeper-start-{label}-{i}"
            folder.mkdir()
            begin = time.monotonic()
            keeper = KeeperProcess(folder, ["sleep", "3600"], python_flags=flags)
            elapsed = time.monotonic() - begin
            keeper.stop()
            if i:
                times[label].append(elapsed)
        begin = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        if i:
            times["bare"].append(time.monotonic() - begin)
    bare = median(times["bare"])
    rows = [Row("3.4", "console keeper start (spawn -> ready, python -S)",
                1e3 * median(times["keeper"]), "ms", 1e3 * bare, "bare python3 -c pass",
                fmt="{:.0f}")]
    note = (f"Keeper start, {n} alternating runs: python -S (as the supervisor starts it) "
            f"{1e3 * median(times['keeper']):.0f} ms, without -S (as before fix D) "
            f"{1e3 * median(times['no -S']):.0f} ms, bare python3 -c pass {1e3 * bare:.0f} ms.")
    return rows, note


def _stop_all(cp: ControlPlane) -> None:
    async def stop() -> None:
        limits = httpx.Limits(max_connections=BURST + 10)
        async with httpx.AsyncClient(base_url=cp.url, timeout=120, limits=limits) as client:
            vms = (await client.get("/vms")).json()
            await asyncio.gather(*(client.post(f"/vms/{vm['id']}/stop", params={"force": "true"})
                                   for vm in vms if vm["state"] == "running"))

    asyncio.run(stop())


def control_plane_memory(records_home_rss: float, empty_rss: float) -> Row:
    return Row("5.1", "control plane RSS, 1000 VM records (after the API load)",
               records_home_rss, "MiB", empty_rss, "control plane, empty home",
               target="<= 100 MiB", met=records_home_rss <= 100, fmt="{:.0f}")


__all__ = ["control_plane_memory", "mib", "run"]
