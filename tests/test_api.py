"""Black-box tests of the REST API against a real ``glidex-control-plane`` process.

Every row of the original contract with its status code and error body, the new endpoints, and
a curl-style lifecycle on a real guest with events and console fan-out checked along the way.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.helpers import PROMPT, Console, ControlPlane


@pytest.fixture(scope="module")
def cp(tmp_path_factory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("api") / "h")
    yield plane
    for vm in plane.http.get("/vms").json():
        plane.http.delete(f"/vms/{vm['id']}")
    plane.stop()


def body(name: str, **extra) -> dict:
    return {"name": name, "vcpu_count": 1, "mem_size_mib": 256,
            "kernel_image_path": "/nonexistent/kernel", "rootfs_path": "/nonexistent/rootfs",
            **extra}


def assert_error(response: httpx.Response, status: int, code: str, message: str = "") -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"error", "message"}
    assert payload["error"] == code
    assert message in payload["message"]


def test_health(cp):
    payload = cp.http.get("/health").json()
    assert payload["status"] == "ok"
    assert {"version", "uptime_seconds", "vms"} <= set(payload)


def test_create_get_list_delete_by_id_and_name(cp):
    created = cp.http.post("/vms", json=body("crud", kernel_args="console=ttyS0"))
    assert created.status_code == 201
    vm = created.json()
    assert vm["state"] == "created" and vm["kernel_args"] == "console=ttyS0"
    for field in ("id", "name", "state", "vcpu_count", "mem_size_mib", "hypervisor",
                  "console_socket_path", "log_path"):
        assert field in vm
    assert cp.http.get(f"/vms/{vm['id']}").json() == vm
    assert cp.http.get("/vms/crud").json()["id"] == vm["id"]
    assert vm in cp.http.get("/vms").json()  # the list shows each VM exactly as GET does
    deleted = cp.http.delete("/vms/crud")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(cp.http.get(f"/vms/{vm['id']}"), 404, "not_found", f"VM not found: {vm['id']}")


def test_duplicate_name_is_a_conflict(cp):
    assert cp.http.post("/vms", json=body("dup")).status_code == 201
    assert_error(cp.http.post("/vms", json=body("dup")), 409, "conflict", "dup")
    cp.http.delete("/vms/dup")


def test_illegal_transitions_are_invalid_state(cp):
    cp.http.post("/vms", json=body("idle"))
    assert_error(cp.http.post("/vms/idle/pause"), 400, "invalid_state",
                 "cannot pause a VM that is created")
    assert_error(cp.http.post("/vms/idle/stop"), 400, "invalid_state", "created")
    assert_error(cp.http.post("/vms/idle/resume"), 400, "invalid_state", "resume")
    cp.http.delete("/vms/idle")


def test_start_refuses_missing_files_naming_them(cp):
    cp.http.post("/vms", json=body("nofiles", hypervisor="qemu"))
    assert_error(cp.http.post("/vms/nofiles/start"), 422, "validation_error",
                 "/nonexistent/kernel")
    assert cp.http.get("/vms/nofiles").json()["state"] == "created"
    cp.http.delete("/vms/nofiles")


@pytest.mark.parametrize("path", ["/vms/nope", "/vms/nope/start", "/vms/nope/console",
                                  "/vms/nope/log"])
def test_unknown_vm_is_404_with_its_message(cp, path):
    method = "POST" if path.endswith("start") else "GET"
    assert_error(cp.http.request(method, path), 404, "not_found", "VM not found: nope")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body("x1", vcpu_count="2"), "vcpu_count"),
        (body("x2", vcpu_count=2.0), "vcpu_count"),
        (body("x3", vcpu_count=0), "vcpu_count"),
        (body("x4", vcpu_count=33), "vcpu_count"),
        (body("x5", mem_size_mib=8), "mem_size_mib"),
        (body("../x"), "name"),
        (body("a/b"), "name"),
        (body(""), "name"),
        (body("x" * 300), "name"),
        (body("x6", kernel_args="a\nb"), "kernel_args"),
        (body("x7", rootfs_path="/a\u0000b"), "rootfs_path"),
        (body("x8", surprise=1), "surprise"),
        ({"name": "x9"}, "kernel_image_path"),
        (body("x10", hypervisor="xen"), "hypervisor"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(cp, payload, field):
    before = cp.http.get("/vms").json()
    assert_error(cp.http.post("/vms", json=payload), 422, "validation_error", field)
    assert cp.http.get("/vms").json() == before  # nothing created


def test_malformed_json_wrong_type_and_oversize(cp):
    headers = {"content-type": "application/json"}
    assert_error(cp.http.post("/vms", content=b'{"name": ', headers=headers), 400,
                 "invalid_json")
    assert_error(cp.http.post("/vms", content=b"[1, 2]", headers=headers), 422,
                 "validation_error")
    assert_error(cp.http.post("/vms", content=b"name=x",
                              headers={"content-type": "application/x-www-form-urlencoded"}),
                 415, "unsupported_media_type")
    huge = json.dumps(body("huge", kernel_args="x" * (2 << 20))).encode()
    assert_error(cp.http.post("/vms", content=huge, headers=headers), 413, "payload_too_large")


def test_openapi_and_docs(cp):
    schema = cp.http.get("/openapi.json").json()
    assert "/vms/{ref}/start" in schema["paths"]
    assert cp.http.get("/docs").status_code == 200


def test_console_of_a_stopped_vm_is_unavailable(cp):
    vm = cp.http.post("/vms", json=body("quiet")).json()
    console = cp.http.get("/vms/quiet/console").json()
    assert console == {"vm_id": vm["id"], "console_socket_path": vm["console_socket_path"],
                       "log_path": vm["log_path"], "available": False, "clients": 0,
                       "log_error": None}
    log = cp.http.get("/vms/quiet/log")
    assert log.status_code == 200 and log.content == b"" and log.headers["x-log-size"] == "0"
    cp.http.delete("/vms/quiet")


def test_only_loopback_without_a_token(tmp_path):
    plane = ControlPlane(tmp_path / "h", "--host", "0.0.0.0")
    try:
        assert plane.token and (tmp_path / "h" / "api-token").stat().st_mode & 0o777 == 0o600
        plane.http.base_url = plane.url.replace("0.0.0.0", "127.0.0.1")
        assert plane.http.get("/health").status_code == 200  # health stays open
        assert_error(plane.http.get("/vms"), 401, "unauthorized")
        ok = plane.http.get("/vms", headers={"authorization": f"Bearer {plane.token}"})
        assert ok.status_code == 200
    finally:
        plane.stop()


def test_a_second_control_plane_on_one_home_exits_clearly(cp):
    second = subprocess.run(
        [sys.executable, "-m", "glidex_core.control_plane", "--home", str(cp.home),
         "--port", "0"], capture_output=True, text=True, timeout=30,
    )
    assert second.returncode == 1
    assert "another Glidex supervisor already manages" in second.stderr


@pytest.mark.guest
async def test_lifecycle_events_log_and_console_fan_out(cp, sample_guest, tmp_path):
    rootfs = tmp_path / "life.ext4"
    shutil.copyfile(sample_guest / "rootfs.ext4", rootfs)
    async with httpx.AsyncClient(base_url=cp.url, timeout=60) as http:
        events: list[tuple[str, str]] = []

        async def follow_events() -> None:
            async with http.stream("GET", "/events") as stream:
                kind = None
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        data = json.loads(line[6:])
                        if data["vm"]["name"] == "life":
                            events.append((kind, data["vm"]["state"]))

        follower = asyncio.create_task(follow_events())
        await asyncio.sleep(0.5)
        created = await http.post("/vms", json={
            "name": "life", "vcpu_count": 1, "mem_size_mib": 256,
            "kernel_image_path": str(sample_guest / "vmlinuz"), "rootfs_path": str(rootfs),
            "hypervisor": "qemu"})
        assert created.status_code == 201
        started = await http.post("/vms/life/start")
        assert started.status_code == 200 and started.json()["state"] == "running"
        assert started.json()["pid"]

        console_info = (await http.get("/vms/life/console")).json()
        assert console_info["available"] is True
        for _ in range(600):
            if PROMPT in (await http.get("/vms/life/log", params={"tail_bytes": 4096})).content:
                break
            await asyncio.sleep(0.1)

        # Three clients: two on the keeper socket, one over the WebSocket.
        local_a = await Console.attach(Path(console_info["console_socket_path"]))
        local_b = await Console.attach(Path(console_info["console_socket_path"]))
        ws_url = cp.url.replace("http://", "ws://") + "/vms/life/console/ws"
        async with websockets.connect(ws_url) as ws:
            await asyncio.sleep(0.3)
            assert (await http.get("/vms/life/console")).json()["clients"] == 3
            await local_a.send(b"echo from-a-$((1+1))\r")
            await local_b.expect(rb"from-a-2\r\n")
            await ws.send(b"echo from-ws-$((2+2))\r")
            await local_a.expect(rb"from-ws-4\r\n")
            await local_b.send(b"echo from-b-$((3+3))\r")
            await local_a.expect(rb"from-b-6\r\n/ # ")
            await local_b.expect(rb"from-b-6\r\n/ # ")
            seen_ws = b""
            while b"from-b-6\r\n/ # " not in seen_ws:
                seen_ws += await asyncio.wait_for(ws.recv(), 10)
        # Byte-identical: all three saw the same stream from the first command to the last.
        def window(data: bytes) -> bytes:
            end = data.rindex(b"from-b-6\r\n/ # ") + len(b"from-b-6\r\n/ # ")
            return data[data.index(b"echo from-a-"):end]

        assert window(bytes(local_a.transcript)) == window(bytes(local_b.transcript))
        assert window(bytes(local_a.transcript)) == window(seen_ws)
        await local_a.close()
        await local_b.close()

        paused = await http.post("/vms/life/pause")
        assert paused.json()["state"] == "paused"
        resumed = await http.post("/vms/life/start")  # start resumes, as the original did
        assert resumed.json()["state"] == "running"
        stopped = await http.post("/vms/life/stop", params={"force": "true"})
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
        assert (await http.get("/vms/life/console")).json()["available"] is False

        offset_read = await http.get("/vms/life/log", params={"offset": 0, "limit": 100})
        assert offset_read.headers["x-log-offset"] == "0" and len(offset_read.content) == 100
        size = int(offset_read.headers["x-log-size"])
        assert size == os.path.getsize(created.json()["log_path"])

        assert (await http.delete("/vms/life")).status_code == 204
        await asyncio.sleep(0.5)
        follower.cancel()
    assert events == [("created", "created"), ("state", "running"), ("state", "paused"),
                      ("state", "running"), ("state", "stopped"), ("deleted", "stopped")]
