"""Fault 1: the control plane is SIGKILLed while five real guests print a counter every 10 ms.

After a restart every VM is ``running`` with the same VMM pid, its console attaches (locally and
over the WebSocket) and each log holds every counter value once, in order: the keepers kept
logging while no control plane existed.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import websockets

from glidex_core.config import Paths
from tests.helpers import PROMPT, Console, guest_spec
from tests.reliability.support import alive, async_wait_until

pytestmark = pytest.mark.guest

GUESTS = 5
COUNT = 700  # at 10 ms a step the loops run at least 7 s: across the kill and the restart
COUNTER = re.compile(rb"\nc(\d+)\r")
LOOP = (f"i=0; while [ $i -lt {COUNT} ]; do echo c$i; i=$((i+1)); usleep 10000; done; "
        "echo DONE-$((40+2))\r").encode()
DONE = b"DONE-42"


def counters(data: bytes) -> list[int]:
    return [int(n) for n in COUNTER.findall(data)]


async def test_sigkilled_control_plane_leaves_five_counting_guests_intact(
    planes, tmp_path: Path, sample_guest: Path
):
    home = tmp_path / "h"
    plane = planes(home)
    vms = [plane.create(guest_spec(sample_guest, tmp_path, f"count{i}", hypervisor="qemu"))
           for i in range(GUESTS)]
    for vm in vms:
        started = plane.http.post(f"/vms/{vm['id']}/start")
        assert started.status_code == 200, started.text
        vm["pid"] = started.json()["pid"]
    logs = {vm["id"]: Paths(home).console_log(vm["id"]) for vm in vms}
    # Five TCG guests boot at once on a small machine: be generous.
    await async_wait_until(lambda: all(PROMPT in p.read_bytes() for p in logs.values()), 180,
                           interval=0.2, message="every guest's shell prompt")

    consoles = [await Console.attach(Paths(home).console_socket(vm["id"])) for vm in vms]
    for console in consoles:
        await console.send(LOOP)
    for console in consoles:
        await console.expect(rb"\nc30\r\n", timeout=60)

    plane.kill()
    assert all(DONE not in p.read_bytes() for p in logs.values()), "killed too late"
    # No control plane now: the guests go on printing and the keepers go on logging.
    sizes = {vm_id: p.stat().st_size for vm_id, p in logs.items()}
    await async_wait_until(
        lambda: all(p.stat().st_size > sizes[vm_id] + 200 for vm_id, p in logs.items()), 30,
        message="every log growing while the control plane is dead")

    plane.start()
    listed = {vm["id"]: vm for vm in plane.http.get("/vms").json()}
    for vm in vms:
        again = listed[vm["id"]]
        assert again["state"] == "running", again
        assert again["pid"] == vm["pid"] and alive(vm["pid"])
        assert plane.http.get(f"/vms/{vm['id']}/console").json()["available"] is True

    # Consoles attach through the new control plane while the counters still run.
    ws_base = plane.url.replace("http://", "ws://")
    for vm in vms:
        async with websockets.connect(f"{ws_base}/vms/{vm['id']}/console/ws") as ws:
            seen = b""
            while not COUNTER.search(seen):
                seen += await asyncio.wait_for(ws.recv(), 30)

    for console in consoles:
        await console.expect(DONE, timeout=120)
        await console.run("echo alive-$((1+1))", rb"alive-2\r\n")
        await console.close()
    for vm in vms:
        data = logs[vm["id"]].read_bytes()
        assert counters(data) == list(range(COUNT)), (
            f"{vm['name']}: the console log has a gap or a duplicate")

    for vm in vms:
        assert plane.http.post(f"/vms/{vm['id']}/stop", params={"force": "true"}
                               ).json()["state"] == "stopped"
        assert plane.http.delete(f"/vms/{vm['id']}").status_code == 204
