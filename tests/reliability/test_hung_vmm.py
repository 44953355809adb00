"""Fault 5: a hung VMM (SIGSTOP'd, or an API that never answers).

Stop and delete still finish within a bound (graceful for stop_timeout, then SIGTERM, then
SIGKILL, each signal given SIGNAL_GRACE), and leave no process, socket or file descriptor behind:
the VMM and keeper pids are gone, the runtime dir holds no VM file, and the control plane's fd
count is back at its baseline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from glidex_core.config import Paths
from glidex_core.models import HypervisorError, VmState
from glidex_core.supervisor import BOOT_TIMEOUT, SIGNAL_GRACE, Supervisor
from tests.helpers import PROMPT, guest_spec, standin_spec
from tests.reliability.conftest import STANDIN_STOP_TIMEOUT
from tests.reliability.support import (
    QEMU_STANDIN_SCRIPT,
    alive,
    async_wait_until,
    fd_count,
    keeper_info,
    run_dir_leftovers,
    wait_until,
    write_config,
)

SLACK = 3.0  # scheduling on a loaded machine
# graceful stop_timeout, then SIGTERM and SIGKILL to the VMM, then SIGKILL to a stuck keeper
WORST_CASE = STANDIN_STOP_TIMEOUT + 3 * SIGNAL_GRACE + SLACK


@contextlib.contextmanager
def silent_api(path: Path) -> Iterator[None]:
    """Replace the VMM's API socket with one that accepts connections and never answers."""
    path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(16)
    try:
        yield
    finally:
        sock.close()


def freeze_vmm(info: dict, api: Path, stack: contextlib.ExitStack) -> None:
    os.kill(info["vmm_pid"], signal.SIGSTOP)


def freeze_vmm_and_keeper(info: dict, api: Path, stack: contextlib.ExitStack) -> None:
    os.kill(info["vmm_pid"], signal.SIGSTOP)
    os.kill(info["keeper_pid"], signal.SIGSTOP)


def silence_api(info: dict, api: Path, stack: contextlib.ExitStack) -> None:
    stack.enter_context(silent_api(api))


def nothing(info: dict, api: Path, stack: contextlib.ExitStack) -> None:
    """The stand-in itself ignores the power button."""


@pytest.fixture(scope="module")
def baseline_fds(standin_plane) -> int:
    """The control plane's fd count once it has run a VM (lazy imports and pools are warm)."""
    plane = standin_plane
    vm = plane.create(standin_spec(plane.home.parent, "warmup"))
    assert plane.http.post(f"/vms/{vm['id']}/start").status_code == 200
    assert plane.http.post(f"/vms/{vm['id']}/stop").status_code == 200
    assert plane.http.delete(f"/vms/{vm['id']}").status_code == 204
    time.sleep(0.5)
    return fd_count(plane.pid)


Hang = Callable[[dict, Path, contextlib.ExitStack], None]
HANGS: dict[str, tuple[str, Hang, float]] = {
    # name: (stand-in kernel args, how to hang it, the bound for this hang)
    "sigstop": ("standin.counter=10", freeze_vmm,
                STANDIN_STOP_TIMEOUT + 2 * SIGNAL_GRACE + SLACK),  # SIGTERM waits: SIGKILL
    "silent-api": ("standin.counter=10", silence_api,
                   STANDIN_STOP_TIMEOUT + SIGNAL_GRACE + SLACK),
    "ignores-powerdown": ("standin.no_powerdown", nothing,
                          STANDIN_STOP_TIMEOUT + SIGNAL_GRACE + SLACK),
    "sigstop-keeper-too": ("standin.counter=10", freeze_vmm_and_keeper, WORST_CASE),
}


@pytest.mark.parametrize(("hang", "operation"), [
    ("sigstop", "stop"),
    ("sigstop", "delete"),
    ("silent-api", "stop"),
    ("silent-api", "delete"),
    ("ignores-powerdown", "stop"),
    ("sigstop-keeper-too", "stop"),
])
def test_hung_vmm_is_stopped_and_deleted_within_a_bound_leaving_nothing(
    standin_plane, baseline_fds, tmp_path, hang, operation
):
    plane = standin_plane
    behaviour, make_hang, bound = HANGS[hang]
    vm = plane.create(standin_spec(tmp_path, f"hung-{hang}-{operation}", behaviour))
    vm_id = vm["id"]
    assert plane.http.post(f"/vms/{vm_id}/start").status_code == 200
    paths = Paths(plane.home)
    info = keeper_info(plane.home, vm_id)
    vmm_pid, keeper_pid = info["vmm_pid"], info["keeper_pid"]

    with contextlib.ExitStack() as stack:
        make_hang(info, paths.qmp_socket(vm_id), stack)
        started = time.monotonic()
        if operation == "stop":
            response = plane.http.post(f"/vms/{vm_id}/stop")
        else:
            response = plane.http.delete(f"/vms/{vm_id}")
        took = time.monotonic() - started
    assert response.status_code == (200 if operation == "stop" else 204), response.text
    assert took < bound, f"{operation} took {took:.1f} s (bound {bound:.1f} s)"
    assert took >= STANDIN_STOP_TIMEOUT * 0.9, "it did not even try a graceful stop"

    assert not alive(vmm_pid) and not alive(keeper_pid)
    assert run_dir_leftovers(plane.home) == set()
    if operation == "stop":
        stopped = response.json()
        assert plane.http.delete(f"/vms/{vm_id}").status_code == 204
    else:
        assert plane.http.get(f"/vms/{vm_id}").status_code == 404
    assert not paths.vm_dir(vm_id).exists()
    wait_until(lambda: fd_count(plane.pid) <= baseline_fds, 5,
               message=f"the control plane's fd count back at {baseline_fds}")
    assert fd_count(plane.pid) == baseline_fds
    if operation == "stop":  # last, so that a wrong state does not hide a leak
        assert stopped["state"] == "stopped", stopped
        assert "stopped on request" in stopped["reason"]


async def test_start_of_a_vmm_whose_api_never_answers_fails_within_a_bound(
    reaper, qemu_standin, tmp_path
):
    """Found here: the boot's TimeoutError has an empty message, which the supervisor took for
    success, so such a VM was reported running after 5 s."""
    write_config(reaper, stop_timeout=STANDIN_STOP_TIMEOUT)
    sup = await Supervisor.open(reaper)
    try:
        record = await sup.create(standin_spec(tmp_path, "mute", "standin.qmp_hang"))
        started = time.monotonic()
        with pytest.raises(HypervisorError):
            await sup.start(record.id)
        assert time.monotonic() - started < BOOT_TIMEOUT + SLACK
        failed = sup.get(record.id)
        assert failed.state == VmState.FAILED and failed.reason.strip()
        assert run_dir_leftovers(reaper) == set()
    finally:
        await sup.close()


@pytest.mark.guest
async def test_sigstopped_real_qemu_is_stopped_within_a_bound(
    reaper, sample_guest: Path, tmp_path: Path
):
    write_config(reaper, stop_timeout=1.0)
    sup = await Supervisor.open(reaper)
    try:
        record = await sup.create(guest_spec(sample_guest, tmp_path, "frozen",
                                             hypervisor="qemu"))
        fds_before = fd_count(os.getpid())
        await sup.start(record.id)
        log = sup.paths.console_log(record.id)
        await async_wait_until(lambda: PROMPT in log.read_bytes(), 60, interval=0.1,
                               message="the shell prompt")
        running = sup.get(record.id)
        os.kill(running.vmm_pid, signal.SIGSTOP)

        started = time.monotonic()
        stopped = await sup.stop(record.id)
        took = time.monotonic() - started
        assert took < 1.0 + 2 * SIGNAL_GRACE + SLACK, f"stop took {took:.1f} s"
        assert stopped.state == VmState.STOPPED
        assert stopped.exit_signal == signal.SIGKILL  # SIGTERM waits while it is stopped
        assert not alive(running.vmm_pid) and not alive(running.keeper_pid)
        assert run_dir_leftovers(reaper) == set()
        await sup.delete(record.id)
        await async_wait_until(lambda: fd_count(os.getpid()) <= fds_before, 5,
                               message="our fds back at the baseline")
        assert fd_count(os.getpid()) == fds_before
    finally:
        await sup.close()


SLOW_LISTENER = """#!{python}
# A VMM that binds its QMP socket {delay} s before it listens: the QEMU stand-in, slowed down.
import socket, sys, time
sys.path.insert(0, {standins!r})
_listen = socket.socket.listen
def slow_listen(self, *args):
    time.sleep({delay})
    return _listen(self, *args)
socket.socket.listen = slow_listen
from qemu_standin import main
main()
"""


async def test_start_waits_for_a_vmm_that_binds_its_api_socket_before_listening(
    reaper, tmp_path, monkeypatch
):
    """Found by the leak and concurrency tests on a loaded machine: the socket file exists from
    bind(), a connection before listen() is refused, and the start failed with
    "Connection refused". Real QEMU binds before it listens too."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    vmm = bin_dir / "qemu-system-x86_64"
    vmm.write_text(SLOW_LISTENER.format(python=sys.executable, delay=0.5,
                                        standins=str(QEMU_STANDIN_SCRIPT.parent)))
    vmm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    sup = await Supervisor.open(reaper)
    try:
        record = await sup.create(standin_spec(tmp_path, "slowpoke"))
        await sup.start(record.id)
        assert sup.get(record.id).state == VmState.RUNNING
        await sup.stop(record.id)
    finally:
        await sup.close()
