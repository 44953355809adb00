"""Figure 4: REST API latency and throughput with 1000 VM records; figure 5.1: control plane RSS.

The records are written in the store's own format (one ``vm.toml`` per VM, what
``RecordStore.save`` writes, minus the per-file fsync) before a real control plane starts on the
home. Clients are keep-alive connections of a minimal HTTP/1.1 client (http_load.py; httpx
used to saturate the bench's own core first) in the bench process, each with its own
connection, closed loop (a client sends its next request when the previous answer arrived).
Baseline: ``GET /health`` on the same server at the same concurrency, i.e. the floor of this
HTTP stack.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import psutil
import tomli_w

from bench.common import Row, Section, fresh_dir, median, percentile
from bench.controlplane import ControlPlane
from bench.http_load import KeepAliveConnection
from glidex_core.config import Paths
from glidex_core.models import VmRecord, VmSpec, VmState

RECORDS = 1000


def write_records(home: Path, n: int) -> list[str]:
    paths = Paths(home)
    paths.ensure()
    ids = []
    now = time.time()
    for i in range(n):
        spec = VmSpec(name=f"vm{i:04d}", kernel_image_path=str(home / "vmlinuz"),
                      rootfs_path=str(home / f"rootfs-{i:04d}.ext4"), mem_size_mib=256)
        record = VmRecord.from_spec(spec, "qemu")
        record.created_at = now - n + i
        record.state = VmState.STOPPED
        record.started_at, record.stopped_at = now - 100, now - 50
        record.exit_code = 0
        record.reason = "stopped on request (VMM exited with code 0)"
        folder = paths.vm_dir(record.id)
        folder.mkdir(mode=0o700)
        (folder / "vm.toml").write_bytes(tomli_w.dumps(record.to_dict()).encode())
        ids.append(record.id)
    return ids


async def _load(url: str, paths: list[str], clients: int, per_client: int,
                server_pid: int, rate: float = 0.0) -> dict:
    """``clients`` clients, each sending ``per_client`` GETs of ``paths`` (cycled).

    Closed loop (``rate`` 0): the next request goes when the answer arrived. Open loop: each
    client sends ``rate`` requests/s on a fixed schedule and latency counts from the scheduled
    send time (so a slow answer also delays, and is charged to, the requests behind it).
    """
    latencies: list[float] = []
    server = psutil.Process(server_pid)
    connections = await asyncio.gather(*(KeepAliveConnection.open(url) for _ in range(clients)))
    try:
        for i, connection in enumerate(connections):  # first answers: connections warm
            await connection.get(paths[i % len(paths)])

        async def one(index: int) -> None:
            connection, offset = connections[index], index * 7
            loop = asyncio.get_running_loop()
            start = loop.time() + (offset % clients) / (rate * clients) if rate else 0.0
            for j in range(per_client):
                path = paths[(offset + j) % len(paths)]
                if rate:
                    scheduled = start + j / rate
                    await asyncio.sleep(max(0.0, scheduled - loop.time()))
                    begin = scheduled
                else:
                    begin = loop.time()
                await connection.get(path)
                latencies.append(loop.time() - begin)

        cpu_server = sum(server.cpu_times()[:2])
        cpu_client = sum(os.times()[:2])
        begin = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        wall = time.perf_counter() - begin
        cpu_server = sum(server.cpu_times()[:2]) - cpu_server
        cpu_client = sum(os.times()[:2]) - cpu_client
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    return {"p50": median(latencies), "p99": percentile(latencies, 99),
            "rps": len(latencies) / wall, "n": len(latencies),
            "server_cpu": cpu_server / wall, "client_cpu": cpu_client / wall}


def _plan(ids: list[str], quick: bool) -> list[tuple[str, str, list[str], int, int]]:
    rng = random.Random(6)
    one = [f"/vms/{rng.choice(ids)}" for _ in range(512)]
    k = 1 if quick else 4
    return [  # key, name, paths, clients, requests per client
        ("4.0", "GET /health", ["/health"], 1, 200 * k),
        ("4.0", "GET /health", ["/health"], 50, 40 * k),
        ("4.1", f"GET /vms ({RECORDS})", ["/vms"], 1, 20 * k),
        ("4.2", f"GET /vms ({RECORDS})", ["/vms"], 50, 1 * k),
        ("4.3", "GET /vms/{id}", one, 1, 200 * k),
        ("4.4", "GET /vms/{id}", one, 50, 40 * k),
        ("4.5", "GET /vms/{id} at 4 req/s each", one, 50, 6 * k),
    ]


TARGETS = {("4.1", "p50"): 0.030, ("4.4", "p99"): 0.020}
OPEN_LOOP_RATE = 4.0


def run(quick: bool) -> tuple[Section, float, float]:
    """Section 4, and the control plane's RSS with 1000 records and with an empty home."""
    work = fresh_dir("api")
    section = Section(4, f"API latency, {RECORDS} VM records (keep-alive clients, closed loop)")
    empty = ControlPlane(work / "empty-home")
    time.sleep(0.5)
    empty_rss = empty.memory()["rss"]
    empty.stop()
    ids = write_records(work / "home", RECORDS)
    cp = ControlPlane(work / "home")
    results: dict[tuple[str, int], dict] = {}
    try:
        plan = _plan(ids, quick)

        async def measure() -> None:
            await _load(cp.url, ["/vms"], 1, 3, cp.pid)  # warm-up: imports, first answers
            await _load(cp.url, plan[4][2], 1, 50, cp.pid)
            for key, _, paths, clients, per_client in plan:
                rate = OPEN_LOOP_RATE if key == "4.5" else 0.0
                results[key, clients] = await _load(cp.url, paths, clients, per_client,
                                                    cp.pid, rate)

        asyncio.run(measure())
        busy_rss = cp.memory()["rss"]
    finally:
        cp.stop()
    for key, name, _, clients, _ in plan:
        if key == "4.0":
            continue
        r, h = results[key, clients], results["4.0", clients]
        who = f"{clients} client{'s' if clients > 1 else ''}"
        for stat in ("p50", "p99") if key == "4.5" else ("p50", "p99", "rps"):
            limit = TARGETS.get((key, stat))
            scale, unit, fmt = (1, "req/s", "{:.0f}") if stat == "rps" else \
                (1e3, "ms", "{:.1f}")
            section.rows.append(Row(
                key, f"{name}, {who}, {stat if stat != 'rps' else 'throughput'}",
                scale * r[stat], unit, scale * h[stat], f"GET /health {stat}, {who}",
                target=f"<= {limit * 1e3:.0f} ms" if limit else "",
                met=(r[stat] <= limit) if limit else None, fmt=fmt))
    section.notes.append(
        "Requests per measurement: " + ", ".join(
            f"{name} x{clients}: {results[key, clients]['n']}"
            for key, name, _, clients, _ in plan)
        + ". With N closed-loop clients a request waits behind the N-1 others on one event "
        "loop (Little's law: latency ~= N / throughput). 4.5 is open loop: 50 clients each "
        f"sending {OPEN_LOOP_RATE:.0f} req/s on a schedule ({50 * OPEN_LOOP_RATE:.0f} req/s "
        "offered), latency from the scheduled send time.")
    busy = results["4.4", 50]
    section.notes.append(
        f"CPU during GET /vms/{{id}} x50 closed loop: server {busy['server_cpu']:.0%} of a "
        f"core ({1e3 * busy['server_cpu'] / busy['rps']:.2f} ms per request), client "
        f"(http_load.py, bench process) {busy['client_cpu']:.0%}, for {busy['rps']:.0f} req/s.")
    return section, busy_rss, empty_rss
