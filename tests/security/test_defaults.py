"""Security defaults: private files, no symlink following, image roots, argv not shell, tokens."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from glidex_core.models import ValidationError
from glidex_core.supervisor import Supervisor
from tests.helpers import ControlPlane, standin_spec


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


async def test_runtime_files_are_private(supervisor, qemu_standin, tmp_path):
    record = await supervisor.create(standin_spec(tmp_path, "private"))
    await supervisor.start(record.id)
    paths = supervisor.paths
    assert mode(paths.run_dir) == 0o700
    assert mode(paths.home) == 0o700
    assert mode(paths.vm_dir(record.id)) == 0o700
    assert mode(paths.console_socket(record.id)) == 0o600
    assert mode(paths.keeper_pid_file(record.id)) == 0o600
    assert mode(paths.console_log(record.id)) == 0o600
    assert mode(paths.record_file(record.id)) == 0o600
    for path in paths.run_dir.iterdir():
        assert mode(path) & 0o077 == 0, f"{path} is readable by others"


async def test_a_symlink_planted_at_the_log_is_not_followed(supervisor, qemu_standin, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    record = await supervisor.create(standin_spec(tmp_path, "planted"))
    supervisor.paths.console_log(record.id).symlink_to(victim)
    with pytest.raises(Exception, match="(?i)symbolic link|too many levels|keeper"):
        await supervisor.start(record.id)
    assert victim.read_text() == "precious\n"


async def test_image_roots_confine_image_paths(home, tmp_path, qemu_standin):
    images = tmp_path / "images"
    images.mkdir()
    home.mkdir(parents=True)
    (home / "config.toml").write_text(f'image_roots = ["{images}"]\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    sup = await Supervisor.open(home)
    try:
        with pytest.raises(ValidationError, match="outside the allowed image directories") as e:
            await sup.create(standin_spec(outside, "escape"))
        assert e.value.field == "kernel_image_path"
        # A symlink inside the root that leads out is followed to its target and refused.
        spec = standin_spec(outside, "sneaky")
        (images / "k").symlink_to(spec.kernel_image_path)
        (images / "r").symlink_to(spec.rootfs_path)
        spec.kernel_image_path, spec.rootfs_path = str(images / "k"), str(images / "r")
        with pytest.raises(ValidationError, match="outside"):
            await sup.create(spec)
        assert sup.list() == []
        # Inside the root: accepted.
        inside = standin_spec(images, "fine")
        assert (await sup.create(inside)).name == "fine"
    finally:
        await sup.close()


async def test_kernel_args_reach_the_vmm_as_one_argument(supervisor, qemu_standin, tmp_path):
    hostile = "console=ttyS0 ; touch pwned $(reboot) `id` -machine none"
    spec = standin_spec(tmp_path, "argv")
    spec.kernel_args = hostile
    record = await supervisor.create(spec)
    await supervisor.start(record.id)
    pid = supervisor.get(record.id).vmm_pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    append = argv[argv.index(b"-append") + 1].decode()
    assert append.startswith(hostile)
    assert argv.count(b"-machine") == 1
    assert not (supervisor.paths.vm_dir(record.id) / "pwned").exists()


async def test_websocket_console_checks_token_and_origin(tmp_path, qemu_standin):
    plane = ControlPlane(tmp_path / "h", "--token", "s3cret-token")
    try:
        auth = {"authorization": "Bearer s3cret-token"}
        assert plane.http.get("/vms").status_code == 401
        created = plane.http.post("/vms", headers=auth, json={
            "name": "ws", "kernel_image_path": str(qemu_standin),
            "rootfs_path": str(qemu_standin), "mem_size_mib": 64})
        assert created.status_code == 201, created.text
        assert plane.http.post("/vms/ws/start", headers=auth).status_code == 200
        url = plane.url.replace("http://", "ws://") + "/vms/ws/console/ws"
        with pytest.raises(InvalidStatus):
            async with websockets.connect(url):
                pass
        with pytest.raises(InvalidStatus):
            async with websockets.connect(url, additional_headers=auth,
                                          origin="http://evil.example"):
                pass
        async with websockets.connect(url, additional_headers=auth) as ws:
            await ws.send(b"echo over-ws\r")
            seen = b""
            while b"over-ws\r\n/ # " not in seen:
                seen += await asyncio.wait_for(ws.recv(), 10)
        assert plane.http.delete("/vms/ws", headers=auth).status_code == 204
    finally:
        plane.stop()
    assert "s3cret-token" not in plane.log()
