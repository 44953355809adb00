"""Firecracker through its jailer: arguments, the jail's contents, clean-up on delete.

Run against TEST STAND-INS for both the jailer and Firecracker (no binaries or KVM here): the
jailer stand-in checks the arguments and the jail folder, then runs the Firecracker stand-in,
which boots the sample guest under QEMU.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from glidex_core.models import VmState
from glidex_core.supervisor import Supervisor
from tests.helpers import PROMPT, Console, guest_spec

pytestmark = pytest.mark.guest


async def test_jailed_vm_boots_with_its_files_in_the_jail_and_is_cleaned_on_delete(
    home, tmp_path, sample_guest, firecracker_standin, request
):
    # Short, like the default /srv/jailer: the jail's socket path must fit in 107 bytes.
    jail_base = Path.home() / ".cache" / f"gxj{os.getpid()}"
    request.addfinalizer(lambda: shutil.rmtree(jail_base, ignore_errors=True))
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        f'use_jailer = true\njailer_chroot_base = "{jail_base}"\n'
        f"jailer_uid = {os.getuid()}\njailer_gid = {os.getgid()}\n"
    )
    sup = await Supervisor.open(home)
    try:
        record = await sup.create(guest_spec(sample_guest, tmp_path, "jailed",
                                             hypervisor="firecracker"))
        await sup.start(record.id)
        jail = jail_base / "firecracker" / record.id
        argv = json.loads((jail / "jailer-argv.json").read_text())
        assert argv[:4] == ["--id", record.id, "--exec-file", str(firecracker_standin)]
        assert argv[argv.index("--") + 1:][:2] == ["--api-sock", "/run/firecracker.socket"]
        assert sorted(p.name for p in (jail / "root").iterdir()) == [
            "firecracker.log", "rootfs.ext4", "run", "vmlinux"]
        # Hard links, not copies: the jail costs no disk space.
        assert (jail / "root" / "rootfs.ext4").stat().st_ino == os.stat(record.rootfs_path).st_ino

        console = await Console.attach(sup.console_info(record.id).console_socket_path)
        await console.send(b"\r")
        await console.expect(PROMPT.replace(b"#", rb"\#").replace(b" ", rb"\ "), timeout=60)
        await console.run("echo jailed-$((2*21))", rb"jailed-42")
        await console.close()

        await sup.delete(record.id)
        assert not jail.exists()
        assert sup.list() == []
    finally:
        await sup.close()


async def test_a_jail_too_deep_for_a_socket_path_is_refused_clearly(
    home, tmp_path, sample_guest, firecracker_standin
):
    home.mkdir(parents=True)
    deep = tmp_path / ("d" * 60)
    (home / "config.toml").write_text(f'use_jailer = true\njailer_chroot_base = "{deep}"\n')
    sup = await Supervisor.open(home)
    try:
        await sup.create(guest_spec(sample_guest, tmp_path, "deep", hypervisor="firecracker"))
        with pytest.raises(Exception, match="shorter jailer_chroot_base"):
            await sup.start("deep")
    finally:
        await sup.close()


async def test_jailer_missing_is_a_clear_error(home, tmp_path, sample_guest, monkeypatch):
    home.mkdir(parents=True)
    (home / "config.toml").write_text(f'use_jailer = true\njailer_chroot_base = "{tmp_path}"\n')
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    sup = await Supervisor.open(home)
    try:
        await sup.create(guest_spec(sample_guest, tmp_path, "nojail", hypervisor="firecracker"))
        with pytest.raises(Exception, match="not on PATH"):
            await sup.start("nojail")
        assert sup.get("nojail").state == VmState.FAILED
    finally:
        await sup.close()
