"""Fault 9: console abuse. A client flooding input at a VMM that never reads cannot grow the
keeper's memory (its sends block: back-pressure) nor stop the output reaching others; a client
that never reads cannot slow a real guest, its log or the other clients."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import threading
import time
from dataclasses import dataclass, field

import psutil
import pytest

from glidex_core.config import Paths
from glidex_core.models import VmState
from tests.helpers import Console, standin_spec
from tests.reliability.support import wait_until

FLOOD_TRY = 200 << 20  # what the abusive client tries to push
STALL = 2.0  # seconds without progress that mean its sends block


@dataclass
class Flood:
    sock: socket.socket
    sent: int = 0
    blocked: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        chunk = b"y" * (1 << 20)
        self.sock.setblocking(False)
        last_progress = time.monotonic()
        while self.sent < FLOOD_TRY and not self.stop.is_set():
            try:
                self.sent += self.sock.send(chunk)
                last_progress = time.monotonic()
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                assert exc.errno in (errno.EPIPE, errno.ECONNRESET), exc
                return
            if time.monotonic() - last_progress > STALL:
                self.blocked.set()
            select.select([], [self.sock], [], 0.1)


async def test_input_flood_is_held_back_not_buffered(supervisor, qemu_standin, tmp_path):
    record = await supervisor.create(
        standin_spec(tmp_path, "deaf", "standin.noread standin.counter=20"))
    await supervisor.start(record.id)
    running = supervisor.get(record.id)
    keeper = psutil.Process(running.keeper_pid)
    baseline_rss = keeper.memory_info().rss
    socket_path = supervisor.console_info(record.id).console_socket_path

    flood = Flood(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    flood.sock.connect(str(socket_path))
    flooder = threading.Thread(target=flood.run, daemon=True)
    flooder.start()
    try:
        await asyncio.to_thread(flood.blocked.wait, 60)
        assert flood.blocked.is_set(), f"sent {flood.sent >> 20} MiB without being held back"
        peak = 0
        for _ in range(10):  # it keeps trying while we watch
            peak = max(peak, keeper.memory_info().rss)
            await asyncio.sleep(0.1)
        assert flood.sent < 32 << 20, f"the keeper took {flood.sent >> 20} MiB of input"
        assert peak - baseline_rss < 16 << 20, (
            f"keeper RSS grew by {(peak - baseline_rss) >> 20} MiB")

        # The output still reaches other clients while input is held back.
        watcher = await Console.attach(socket_path)
        await watcher.expect(rb"c\d+\r\n.*c\d+\r\n.*c\d+\r\n", timeout=10)
        await watcher.close()
        assert keeper.is_running() and supervisor.get(record.id).state == VmState.RUNNING
    finally:
        flood.stop.set()
        flooder.join(10)
        flood.sock.close()
    stopped = await supervisor.stop(record.id)
    assert stopped.state == VmState.STOPPED
    print(f"flood: {flood.sent >> 10} KiB accepted of {FLOOD_TRY >> 20} MiB tried; keeper RSS "
          f"{baseline_rss >> 10} KiB -> peak {peak >> 10} KiB")


PAYLOAD_LINES = 31250  # of 31 x's: head -c 1000000 ends on a line end
BLOCK = b"x" * 31 + b"\r\n"
BURST = ("echo BEGIN-$((1+1)); yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c "
         f"{PAYLOAD_LINES * 32}; echo END-$((1+1))\r").encode()


async def timed_burst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      transcript: bytearray) -> tuple[float, bytes]:
    """Have the guest print 1 MB; the time until all of it arrived, and what arrived."""
    start = len(transcript)
    started = time.monotonic()
    writer.write(BURST)
    await writer.drain()
    while b"END-2\r\n" not in transcript[max(start, len(transcript) - 4096):]:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 60)
        assert chunk, "the console closed"
        transcript += chunk
    took = time.monotonic() - started
    data = bytes(transcript[start:])
    return took, data[data.index(b"BEGIN-2\r\n") + 9: data.index(b"END-2\r\n")]


@pytest.mark.guest
async def test_a_client_that_never_reads_slows_nothing_on_a_real_guest(shared_vm):
    socket_path = Paths(shared_vm.home).console_socket(shared_vm.vm_id)
    log_path = Paths(shared_vm.home).console_log(shared_vm.vm_id)
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    transcript = bytearray()
    stuck = None
    free, slowed = [], []
    try:
        for _ in range(2):  # interleaved, so that a change in the machine's load hits both
            took, data = await timed_burst(reader, writer, transcript)
            assert data == BLOCK * PAYLOAD_LINES
            free.append(took)
            stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(str(socket_path))  # and it never reads
            took, data = await timed_burst(reader, writer, transcript)
            # The guest was not held back, and the reading client got every byte.
            assert data == BLOCK * PAYLOAD_LINES
            slowed.append(took)
            stuck.close()
        assert min(slowed) < 1.5 * min(free) + 2.0, (
            f"{slowed} s with a stuck client, {free} s without")
        # The log has exactly the bytes the reading client saw (and then maybe a prompt).
        seen = bytes(transcript)
        wait_until(lambda: seen in log_path.read_bytes()[-(len(seen) + 4096):], 10,
                   message="the client's bytes, in one piece, in the log")
    finally:
        writer.close()
        if stuck is not None:
            stuck.close()
    print(f"1 MB of console output: {free} s, {slowed} s with a client that never reads")
