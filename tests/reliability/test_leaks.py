"""Fault 6: leaks. 200 create/start/stop/delete cycles through a real control plane (TEST
STAND-IN VMMs) leave its fd count and RSS at the baseline (within 5 %), measured after a warm-up
of 20 cycles, and leave no VM file in the runtime dir and no VM folder in the home."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

from glidex_core.config import Paths
from tests.helpers import standin_spec
from tests.reliability.support import (
    fd_count,
    processes_under,
    run_dir_leftovers,
    spec_body,
    standin_env,
    wait_until,
    write_config,
)

STREAMS = 4  # cycles run in this many concurrent streams (on different VMs) to save time
WARMUP = 20
CYCLES = 200
TOLERANCE = 0.05


def within(value: float, baseline: float) -> bool:
    return abs(value - baseline) <= max(1, TOLERANCE * baseline)


def test_200_lifecycles_leak_no_fd_memory_or_file(planes, tmp_path):
    home = tmp_path / "h"
    write_config(home, stop_timeout=2.0)
    plane = planes(home, standin_env())
    process = psutil.Process(plane.pid)
    spec_files = tmp_path / "images"
    spec_files.mkdir()

    def stream(index: int, cycles: int, phase: str) -> None:
        with httpx.Client(base_url=plane.url, timeout=60) as http:
            for n in range(cycles):
                spec = standin_spec(spec_files, f"{phase}-{index}-{n}", "standin.counter=50")
                created = http.post("/vms", json=spec_body(spec))
                assert created.status_code == 201, created.text
                vm_id = created.json()["id"]
                started = http.post(f"/vms/{vm_id}/start")
                assert started.status_code == 200, started.text
                stopped = http.post(f"/vms/{vm_id}/stop")
                assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
                assert http.delete(f"/vms/{vm_id}").status_code == 204

    def run(cycles: int, phase: str) -> None:
        with ThreadPoolExecutor(STREAMS) as pool:
            for result in [pool.submit(stream, i, cycles // STREAMS, phase)
                           for i in range(STREAMS)]:
                result.result()

    def settled() -> tuple[int, int]:
        time.sleep(0.5)  # let the last keepers' exits be reaped
        return fd_count(plane.pid), process.memory_info().rss

    run(WARMUP, "warm")
    base_fds, base_rss = settled()
    started = time.monotonic()
    run(CYCLES, "leak")
    took = time.monotonic() - started

    fds, rss = wait_until(lambda: (lambda s: s if within(s[0], base_fds) else None)(settled()),
                          10, message="the fd count back at its baseline")
    print(f"{CYCLES} cycles in {took:.1f} s; fds {base_fds} -> {fds}; RSS {base_rss >> 10} -> "
          f"{rss >> 10} KiB")
    assert within(fds, base_fds), f"fds {base_fds} -> {fds}"
    assert abs(rss - base_rss) <= TOLERANCE * base_rss, (
        f"RSS {base_rss >> 10} KiB -> {rss >> 10} KiB after {CYCLES} cycles ({took:.0f} s)")
    assert run_dir_leftovers(home) == set()
    assert os.listdir(Paths(home).vms_dir) == []
    assert plane.http.get("/vms").json() == []
    assert processes_under(home) == []
    assert not [c for c in process.children() if c.status() == psutil.STATUS_ZOMBIE]
