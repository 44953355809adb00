"""End to end on a real guest: QEMU/TCG, and Firecracker's API through the TEST STAND-IN.

The same lifecycle runs on both backends: create from the sample guest, start, wait for the shell
prompt, type at the console, pause (no output while paused), resume, stop, delete.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from glidex_core.models import (
    HypervisorError,
    InvalidStateError,
    ValidationError,
    VmSpec,
    VmState,
)
from tests.helpers import PROMPT, Console, guest_spec

pytestmark = pytest.mark.guest


async def lifecycle(supervisor, sample_guest, tmp_path, hypervisor: str) -> None:
    record = await supervisor.create(guest_spec(sample_guest, tmp_path, "e2e",
                                                hypervisor=hypervisor))
    assert record.state == VmState.CREATED
    await supervisor.start("e2e")
    assert supervisor.get("e2e").state == VmState.RUNNING
    info = supervisor.console_info("e2e")
    assert info.available

    console = await Console.attach(info.console_socket_path)
    # The prompt may have been printed before we attached: the log has it either way.
    for _ in range(600):
        if PROMPT in info.log_path.read_bytes():
            break
        await asyncio.sleep(0.1)
    await console.run("echo $((6*7))", rb"\r\n42\r\n")

    await console.send(b"while true; do echo tick; sleep 0.2; done\r")
    await console.expect(rb"tick\r\n.*tick\r\n")
    await supervisor.pause("e2e")
    assert supervisor.get("e2e").state == VmState.PAUSED
    with pytest.raises(InvalidStateError):
        await supervisor.pause("e2e")
    await asyncio.sleep(0.3)  # let bytes already in flight arrive
    console.seen.clear()
    size_when_paused = info.log_path.stat().st_size
    await asyncio.sleep(2)
    assert info.log_path.stat().st_size == size_when_paused, "the guest printed while paused"
    assert b"tick" not in console.seen

    await supervisor.start("e2e")  # start on a paused VM resumes, as the original did
    assert supervisor.get("e2e").state == VmState.RUNNING
    await console.expect(rb"tick\r\n")
    await console.send(b"\x03")  # Ctrl-C reaches the guest's shell
    await console.expect(re.escape(PROMPT))

    vmm_pid = supervisor.get("e2e").vmm_pid
    stopped = await supervisor.stop("e2e", timeout=10)
    assert stopped.state == VmState.STOPPED
    assert not _alive(vmm_pid)
    assert not info.console_socket_path.exists()
    await console.close()

    vm_dir = supervisor.paths.vm_dir(record.id)
    await supervisor.delete("e2e")
    assert not vm_dir.exists()
    assert supervisor.list() == []
    assert sorted(p.name for p in supervisor.paths.run_dir.iterdir()) == ["supervisor.lock"]


def _alive(pid: int | None) -> bool:
    from glidex_core.console.procinfo import start_ticks

    return pid is not None and start_ticks(pid) is not None


async def test_qemu_lifecycle(supervisor, sample_guest, tmp_path):
    await lifecycle(supervisor, sample_guest, tmp_path, "qemu")


async def test_firecracker_lifecycle_on_the_standin(
    supervisor, sample_guest, tmp_path, firecracker_standin
):
    await lifecycle(supervisor, sample_guest, tmp_path, "firecracker")


async def test_start_refuses_a_missing_file_naming_it(supervisor, sample_guest, tmp_path):
    spec = guest_spec(sample_guest, tmp_path, "nofile", hypervisor="qemu")
    spec.kernel_image_path = str(tmp_path / "no-such-kernel")
    await supervisor.create(spec)  # create accepts paths that do not exist yet
    with pytest.raises(ValidationError, match="no-such-kernel") as caught:
        await supervisor.start("nofile")
    assert caught.value.field == "kernel_image_path"
    assert supervisor.get("nofile").state == VmState.CREATED


async def test_qemu_refuses_a_comma_in_a_path(supervisor, sample_guest, tmp_path):
    spec = guest_spec(sample_guest, tmp_path, "comma", hypervisor="qemu")
    spec.rootfs_path += ",readonly=on"
    await supervisor.create(spec)
    with pytest.raises(ValidationError, match="comma"):
        await supervisor.start("comma")


async def test_vmm_refusal_is_a_hypervisor_error_with_its_own_words(
    supervisor, shared_vm, tmp_path
):
    """Two VMs on one writable disk: QEMU refuses the second, and says why."""
    busy_disk = shared_vm.home.parent / "shared.ext4"  # in use by the shared guest
    kernel = guest_spec_kernel(shared_vm)
    await supervisor.create(VmSpec(name="second", kernel_image_path=kernel,
                                   rootfs_path=str(busy_disk), mem_size_mib=256,
                                   hypervisor="qemu"))
    with pytest.raises(HypervisorError, match="lock") as caught:
        await supervisor.start("second")
    record = supervisor.get("second")
    assert record.state == VmState.FAILED
    assert str(caught.value) == record.reason
    assert not supervisor.paths.console_socket(record.id).exists()


def guest_spec_kernel(shared_vm) -> str:
    from glidex_core.config import Paths
    from glidex_core.store import RecordStore

    return RecordStore(Paths(shared_vm.home)).load(shared_vm.vm_id).kernel_image_path
