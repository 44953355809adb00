"""Helpers for the fault-injection tests: a killable control plane, process and fd probes,
event followers and a home cleaner that never signals a process it cannot prove is ours."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx
import psutil
import tomli_w

from glidex_core.config import Paths
from glidex_core.console.procinfo import is_same_process, start_ticks
from glidex_core.models import VmSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
QEMU_STANDIN_SCRIPT = REPO_ROOT / "tests" / "standins" / "qemu_standin.py"
QEMU_STANDIN_BIN = REPO_ROOT / "tests" / "standins" / "qemu-bin"  # as the qemu_standin fixture
# What a runtime dir holds with no VM running: the lock, and a control plane's discovery file.
RUN_DIR_BASELINE = {"supervisor.lock", "control-plane.json"}


def write_config(home: Path, **settings) -> None:
    """Write ``config.toml`` before a supervisor or control plane opens the home."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / "config.toml").write_text(tomli_w.dumps(settings))


def standin_env() -> dict[str, str]:
    """The environment with the QEMU TEST STAND-IN first on PATH (for child processes)."""
    env = dict(os.environ)
    env["PATH"] = f"{QEMU_STANDIN_BIN}{os.pathsep}{env['PATH']}"
    return env


def spec_body(spec: VmSpec) -> dict:
    """A POST /vms body from a spec (fields left at None are omitted)."""
    return {k: v for k, v in asdict(spec).items() if v is not None}


def alive(pid: int | None) -> bool:
    """True if ``pid`` is a live process (zombies count as gone)."""
    return bool(pid) and start_ticks(pid) is not None


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.02,
               message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout} s")
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], object], timeout: float,
                           interval: float = 0.02, message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout} s")
        await asyncio.sleep(interval)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_dir_leftovers(home: Path) -> set[str]:
    """Files in the runtime dir beyond the lock and discovery file (sockets, pid files)."""
    return {p.name for p in Paths(home).run_dir.iterdir()} - RUN_DIR_BASELINE


def keeper_info(home: Path, vm_id: str) -> dict:
    return json.loads(Paths(home).keeper_pid_file(vm_id).read_text())


def processes_under(home: Path) -> list[psutil.Process]:
    """Live VMMs and keepers of this home: the command line names its runtime dir, or (a keeper
    started as a spare gets its spec on stdin) the process holds a console log of the home open."""
    marker, logs = str(Paths(home).run_dir), str(Paths(home).vms_dir)
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.info["cmdline"] or ()
            if any(marker in part for part in cmdline) or (
                    "glidex_core.console.keeper" in cmdline
                    and any(f.path.startswith(logs) for f in proc.open_files())):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_everything_in(home: Path) -> None:
    """Test clean-up: SIGKILL the keepers and VMMs this home's pid files prove are ours."""
    run_dir = Paths(home).run_dir
    if not run_dir.is_dir():
        return
    for pid_file in run_dir.glob("*.keeper.pid"):
        try:
            info = json.loads(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict):
            continue
        for pid_key, start_key in (("vmm_pid", "vmm_start"), ("keeper_pid", "keeper_start")):
            pid, start = info.get(pid_key), info.get(start_key)
            if isinstance(pid, int) and is_same_process(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    # A VMM the pid files no longer name but that still serves a socket in our private dir.
    for proc in processes_under(home):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


class Plane:
    """A real ``glidex-control-plane`` process on a free port, which tests may SIGKILL.

    Its log goes to a file (a pipe nobody reads would fill up and block it in long runs).
    """

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = env
        self.log_path = home.parent / f"control-plane-{home.name}.log"
        self.process: subprocess.Popen | None = None
        self.http: httpx.Client | None = None
        self.start()

    def start(self) -> None:
        discovery = Paths(self.home).run_dir / "control-plane.json"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "glidex_core.control_plane", "--home", str(self.home),
                 "--port", "0"],
                stdout=subprocess.DEVNULL, stderr=log, env=self.env, cwd=REPO_ROOT,
            )
        deadline = time.monotonic() + 30
        while True:  # a SIGKILLed predecessor leaves its discovery file behind: match the pid
            assert self.process.poll() is None, self.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "the control plane did not come up"
            try:
                info = json.loads(discovery.read_text())
            except (OSError, ValueError):
                info = {}
            if info.get("pid") == self.process.pid:
                break
            time.sleep(0.05)
        self.url = info["url"]
        self.http = httpx.Client(base_url=self.url, timeout=120)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.http.close()
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def create(self, spec: VmSpec) -> dict:
        response = self.http.post("/vms", json=spec_body(spec))
        assert response.status_code == 201, response.text
        return response.json()

    def vm(self, ref: str) -> dict:
        response = self.http.get(f"/vms/{ref}")
        assert response.status_code == 200, response.text
        return response.json()


class EventFollower:
    """Follows ``GET /events`` in the background, stamping each event on arrival."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, str, dict]] = []  # (monotonic arrival, type, data)
        self._connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> EventFollower:
        self._task = asyncio.create_task(self._follow())
        await asyncio.wait_for(self._connected.wait(), 20)
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task

    async def _follow(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=None) as http, \
                http.stream("GET", "/events") as stream:
            kind = None
            async for line in stream.aiter_lines():
                if line.startswith(": connected"):
                    self._connected.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    self.events.append((time.monotonic(), kind, json.loads(line[6:])))

    def states(self, vm_id: str) -> list[tuple[float, str, str | None]]:
        """(arrival, state, reason) of every ``state`` event of one VM."""
        return [(at, data["vm"]["state"], data["reason"]) for at, kind, data in self.events
                if kind == "state" and data["vm"]["id"] == vm_id]

    async def wait_state(self, vm_id: str, states: set[str], timeout: float
                         ) -> tuple[float, str, str | None]:
        def found():
            return next((e for e in self.states(vm_id) if e[1] in states), None)

        return await async_wait_until(found, timeout, interval=0.005,
                                      message=f"a {states} event for {vm_id}")

