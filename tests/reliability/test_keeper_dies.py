"""Fault 3: the console keeper dies (SIGKILL).

With a supervisor watching, the VM is reported ``crashed`` because its keeper died, the VMM is
gone within a bound, no socket or pid file is left and the VM starts again. With no supervisor
running at all, a real QEMU still does not linger: the keeper's death hangs up its terminal.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from glidex_core.models import VmState
from glidex_core.supervisor import Supervisor
from tests.helpers import PROMPT, Console, guest_spec, standin_spec
from tests.reliability.support import alive, async_wait_until, run_dir_leftovers

VMM_GONE_BOUND = 3.0  # seconds from the keeper's death until its VMM is gone
DETECTION_BOUND = 2.0


async def test_killed_keeper_means_crashed_vm_and_no_lingering_vmm(
    reaper, supervisor, qemu_standin, tmp_path
):
    record = await supervisor.create(standin_spec(tmp_path, "orphan", "standin.counter=20"))
    await supervisor.start(record.id)
    running = supervisor.get(record.id)
    keeper_pid, vmm_pid = running.keeper_pid, running.vmm_pid
    assert alive(keeper_pid) and alive(vmm_pid) and keeper_pid != vmm_pid
    events = []
    supervisor.subscribe(lambda e: events.append((time.monotonic(), e)))

    killed_at = time.monotonic()
    os.kill(keeper_pid, signal.SIGKILL)
    at, event = await async_wait_until(lambda: next(iter(events), None), 10, interval=0.005,
                                       message="a state event")
    assert at - killed_at < DETECTION_BOUND
    assert event.vm.state == VmState.CRASHED
    crashed = supervisor.get(record.id)
    assert crashed.state == VmState.CRASHED
    assert crashed.reason == "the console keeper died"
    assert crashed.vmm_pid is None and crashed.keeper_pid is None
    await async_wait_until(lambda: not alive(vmm_pid), VMM_GONE_BOUND - (time.monotonic()
                                                                         - killed_at),
                           message="the VMM gone")
    # The keeper could not clean up after itself: the supervisor did.
    assert run_dir_leftovers(supervisor.paths.home) == set()

    await supervisor.start(record.id)
    again = supervisor.get(record.id)
    assert again.state == VmState.RUNNING and again.vmm_pid != vmm_pid
    console = await Console.attach(supervisor.console_info(record.id).console_socket_path)
    await console.run("echo back", rb"back\r\n")
    await console.close()
    await supervisor.stop(record.id)
    assert supervisor.get(record.id).state == VmState.STOPPED


@pytest.mark.guest
async def test_real_qemu_does_not_outlive_its_keeper_with_no_supervisor(
    reaper, sample_guest: Path, tmp_path: Path
):
    home = reaper
    sup = await Supervisor.open(home)
    record = await sup.create(guest_spec(sample_guest, tmp_path, "alone", hypervisor="qemu"))
    await sup.start(record.id)
    running = sup.get(record.id)
    log = sup.paths.console_log(record.id)
    await async_wait_until(lambda: PROMPT in log.read_bytes(), 60, interval=0.1,
                           message="the shell prompt")
    await sup.close()  # nobody watches now

    killed_at = time.monotonic()
    os.kill(running.keeper_pid, signal.SIGKILL)
    await async_wait_until(lambda: not alive(running.vmm_pid), VMM_GONE_BOUND,
                           message="QEMU gone after its terminal hung up")
    gone_after = time.monotonic() - killed_at

    sup = await Supervisor.open(home)
    try:
        found = sup.get(record.id)
        assert found.state == VmState.STOPPED, (found.state, found.reason, gone_after)
        assert "console keeper was gone" in found.reason
        assert run_dir_leftovers(home) == set()
        offset = log.stat().st_size
        await sup.start(record.id)
        assert sup.get(record.id).state == VmState.RUNNING
        await async_wait_until(lambda: PROMPT in log.read_bytes()[offset:], 60, interval=0.1,
                               message="the shell prompt after the restart")
        await sup.stop(record.id, force=True)
    finally:
        await sup.close()

