"""The console keeper as a real process on a real PTY, with small stand-in VMMs.

The stand-in VMMs here are ordinary programs (cat, a Python printer) in the VMM's place: what is
under test is the keeper's byte path, which does not care what is on the other side of the PTY.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from glidex_core.console.keeper import KeeperSpec
from glidex_core.console.procinfo import start_ticks


class RunningKeeper:
    def __init__(self, workdir: Path, argv: list[str]) -> None:
        self.spec = KeeperSpec(
            vm_id="test",
            argv=argv,
            log_path=str(workdir / "console.log"),
            socket_path=str(workdir / "c.sock"),
            pid_file=str(workdir / "keeper.pid"),
            exit_file=str(workdir / "exit.json"),
            vmm_stderr_path=str(workdir / "vmm.log"),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "glidex_core.console.keeper", json.dumps(asdict(self.spec))],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        line = self.process.stdout.readline().decode()
        assert line.startswith("ready"), line
        self.vmm_pid = int(line.split()[1])

    def attach(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.spec.socket_path)
        sock.settimeout(10)
        return sock

    def wait(self, timeout: float = 10) -> dict:
        self.process.wait(timeout)
        return json.loads(Path(self.spec.exit_file).read_text())

    def log(self) -> bytes:
        return Path(self.spec.log_path).read_bytes()


def read_until(sock: socket.socket, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {needle!r}; got {data!r}"
        data += chunk
    return data


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_every_client_sees_the_output_and_any_client_can_type(workdir):
    keeper = RunningKeeper(workdir, ["cat"])  # raw PTY: cat echoes what it reads
    alice, bob = keeper.attach(), keeper.attach()
    time.sleep(0.1)  # both accepted before anyone types
    alice.sendall(b"from-alice\r")
    assert b"from-alice" in read_until(bob, b"from-alice")
    bob.sendall(b"from-bob\r")
    assert b"from-bob" in read_until(alice, b"from-bob")
    os.kill(keeper.vmm_pid, signal.SIGTERM)
    status = keeper.wait()
    assert status["signal"] == signal.SIGTERM
    assert keeper.log() == b"from-alice\rfrom-bob\r"  # no CR/LF translation, no echo twice
    assert oct(os.stat(keeper.spec.log_path).st_mode & 0o777) == "0o600"


def test_a_client_that_never_reads_does_not_slow_the_guest_or_others(workdir):
    total = 40 << 20  # far more than a client may have queued
    printer = f"import sys; sys.stdout.buffer.write(b'x' * {total}); sys.stdout.flush()"
    keeper = RunningKeeper(workdir, [sys.executable, "-c", printer])
    stuck = keeper.attach()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader = keeper.attach()
    received = 0
    started = time.monotonic()
    while True:
        chunk = reader.recv(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    assert time.monotonic() - started < 30
    status = keeper.wait()
    assert status["exit_code"] == 0
    assert len(keeper.log()) == total  # every byte in the log
    assert received == total  # and to the client that kept up
    # The stuck client was dropped once it fell too far behind: it sees less, then the end.
    stuck.settimeout(5)
    got = 0
    while chunk := stuck.recv(1 << 20):
        got += len(chunk)
    assert got < total


def test_exit_code_and_signal_are_recorded(workdir):
    keeper = RunningKeeper(workdir, ["sh", "-c", "echo bye; exit 3"])
    status = keeper.wait()
    assert status == {"exit_code": 3, "signal": None, "ended_at": status["ended_at"]}
    assert b"bye" in keeper.log()
    assert not Path(keeper.spec.socket_path).exists()
    assert not Path(keeper.spec.pid_file).exists()


def test_vmm_dies_with_its_keeper(workdir):
    keeper = RunningKeeper(workdir, ["sleep", "600"])
    pid_info = json.loads(Path(keeper.spec.pid_file).read_text())
    assert pid_info["vmm_pid"] == keeper.vmm_pid
    assert pid_info["keeper_start"] == start_ticks(keeper.process.pid)
    keeper.process.kill()
    keeper.process.wait(5)
    deadline = time.monotonic() + 5
    while start_ticks(keeper.vmm_pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert start_ticks(keeper.vmm_pid) is None, "the VMM outlived its keeper"


def test_missing_vmm_binary_is_reported_in_its_log(workdir):
    keeper = RunningKeeper(workdir, ["/nonexistent/vmm"])
    assert keeper.wait()["exit_code"] == 127
    assert "cannot start /nonexistent/vmm" in (workdir / "vmm.log").read_text()
