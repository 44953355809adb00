"""The spare console keeper: started ahead of need so a start does not wait for an interpreter
(bench figure 3.1), handed the next VM, replaced, and never left behind by its supervisor."""

from __future__ import annotations

import os
import signal
import time

import psutil

from glidex_core.supervisor import Supervisor
from tests.helpers import ControlPlane, standin_spec


def spares_of(pid: int, supervisor: Supervisor | None = None,
              besides: frozenset[int] = frozenset()) -> list[psutil.Process]:
    """Spare keepers whose parent is ``pid``, not (yet) a VM's keeper, and not in ``besides``
    (spares of other supervisors of this test process that are still open, e.g. dropped ones)."""
    keepers = {r.keeper_pid for r in supervisor.list()} if supervisor else set()
    found = []
    for child in psutil.Process(pid).children():
        try:
            if "--spare" in child.cmdline() and child.pid not in keepers | besides \
                    and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def spares_now() -> frozenset[int]:
    """Our spares before a test opens its supervisor: earlier tests may have left theirs."""
    return frozenset(p.pid for p in spares_of(os.getpid()))


def wait_gone(process: psutil.Process, timeout: float = 5) -> bool:
    """Ended (a zombie counts: an orphan's reaping is up to init, not to us)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
            process.wait(0.05)
            return True
        except (psutil.NoSuchProcess, psutil.TimeoutExpired) as exc:
            if isinstance(exc, psutil.NoSuchProcess):
                return True
    return False


async def test_start_hands_the_vm_to_the_waiting_spare_and_starts_the_next(
        home, qemu_standin, tmp_path):
    others = spares_now()
    supervisor = await Supervisor.open(home)
    try:
        [spare] = spares_of(os.getpid(), besides=others)
        record = await supervisor.create(standin_spec(tmp_path, "fast"))
        record = await supervisor.start(record.id)
        assert record.keeper_pid == spare.pid  # the spare became this VM's keeper
        assert "--spare" in spare.cmdline()
        [following] = spares_of(os.getpid(), supervisor, others)
        assert following.pid != spare.pid
        keeper_log = supervisor.paths.vm_dir(record.id) / "keeper.log"
        assert keeper_log.exists() and keeper_log.stat().st_mode & 0o777 == 0o600
        info = supervisor.console_info(record.id)
        assert info.available
        await supervisor.stop(record.id, force=True)
    finally:
        await supervisor.close()
    assert wait_gone(following)  # closing the supervisor lets its spare go
    assert spares_of(os.getpid(), besides=others) == []


async def test_a_dead_spare_does_not_fail_the_start(home, qemu_standin, tmp_path):
    others = spares_now()
    supervisor = await Supervisor.open(home)
    try:
        [spare] = spares_of(os.getpid(), besides=others)
        spare.kill()
        assert wait_gone(spare)
        record = await supervisor.create(standin_spec(tmp_path, "plain"))
        record = await supervisor.start(record.id)
        assert record.state == "running" and record.keeper_pid != spare.pid
        await supervisor.stop(record.id, force=True)
    finally:
        await supervisor.close()


async def test_a_spare_is_not_used_when_configured_off(home, qemu_standin, tmp_path):
    home.mkdir(parents=True)
    (home / "config.toml").write_text("spare_keeper = false\n")
    others = spares_now()
    supervisor = await Supervisor.open(home)
    try:
        assert spares_of(os.getpid(), besides=others) == []
        record = await supervisor.start((await supervisor.create(
            standin_spec(tmp_path, "slow"))).id)
        assert record.state == "running"
        assert spares_of(os.getpid(), besides=others) == []
        await supervisor.stop(record.id, force=True)
    finally:
        await supervisor.close()


def test_the_spare_exits_when_its_control_plane_is_killed(tmp_path):
    plane = ControlPlane(tmp_path / "h")
    try:
        deadline = time.monotonic() + 10
        while not (spares := spares_of(plane.process.pid)):
            assert time.monotonic() < deadline, "no spare keeper was started"
            time.sleep(0.05)
        os.kill(plane.process.pid, signal.SIGKILL)
        plane.process.wait(10)
        assert wait_gone(spares[0]), "the spare outlived its control plane"
    finally:
        plane.stop()


async def test_the_vmm_gets_the_environment_of_the_start_not_of_the_spare(
        home, tmp_path, monkeypatch, qemu_standin):
    """The spare started before PATH changed (as when the supervisor fixture comes first);
    the VMM must still be the one PATH names at start time."""
    with_standin = os.environ["PATH"]
    monkeypatch.setenv("PATH", with_standin.split(os.pathsep, 1)[1])  # no stand-in on it
    others = spares_now()
    supervisor = await Supervisor.open(home)
    try:
        [spare] = spares_of(os.getpid(), besides=others)
        monkeypatch.setenv("PATH", with_standin)
        monkeypatch.setenv("GLIDEX_SPARE_PROBE", "from-start")
        record = await supervisor.start((await supervisor.create(
            standin_spec(tmp_path, "envy"))).id)
        assert record.keeper_pid == spare.pid
        vmm = psutil.Process(record.vmm_pid)
        # the stand-in, not real QEMU:
        assert str(qemu_standin) in " ".join(vmm.cmdline()), vmm.cmdline()
        assert vmm.environ().get("GLIDEX_SPARE_PROBE") == "from-start"
        await supervisor.stop(record.id, force=True)
    finally:
        await supervisor.close()


async def test_keepers_tune_their_malloc_but_their_vmms_get_the_callers_environment(
        home, tmp_path, monkeypatch, qemu_standin):
    """The keeper's GLIBC_TUNABLES (a fixed mmap threshold: burst buffers are given back) is
    the keeper's own: a VMM sees GLIBC_TUNABLES as the supervisor had it."""
    for theirs in (None, "glibc.malloc.arena_max=2"):
        if theirs is None:
            monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
        else:
            monkeypatch.setenv("GLIBC_TUNABLES", theirs)
        supervisor = await Supervisor.open(home)  # its spare starts with this environment
        try:
            name = "tuned" if theirs is None else "tuned-too"
            record = await supervisor.start((await supervisor.create(
                standin_spec(tmp_path, name))).id)
            keeper = psutil.Process(record.keeper_pid).environ()
            vmm = psutil.Process(record.vmm_pid).environ()
            assert "glibc.malloc.mmap_threshold=131072" in keeper["GLIBC_TUNABLES"]
            assert vmm.get("GLIBC_TUNABLES") == theirs
            assert "GLIDEX_VMM_GLIBC_TUNABLES" not in vmm
            await supervisor.stop(record.id, force=True)
        finally:
            await supervisor.close()
