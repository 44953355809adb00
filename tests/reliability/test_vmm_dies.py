"""Fault 2: the VMM dies (SIGKILL, SIGSEGV, exit after a kernel panic message, exit with a code).

Within 1 s of the death the VM is ``crashed`` (``stopped`` for a clean exit) with the exit code or
signal, the last console lines are in ``GET /vms/{id}/log``, attached clients (keeper socket and
WebSocket) get the final bytes and then the end of the stream, an event is emitted, no socket or
pid file is left, and the VM starts again. The stand-in cases run through a real control plane;
the kernel panic also runs on a real guest (``echo c > /proc/sysrq-trigger``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets

from glidex_core.config import Paths
from glidex_core.models import VmState
from tests.helpers import PROMPT, Console, guest_spec, standin_spec
from tests.reliability.support import (
    EventFollower,
    alive,
    async_wait_until,
    run_dir_leftovers,
)

DETECTION_BOUND = 1.0  # seconds from the death to the state change (the bound)


@dataclass
class Death:
    behaviour: str  # stand-in kernel args
    cause: bytes | None  # console text announcing the death (None: we cause it ourselves)
    state: str
    exit_code: int | None
    exit_signal: int | None
    reason: str
    last_words: bytes


DEATHS = {
    "sigkill": Death("standin.counter=20", None, "crashed", None, signal.SIGKILL,
                     "VMM killed by SIGKILL", b""),
    "sigsegv": Death("standin.segv=3000 standin.counter=50", b"last words", "crashed", None,
                     signal.SIGSEGV, "VMM killed by SIGSEGV", b"last words\r\n"),
    "panic": Death("standin.panic=3000 standin.counter=50", b"Kernel panic", "crashed", 0, None,
                   "guest kernel panic", b"Kernel panic - not syncing: Attempted to kill init!"),
    "exit-3": Death("standin.exit=3", None, "crashed", 3, None, "VMM exited with code 3",
                    b"exit\r\n"),
    "clean-exit": Death("standin.exit=0", None, "stopped", 0, None, "the guest powered off",
                        b"exit\r\n"),
}


async def read_ws_to_end(ws) -> bytes:
    data = b""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            frame = await asyncio.wait_for(ws.recv(), 30)
            data += frame if isinstance(frame, bytes) else frame.encode()
    return data


async def read_to_end(console: Console) -> bytes:
    while chunk := await asyncio.wait_for(console.reader.read(65536), 30):
        console.transcript += chunk
    return bytes(console.transcript)


@pytest.mark.parametrize("kind", list(DEATHS))
async def test_vmm_death_is_detected_reported_and_recoverable(standin_plane, tmp_path, kind):
    death = DEATHS[kind]
    plane = standin_plane
    vm = plane.create(standin_spec(tmp_path, f"dies-{kind}", death.behaviour))
    vm_id = vm["id"]
    async with EventFollower(plane.url) as events:
        started = plane.http.post(f"/vms/{vm_id}/start")
        assert started.status_code == 200, started.text
        vmm_pid = started.json()["pid"]
        console = await Console.attach(Paths(plane.home).console_socket(vm_id))
        ws = await websockets.connect(
            f"{plane.url.replace('http://', 'ws://')}/vms/{vm_id}/console/ws")
        try:
            await async_wait_until(
                lambda: plane.http.get(f"/vms/{vm_id}/console").json()["clients"] == 2, 10,
                message="both clients attached at the keeper")
            seen_by_ws = b""
            if kind == "sigkill":
                await console.expect(rb"c\d+\r\n")
                # The WebSocket's stream is live too before the kill (the line above may
                # have been on its way before the WebSocket attached, and then it saw none).
                seen_by_ws = await asyncio.wait_for(ws.recv(), 10)
                died_at = time.monotonic()
                os.kill(vmm_pid, signal.SIGKILL)
            elif death.cause is not None:
                log = Paths(plane.home).console_log(vm_id)
                assert death.cause not in log.read_bytes(), "attached too late to see it die"
                await console.expect(death.cause, timeout=20)
                died_at = time.monotonic()  # it prints this, then dies at once
            else:
                await console.send(b"exit\r")
                died_at = time.monotonic()
            at, state, reason = await events.wait_state(vm_id, {"crashed", "stopped"}, 10)
            assert at - died_at < DETECTION_BOUND, f"noticed after {at - died_at:.2f} s"
            assert state == death.state and death.reason in reason

            # Attached clients get the final bytes, then the end of the stream.
            local = await read_to_end(console)
            remote = seen_by_ws + await read_ws_to_end(ws)
        finally:
            await console.close()
            await ws.close()

        record = plane.vm(vm_id)
        assert record["state"] == death.state and death.reason in record["reason"]
        assert record["exit_code"] == death.exit_code
        assert record["exit_signal"] == death.exit_signal
        assert record["pid"] is None and not alive(vmm_pid)
        log = Paths(plane.home).console_log(vm_id).read_bytes()
        assert log.endswith(local), "the attached client missed bytes the log has"
        assert remote and log.endswith(remote), "the WebSocket client missed bytes"
        assert death.last_words in local and death.last_words in remote
        tail = plane.http.get(f"/vms/{vm_id}/log", params={"tail_bytes": 300}).content
        assert tail == log[-300:]
        assert death.last_words in tail
        if kind == "sigkill":
            last = log.rstrip().rsplit(b"\n", 1)[-1]
            assert last.startswith(b"c") and last in local  # the last counter line
        assert run_dir_leftovers(plane.home) == set(), "stale sockets or pid files"

        again = plane.http.post(f"/vms/{vm_id}/start")
        assert again.status_code == 200, again.text
        assert again.json()["state"] == "running" and again.json()["pid"] != vmm_pid

        await async_wait_until(lambda: len(events.states(vm_id)) >= 3, 10,
                               message="the second running event")
        assert [s for _, s, _ in events.states(vm_id)] == ["running", death.state, "running"]
    assert plane.http.post(f"/vms/{vm_id}/stop", params={"force": "true"}).status_code == 200
    assert plane.http.delete(f"/vms/{vm_id}").status_code == 204
    assert run_dir_leftovers(plane.home) == set()


@pytest.mark.guest
async def test_real_guest_kernel_panic_is_a_crash_with_its_last_words(
    supervisor, sample_guest: Path, tmp_path: Path
):
    record = await supervisor.create(guest_spec(sample_guest, tmp_path, "panics",
                                                hypervisor="qemu"))
    await supervisor.start(record.id)
    info = supervisor.console_info(record.id)
    console = await Console.attach(info.console_socket_path)
    await async_wait_until(lambda: PROMPT in info.log_path.read_bytes(), 60, interval=0.1,
                           message="the shell prompt")
    await console.run("echo ready-$((2+3))", rb"ready-5\r\n")
    events = []
    supervisor.subscribe(lambda e: events.append((time.monotonic(), e)))

    await console.send(b"echo c > /proc/sysrq-trigger\r")
    await console.expect(rb"Kernel panic - not syncing", timeout=30)
    panicked_at = time.monotonic()
    at, event = await async_wait_until(lambda: next(iter(events), None), 10, interval=0.005,
                                       message="a state event")
    assert at - panicked_at < DETECTION_BOUND
    assert event.kind == "state" and event.vm.state == VmState.CRASHED
    crashed = supervisor.get(record.id)
    assert crashed.state == VmState.CRASHED
    assert "guest kernel panic" in crashed.reason and "sysrq triggered crash" in crashed.reason
    assert crashed.exit_code == 0 and crashed.exit_signal is None  # a panic reboots: QEMU exits

    transcript = await read_to_end(console)  # the end of the stream, after the final bytes
    await console.close()
    log = info.log_path.read_bytes()
    assert log.endswith(transcript)
    assert b"Kernel panic - not syncing: sysrq triggered crash" in log[-8192:]
    assert run_dir_leftovers(supervisor.paths.home) == set()

    offset = len(log)
    await supervisor.start(record.id)
    assert supervisor.get(record.id).state == VmState.RUNNING
    await async_wait_until(lambda: PROMPT in info.log_path.read_bytes()[offset:], 60,
                           interval=0.1, message="the shell prompt after the restart")
    await supervisor.stop(record.id, force=True)
