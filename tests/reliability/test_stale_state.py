"""Fault 4: stale state. A record whose keeper pid now belongs to an unrelated process (pid reuse)
is reported stopped and that process is never signalled; junk at socket and pid paths (files,
directories, symlinks, dead sockets, garbage JSON) never blocks opening the home or starting."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from glidex_core.config import Paths
from glidex_core.console.procinfo import start_ticks
from glidex_core.models import VmState
from glidex_core.store import RecordStore
from glidex_core.supervisor import Supervisor
from tests.helpers import Console, standin_spec
from tests.reliability.support import run_dir_leftovers, wait_until

# An unrelated process that notes every signal it can catch (SIGKILL and SIGSTOP it cannot:
# for those we check it is still alive and not stopped).
BYSTANDER = textwrap.dedent("""
    import signal, sys, time
    log = sys.argv[1]
    def noted(signum, frame):
        with open(log, "a") as f:
            f.write(f"{signum}\\n")
    for signum in signal.valid_signals():
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(signum, noted)
            except (OSError, ValueError):
                pass
    open(log + ".ready", "w").close()
    while True:
        time.sleep(1)
""")


@pytest.fixture
def bystander(tmp_path: Path):
    signals = tmp_path / "bystander-signals"
    process = subprocess.Popen([sys.executable, "-c", BYSTANDER, str(signals)])
    wait_until(lambda: Path(f"{signals}.ready").exists(), 20, message="the bystander")
    yield process, signals
    process.kill()
    process.wait(5)


def assert_untouched(process: subprocess.Popen, signals: Path) -> None:
    assert process.poll() is None, "the unrelated process was killed"
    assert psutil.Process(process.pid).status() != psutil.STATUS_STOPPED
    assert not signals.exists(), f"signalled: {signals.read_text().split()}"


async def make_stale_running_record(home: Path, workdir: Path, pid: int,
                                    pid_file_text: str | None) -> str:
    """A record left 'running' by a supervisor that died, pointing at ``pid``."""
    sup = await Supervisor.open(home)
    record = await sup.create(standin_spec(workdir, "stale"))
    await sup.close()
    record.state = VmState.RUNNING
    record.keeper_pid = record.vmm_pid = pid
    record.started_at = time.time() - 3600
    RecordStore(Paths(home)).save(record)
    if pid_file_text is not None:
        Paths(home).keeper_pid_file(record.id).write_text(pid_file_text)
    return record.id


async def test_reused_pid_is_reported_stopped_and_never_signalled(
    reaper, qemu_standin, bystander, tmp_path
):
    process, signals = bystander
    ticks = start_ticks(process.pid)
    wrong = ticks + 12345  # the same pid, but not the process that started back then
    pid_file = json.dumps({"keeper_pid": process.pid, "keeper_start": wrong,
                           "vmm_pid": process.pid, "vmm_start": wrong,
                           "socket": "x", "clients": 0, "log_error": None})
    vm_id = await make_stale_running_record(reaper, tmp_path, process.pid, pid_file)

    sup = await Supervisor.open(reaper)
    try:
        record = sup.get(vm_id)
        assert record.state == VmState.STOPPED
        assert "console keeper was gone" in record.reason
        assert record.keeper_pid is None and record.vmm_pid is None
        assert RecordStore(sup.paths).load(vm_id).state == VmState.STOPPED  # saved, too
        assert run_dir_leftovers(reaper) == set()
        # Nothing the user does to this VM afterwards reaches the unrelated process either.
        await sup.start(vm_id)
        assert sup.get(vm_id).state == VmState.RUNNING
        await sup.stop(vm_id)
        await sup.delete(vm_id)
    finally:
        await sup.close()
    time.sleep(0.2)  # a signal, had one been sent, would be noted by now
    assert_untouched(process, signals)


@pytest.mark.parametrize("pid_file_text", [
    pytest.param(None, id="missing"),
    pytest.param("{garbage", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param("null", id="null"),
    pytest.param('{"keeper_pid": 99999999, "keeper_start": 1}', id="dead-pid"),
    # Valid JSON of the wrong shape: the supervisor must not trust the pid file's types.
    pytest.param("[1, 2]", id="json-list"),
    pytest.param("42", id="json-number"),
    pytest.param('{"keeper_pid": "12"}', id="pid-string"),
    pytest.param('{"keeper_pid": -1}', id="pid-negative"),
    pytest.param('{"keeper_pid": 1.5, "vmm_pid": 2}', id="pid-float"),
])
async def test_junk_pid_file_of_a_dead_vm_never_blocks_opening_or_starting(
    reaper, qemu_standin, bystander, tmp_path, pid_file_text
):
    process, signals = bystander
    vm_id = await make_stale_running_record(reaper, tmp_path, process.pid, pid_file_text)
    run = Paths(reaper)
    run.console_socket(vm_id).write_text("stale")  # and more junk where the sockets were
    run.qmp_socket(vm_id).mkdir()

    sup = await Supervisor.open(reaper)
    try:
        assert sup.get(vm_id).state == VmState.STOPPED
        assert run_dir_leftovers(reaper) == set()
        await sup.start(vm_id)
        assert sup.get(vm_id).state == VmState.RUNNING
        await sup.stop(vm_id)
    finally:
        await sup.close()
    assert_untouched(process, signals)


def _stale_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens


def _dir_with_content(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text("junk")


JUNK = {
    "file": lambda path: path.write_text("junk"),
    "empty-file": lambda path: path.touch(),
    "directory": _dir_with_content,
    "dead-socket": _stale_socket,
    "dangling-symlink": lambda path: path.symlink_to(path.parent / "nowhere"),
    "garbage-json": lambda path: path.write_bytes(b'{"keeper_pid": \x00\xff'),
}


@pytest.mark.parametrize("where", ["console_socket", "qmp_socket", "keeper_pid_file"])
@pytest.mark.parametrize("junk", list(JUNK))
async def test_junk_at_runtime_paths_never_blocks_start(
    supervisor, qemu_standin, tmp_path, where, junk
):
    record = await supervisor.create(standin_spec(tmp_path, "junked"))
    path = getattr(supervisor.paths, where)(record.id)
    JUNK[junk](path)
    supervisor.paths.exit_file(record.id).write_text("{not json")  # a stale exit status too

    await supervisor.start(record.id)
    running = supervisor.get(record.id)
    assert running.state == VmState.RUNNING
    console = await Console.attach(supervisor.console_info(record.id).console_socket_path)
    await console.run("echo works", rb"works\r\n")
    await console.close()
    stopped = await supervisor.stop(record.id)
    assert stopped.state == VmState.STOPPED and stopped.exit_code == 0
    assert run_dir_leftovers(supervisor.paths.home) == set()


async def test_symlink_at_a_socket_path_is_removed_not_followed(
    supervisor, qemu_standin, tmp_path
):
    """A symlink planted at a runtime path must not make the supervisor delete its target."""
    record = await supervisor.create(standin_spec(tmp_path, "linked"))
    precious_file = tmp_path / "precious.txt"
    precious_file.write_text("keep me")
    precious_dir = tmp_path / "precious-dir"
    precious_dir.mkdir()
    (precious_dir / "inside").write_text("keep me too")
    supervisor.paths.console_socket(record.id).symlink_to(precious_file)
    supervisor.paths.qmp_socket(record.id).symlink_to(precious_dir)
    supervisor.paths.keeper_pid_file(record.id).symlink_to(precious_file)

    await supervisor.start(record.id)
    assert supervisor.get(record.id).state == VmState.RUNNING
    await supervisor.stop(record.id)
    await supervisor.delete(record.id)
    assert precious_file.read_text() == "keep me"
    assert (precious_dir / "inside").read_text() == "keep me too"
    assert os.listdir(supervisor.paths.vms_dir) == []
