"""VMs and their consoles outlive the supervisor: closed politely, or killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from glidex_core.config import Paths
from glidex_core.models import VmState
from glidex_core.supervisor import Supervisor, SupervisorBusyError
from tests.helpers import PROMPT, Console, guest_spec, wait_for_file_text

pytestmark = pytest.mark.guest


async def test_closing_the_supervisor_leaves_the_vm_running(shared_vm):
    first = await Supervisor.open(shared_vm.home)
    record = first.get(shared_vm.name)
    assert record.state == VmState.RUNNING
    vmm_pid = record.vmm_pid
    with pytest.raises(SupervisorBusyError, match="another Glidex supervisor"):
        await Supervisor.open(shared_vm.home)
    await first.close()
    del first

    second = await Supervisor.open(shared_vm.home)
    try:
        again = second.get(shared_vm.name)
        assert again.state == VmState.RUNNING and again.vmm_pid == vmm_pid
        console = await Console.attach(second.console_info(again.id).console_socket_path)
        await console.run("echo $((20+22))", rb"\r\n42\r\n")
        await console.close()
    finally:
        await second.close()


STARTER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from glidex_core.supervisor import Supervisor
    from tests.helpers import guest_spec

    async def main():
        sup = await Supervisor.open(Path(sys.argv[1]))
        record = await sup.create(guest_spec(Path(sys.argv[2]), Path(sys.argv[3]), "survivor",
                                             hypervisor="qemu"))
        await sup.start(record.id)
        print(record.id, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_sigkilled_supervisor_process_leaves_vm_and_log_intact(
    tmp_path, sample_guest
):
    home = tmp_path / "h"
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(home), str(sample_guest), str(tmp_path)],
        stdout=subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    vm_id = starter.stdout.readline().decode().strip()
    log_path = home / "vms" / vm_id / "console.log"
    wait_for_file_text(log_path, PROMPT)

    with pytest.raises(SupervisorBusyError):  # the starter holds the home until it dies
        await Supervisor.open(home)
    # Let the guest count while its supervisor dies.
    socket_path = Paths(home).console_socket(vm_id)
    console = await Console.attach(socket_path)
    await console.send(b"i=0; while [ $i -lt 300 ]; do echo n$i; i=$((i+1)); sleep 0.01; done\r")
    await console.expect(rb"n20\r\n")
    os.kill(starter.pid, signal.SIGKILL)
    starter.wait(5)
    await console.expect(rb"n299\r\n", timeout=60)
    await console.close()

    sup = await Supervisor.open(home)
    try:
        record = sup.get("survivor")
        assert record.state == VmState.RUNNING
        console = await Console.attach(sup.console_info(vm_id).console_socket_path)
        await console.run("echo alive-$((1+1))", rb"alive-2")
        await console.close()
        counted = [int(n) for n in re.findall(rb"\nn(\d+)\r", log_path.read_bytes())]
        assert counted == list(range(300)), "the console log has a gap or a duplicate"
        await sup.stop(record.id, force=True)
        assert sup.get("survivor").state == VmState.STOPPED
    finally:
        await sup.close()


async def test_vm_whose_vmm_was_killed_is_reported_crashed(supervisor, sample_guest, tmp_path):
    record = await supervisor.create(guest_spec(sample_guest, tmp_path, "victim",
                                                hypervisor="qemu"))
    await supervisor.start(record.id)
    events = []
    supervisor.subscribe(events.append)
    os.kill(supervisor.get(record.id).vmm_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while supervisor.get(record.id).state == VmState.RUNNING and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    crashed = supervisor.get(record.id)
    assert crashed.state == VmState.CRASHED
    assert crashed.exit_signal == signal.SIGKILL and "SIGKILL" in crashed.reason
    assert [e.vm.state for e in events] == [VmState.CRASHED]
    await supervisor.start(record.id)  # and it starts again
    assert supervisor.get(record.id).state == VmState.RUNNING
