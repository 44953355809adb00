"""``glidex`` started while a control plane owns the home attaches to it instead of embedding
its own supervisor, and shows (and drives) the same VMs."""

from __future__ import annotations

import asyncio

from glidex_core.api.remote import RemoteSupervisor
from glidex_core.api.server import discovery_file
from glidex_core.config import Paths
from glidex_tui.app import GlidexApp
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.vm_table import VmTable
from tests.helpers import ControlPlane, standin_spec


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
            assert str(table.get_row_at(0)[1]) == "from-api"  # column 0 holds the mark

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


async def test_dashboard_drives_a_control_plane_by_url_with_consoles_over_websocket(
    tmp_path, qemu_standin
):
    """glidex --url: another host's control plane (here another home), its VM's console in a
    pane through the WebSocket, typing included, history from the API's log tail."""
    plane = ControlPlane(tmp_path / "server-home")
    try:
        spec = standin_spec(tmp_path, "far")
        created = plane.http.post("/vms", json={
            "name": "far", "kernel_image_path": spec.kernel_image_path,
            "rootfs_path": spec.rootfs_path, "mem_size_mib": 64, "hypervisor": "qemu"})
        assert created.status_code == 201, created.text
        assert plane.http.post("/vms/far/start").status_code == 200

        app = GlidexApp(home=tmp_path / "client-home", url=plane.url)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.supervisor is not None)
            assert isinstance(app.supervisor, RemoteSupervisor)
            assert plane.url in app.sub_title
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 1)
            await pilot.press("enter")
            pane = None

            def pane_ready() -> bool:
                nonlocal pane
                panes = list(app.query(ConsolePane))
                pane = panes[0] if panes else None
                return pane is not None and pane.connected

            await wait_until(pilot, pane_ready)
            # The history came from the API: the stand-in's banner, printed before we came.
            await wait_until(pilot, lambda: "standin ready" in "\n".join(pane.screen_lines()))
            await pilot.press(*"echo", "space", *"remote", "enter")
            await wait_until(pilot, lambda: any(line.strip() == "remote"
                                                for line in pane.screen_lines()))
            await pilot.press("ctrl+right_square_bracket")
            await pilot.press("q")
        assert plane.http.delete("/vms/far").status_code == 204
    finally:
        plane.stop()


async def test_a_control_plane_that_stops_answering_is_reported_not_a_crash(tmp_path):
    """Found by a new user: with its control plane killed, `s` took the dashboard down with
    httpx.ConnectError. Now the subtitle and a notification say so, actions fail with a
    message, and everything comes back with the control plane."""
    home = tmp_path / "h"
    plane = ControlPlane(home)
    try:
        plane.http.post("/vms", json={"name": "web", "kernel_image_path": "/k",
                                      "rootfs_path": "/r"}).raise_for_status()
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(pilot, lambda: app.supervisor is not None)
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 1)
            plane.process.kill()
            plane.process.wait(10)
            await wait_until(pilot, lambda: "NOT ANSWERING" in app.sub_title)
            assert any("does not answer" in n.message for n in app._notifications)
            await pilot.press("s")
            await wait_until(pilot, lambda: any(
                n.message.startswith("start failed: the control plane at")
                for n in app._notifications))
            assert app.is_running and table.row_count == 1

            port = plane.url.rsplit(":", 1)[1]
            discovery_file(Paths(home)).unlink()  # left by the killed plane
            plane = ControlPlane(home, "--port", port)  # back where the dashboard looks
            await wait_until(pilot, lambda: "NOT ANSWERING" not in app.sub_title, timeout=30)
            plane.http.post("/vms", json={"name": "second", "kernel_image_path": "/k",
                                          "rootfs_path": "/r"}).raise_for_status()
            await wait_until(pilot, lambda: table.row_count == 2)
            await pilot.press("q")
    finally:
        plane.stop()
