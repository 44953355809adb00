"""``glidex`` started while a control plane owns the home attaches to it instead of embedding
its own supervisor, and shows (and drives) the same VMs."""

from __future__ import annotations

import asyncio

from glidex_core.api.remote import RemoteSupervisor
from glidex_tui.app import GlidexApp
from glidex_tui.widgets.vm_table import VmTable
from tests.helpers import ControlPlane


async def wait_until(pilot, condition, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline
        await pilot.pause(0.1)


async def test_dashboard_attaches_to_a_running_control_plane(tmp_path):
    plane = ControlPlane(tmp_path / "h")
    try:
        plane.http.post("/vms", json={"name": "from-api", "kernel_image_path": "/k",
                                      "rootfs_path": "/r"}).raise_for_status()
        app = GlidexApp(home=tmp_path / "h")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(pilot, lambda: app.supervisor is not None)
            assert isinstance(app.supervisor, RemoteSupervisor)
            assert plane.url in app.sub_title
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 1)
            assert table.get_row_at(0)[1] == "from-api"  # column 0 holds the mark

            # A VM created by someone else appears through the event stream.
            plane.http.post("/vms", json={"name": "second", "kernel_image_path": "/k",
                                          "rootfs_path": "/r"}).raise_for_status()
            await wait_until(pilot, lambda: table.row_count == 2)

            # Operations go through the API; its refusal is shown, nothing breaks.
            await pilot.press("s")
            await wait_until(pilot, lambda: any("file not found" in n.message
                                                for n in app._notifications))
            await pilot.press("d")
            await pilot.press("y")
            await wait_until(pilot, lambda: table.row_count == 1)
            assert [vm["name"] for vm in plane.http.get("/vms").json()] == ["second"]
            await pilot.press("q")
    finally:
        plane.stop()
