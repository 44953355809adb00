"""Starts that cannot work are refused before anything runs, or fail with the VMM's own words."""

from __future__ import annotations

import dataclasses

import pytest

from glidex_core.models import ConflictError, HypervisorError, VmState
from glidex_core.supervisor import Supervisor
from tests.helpers import standin_spec


async def test_a_root_disk_in_use_by_a_live_vm_is_refused_until_it_is_free(
        home, qemu_standin, tmp_path):
    """Found by a new user: a second VM on the sample rootfs failed with QEMU's write-lock
    error (and on Firecracker, which does not lock, two guests would corrupt the disk)."""
    supervisor = await Supervisor.open(home)
    try:
        web = await supervisor.create(standin_spec(tmp_path, "web"))
        db_spec = dataclasses.replace(standin_spec(tmp_path, "db"), rootfs_path=web.rootfs_path)
        db = await supervisor.create(db_spec)
        await supervisor.start(web.id)
        with pytest.raises(ConflictError) as refused:
            await supervisor.start(db.id)
        message = str(refused.value)
        assert f"rootfs {web.rootfs_path} is in use by VM 'web' (running)" in message
        assert f"cp {web.rootfs_path} " in message  # says how to give db a disk of its own
        assert supervisor.get(db.id).state == VmState.CREATED  # refused, not failed
        await supervisor.pause(web.id)
        with pytest.raises(ConflictError):
            await supervisor.start(db.id)  # a paused VM still has the disk open
        await supervisor.stop(web.id, force=True)
        assert (await supervisor.start(db.id)).state == VmState.RUNNING
        await supervisor.stop(db.id, force=True)
    finally:
        await supervisor.close()


async def test_a_vmm_failing_to_start_is_reported_in_its_own_words_once(
        home, qemu_standin, tmp_path):
    """Not '[Errno 104] Connection reset by peer: ...', and a second try does not repeat the
    first try's words from the VMM's log."""
    words = 'Failed-to-get-"write"-lock'
    supervisor = await Supervisor.open(home)
    try:
        vm = await supervisor.create(standin_spec(tmp_path, "locked",
                                                  f"standin.fail_start={words}"))
        for _ in range(2):
            with pytest.raises(HypervisorError) as failed:
                await supervisor.start(vm.id)
            assert str(failed.value) == f"qemu-system-x86_64: {words}"
            record = supervisor.get(vm.id)
            assert record.state == VmState.FAILED and record.reason == str(failed.value)
    finally:
        await supervisor.close()
