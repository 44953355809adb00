"""Fault 7: concurrency. 200 concurrent API requests mixing create/start/stop/pause/delete over 20
VMs (TEST STAND-IN VMMs) give no 5xx and a consistent final state; 20 concurrent creates of one
name give exactly one 201; SIGKILL at random moments during record writes never leaves a truncated
or unreadable record, and no temporary file is ever taken for a record."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from collections import Counter
from pathlib import Path

import httpx

from glidex_core.config import Paths, short_id
from glidex_core.models import VmRecord
from glidex_core.store import RecordStore
from tests.helpers import standin_spec
from tests.reliability.support import (
    REPO_ROOT,
    alive,
    keeper_info,
    processes_under,
    spec_body,
)

SEED = int(os.environ.get("GLIDEX_TEST_SEED", "0")) or random.randrange(1 << 30)
VMS = 20
REQUESTS = 200
ALLOWED = {
    "create": {201, 409},
    "start": {200, 400, 404},
    "stop": {200, 400, 404},
    "pause": {200, 400, 404},
    "delete": {204, 404},
}


async def test_20_concurrent_creates_of_one_name_give_exactly_one_201(standin_plane, tmp_path):
    plane = standin_plane
    body = spec_body(standin_spec(tmp_path, "only-one"))
    async with httpx.AsyncClient(base_url=plane.url, timeout=60) as http:
        responses = await asyncio.gather(*(http.post("/vms", json=body) for _ in range(20)))
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 409: 19}, codes
    assert all(r.json()["error"] == "conflict" for r in responses if r.status_code == 409)
    listed = [vm for vm in plane.http.get("/vms").json() if vm["name"] == "only-one"]
    assert len(listed) == 1
    on_disk = [r for r in RecordStore(Paths(plane.home)).load_all() if r.name == "only-one"]
    assert [r.id for r in on_disk] == [listed[0]["id"]]
    assert plane.http.delete("/vms/only-one").status_code == 204


async def test_200_concurrent_mixed_requests_leave_a_consistent_state(standin_plane, tmp_path):
    plane = standin_plane
    rng = random.Random(SEED)
    names = [f"mix{i}" for i in range(VMS)]
    bodies = {n: spec_body(standin_spec(tmp_path, n, "standin.counter=100")) for n in names}
    for name in names:
        plane.create(standin_spec(tmp_path, name, "standin.counter=100"))
    for name in names[: VMS // 2]:  # half of them running, so stop and pause have targets
        assert plane.http.post(f"/vms/{name}/start").status_code == 200

    plan = [(rng.choice(list(ALLOWED)), rng.choice(names)) for _ in range(REQUESTS)]

    async def send(http: httpx.AsyncClient, op: str, name: str) -> httpx.Response:
        await asyncio.sleep(rng.random() * 0.2)  # spread, but overlapping
        if op == "create":
            return await http.post("/vms", json=bodies[name])
        if op == "delete":
            return await http.delete(f"/vms/{name}")
        return await http.post(f"/vms/{name}/{op}")

    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=plane.url, timeout=120, limits=limits) as http:
        responses = await asyncio.gather(*(send(http, op, name) for op, name in plan))

    unexpected = [(op, name, response.status_code, response.text)
                  for (op, name), response in zip(plan, responses, strict=True)
                  if response.status_code not in ALLOWED[op]]
    assert not unexpected, f"seed {SEED} (GLIDEX_TEST_SEED): {unexpected}"
    tally = Counter((op, r.status_code) for (op, _), r in zip(plan, responses, strict=True))
    print(f"seed {SEED}: {dict(tally)}")

    assert_consistent(plane)
    for vm in plane.http.get("/vms").json():
        assert plane.http.delete(f"/vms/{vm['id']}").status_code == 204
    assert processes_under(plane.home) == []


async def test_a_delete_racing_a_stop_or_delete_of_a_running_vm_still_deletes(
    standin_plane, tmp_path
):
    """Found by the mixed test: a delete that found the VM running, then waited for a
    concurrent stop, answered 400 "cannot stop a VM that is stopped" and deleted nothing."""
    plane = standin_plane
    spec = standin_spec(tmp_path, "twice", "standin.no_powerdown")  # each stop takes a while
    async with httpx.AsyncClient(base_url=plane.url, timeout=60) as http:
        plane.create(spec)
        assert plane.http.post("/vms/twice/start").status_code == 200
        first, second = await asyncio.gather(http.delete("/vms/twice"),
                                             http.delete("/vms/twice"))
        assert sorted([first.status_code, second.status_code]) == [204, 404], (
            first.text, second.text)
        assert plane.http.get("/vms/twice").status_code == 404

        plane.create(spec)
        assert plane.http.post("/vms/twice/start").status_code == 200
        stop, delete = await asyncio.gather(http.post("/vms/twice/stop"),
                                            http.delete("/vms/twice"))
        assert delete.status_code == 204, delete.text
        assert stop.status_code in (200, 404), stop.text
        assert plane.http.get("/vms/twice").status_code == 404
    assert processes_under(plane.home) == []


def short_id_of(process, home: Path) -> str | None:
    """The short VM id of a VMM's or keeper's: its command line names its socket paths, or
    (a keeper started as a spare) it holds the VM's console log open."""
    found = re.search(re.escape(str(Paths(home).run_dir)) + r"/([0-9a-f]{12})\.",
                      " ".join(process.cmdline()))
    if found:
        return found.group(1)
    logs = re.escape(str(Paths(home).vms_dir)) + r"/([0-9a-f-]{36})/"
    for opened in process.open_files():
        if found := re.match(logs, opened.path):
            return short_id(found.group(1))
    return None


async def test_delete_racing_a_start_leaves_no_vmm_running(standin_plane, tmp_path):
    """Found by the mixed test: a delete that waited for a start removed the record and left
    the VMM and its keeper running, unmanaged (not even adopted after a restart)."""
    plane = standin_plane
    vm = plane.create(standin_spec(tmp_path, "racer", "standin.counter=100"))
    async with httpx.AsyncClient(base_url=plane.url, timeout=60) as http:
        async def delete_soon() -> httpx.Response:
            await asyncio.sleep(0.02)  # the start holds the VM's lock by now
            return await http.delete("/vms/racer")

        start, delete = await asyncio.gather(http.post("/vms/racer/start"), delete_soon())
    assert delete.status_code == 204, delete.text
    assert start.status_code in (200, 404), start.text
    assert plane.http.get("/vms/racer").status_code == 404
    leftover = [p for p in processes_under(plane.home)
                if short_id_of(p, plane.home) == short_id(vm["id"])]
    for process in leftover:
        process.kill()
    assert not leftover, "the deleted VM's VMM and keeper are still running"


def assert_consistent(plane) -> None:
    """Each VM's reported state matches reality and the records on disk agree with the API."""
    paths = Paths(plane.home)
    listed = plane.http.get("/vms").json()
    assert len({vm["name"] for vm in listed}) == len(listed), "duplicate names"
    expected_processes = set()
    for vm in listed:
        socket_path = paths.console_socket(vm["id"])
        if vm["state"] in ("running", "paused"):
            assert alive(vm["pid"]), f"{vm['name']} is {vm['state']} but its VMM is gone"
            info = keeper_info(plane.home, vm["id"])
            assert info["vmm_pid"] == vm["pid"] and alive(info["keeper_pid"])
            assert socket_path.exists()
            expected_processes |= {vm["pid"], info["keeper_pid"]}
        else:
            assert vm["pid"] is None, vm
            assert not socket_path.exists() and not paths.keeper_pid_file(vm["id"]).exists()
            assert not paths.qmp_socket(vm["id"]).exists()
    # No VMM or keeper runs that the API does not account for.
    unaccounted = {p.pid: " ".join(p.cmdline())[-160:] for p in processes_under(plane.home)
                   if p.pid not in expected_processes}
    assert not unaccounted, f"VMMs/keepers the API does not report: {unaccounted}"

    on_disk = {r.id: r for r in RecordStore(paths).load_all()}
    assert set(on_disk) == {vm["id"] for vm in listed}
    assert len(list(paths.vms_dir.iterdir())) == len(listed)
    for vm in listed:
        record = on_disk[vm["id"]]
        assert (str(record.state), record.vmm_pid, record.name) == (
            vm["state"], vm["pid"], vm["name"])


# -- SIGKILL during writes ------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import random, sys
    from pathlib import Path
    from glidex_core.config import Paths, short_id
    from glidex_core.models import VmRecord
    from glidex_core.store import RecordStore

    store = RecordStore(Paths(Path(sys.argv[1])))
    ids = sys.argv[2:]
    rng = random.Random()
    generation = 0
    print("writing", flush=True)
    while True:
        generation += 1
        for vm_id in ids:
            pad = rng.randrange(1, 6000)  # records of very different sizes
            store.save(VmRecord(id=vm_id, name="n-" + vm_id[:8], vcpu_count=1,
                                mem_size_mib=64, kernel_image_path="/k", rootfs_path="/r",
                                hypervisor="qemu",
                                kernel_args=f"gen={generation} pad={pad} " + "x" * pad))
""")


def check_record(path: Path) -> VmRecord:
    with open(path, "rb") as f:
        record = VmRecord.from_dict(tomllib.load(f))
    match = re.fullmatch(r"gen=(\d+) pad=(\d+) (x*)", record.kernel_args)
    assert match and len(match.group(3)) == int(match.group(2)), f"torn record {path}"
    return record


def test_sigkill_during_record_writes_never_leaves_a_torn_record(tmp_path):
    home = tmp_path / "h"
    paths = Paths(home)
    paths.ensure()
    ids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(30)]
    rng = random.Random(SEED)
    leftovers = 0
    for _ in range(12):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home), *ids],
                                  stdout=subprocess.PIPE, cwd=REPO_ROOT)
        assert writer.stdout.readline() == b"writing\n"
        time.sleep(rng.uniform(0.01, 0.3))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        writer.stdout.close()
        for vm_id in ids:
            record_file = paths.record_file(vm_id)
            if record_file.exists():  # absent only if killed before its first save
                assert check_record(record_file).id == vm_id
        leftovers = len(list(paths.vms_dir.glob("*/.*.tmp")))
    assert all(paths.record_file(vm_id).exists() for vm_id in ids)
    # Temporary files a kill left behind are never taken for records.
    assert sorted(r.id for r in RecordStore(paths).load_all()) == sorted(ids)
    print(f"seed {SEED}: temporary files left by the kills: {leftovers}")


async def test_sigkilled_control_plane_during_a_burst_of_writes_reopens_consistent(
    planes, tmp_path
):
    """Kill the control plane in the middle of concurrent creates and deletes, twice: it comes
    back, every record parses, and the API shows exactly the records on disk."""
    home = tmp_path / "h"
    plane = planes(home)
    rng = random.Random(SEED)
    for round_ in range(2):
        async def burst(url: str, round_: int = round_) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                async def one(i: int) -> None:
                    name = f"burst{round_}-{i}"
                    body = spec_body(standin_spec(tmp_path, name))
                    await http.post("/vms", json=body)
                    if i % 3 == 0:
                        await http.delete(f"/vms/{name}")
                await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)

        task = asyncio.create_task(burst(plane.url))
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        os.kill(plane.pid, signal.SIGKILL)
        await asyncio.gather(task, return_exceptions=True)
        plane.process.wait(10)
        plane.start()
        listed = plane.http.get("/vms").json()
        paths = Paths(home)
        folders = [p for p in paths.vms_dir.iterdir() if (p / "vm.toml").exists()]
        for folder in folders:
            with open(folder / "vm.toml", "rb") as f:
                VmRecord.from_dict(tomllib.load(f))  # parses
        assert sorted(vm["id"] for vm in listed) == sorted(p.name for p in folders)
        assert len({vm["name"] for vm in listed}) == len(listed)
