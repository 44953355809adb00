"""Shared test helpers: waiting on console output, attaching to keeper sockets."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from glidex_core.api.server import discovery_file
from glidex_core.config import Paths
from glidex_core.models import VmSpec

PROMPT = b"/ # "
GUEST_BOOT_TIMEOUT = 60.0  # TCG on a loaded 2-core machine; a boot usually takes 3-5 s


def wait_for_file_text(path: Path, needle: bytes, timeout: float = GUEST_BOOT_TIMEOUT,
                       start: int = 0) -> bytes:
    """Poll a console log until ``needle`` appears after offset ``start``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = path.read_bytes()[start:]
        except FileNotFoundError:
            data = b""
        if needle in data:
            return data
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in {path} after {timeout} s; tail: {data[-500:]!r}")


class Console:
    """A client of a keeper socket that can wait for text, like a person at the console."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seen = bytearray()  # what arrived since the last expect
        self.transcript = bytearray()  # everything that arrived

    @classmethod
    async def attach(cls, socket_path: Path) -> Console:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, pattern: bytes, timeout: float = 20.0) -> re.Match:
        """Wait until ``pattern`` (a regex) matches what arrived since the last expect."""
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            match = regex.search(self.seen)
            if match:
                del self.seen[: match.end()]
                return match
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen; got {bytes(self.seen[-500:])!r}")
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"console closed before {pattern!r}")
            self.seen += chunk
            self.transcript += chunk

    async def run(self, command: str, expect: bytes, timeout: float = 20.0) -> re.Match:
        await self.send(command.encode() + b"\r")
        return await self.expect(expect, timeout)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def guest_spec(sample: Path, workdir: Path, name: str, **extra) -> VmSpec:
    """A spec for the sample guest with its own copy of the rootfs (QEMU locks disk images)."""
    rootfs = workdir / f"{name}.ext4"
    if not rootfs.exists():
        shutil.copyfile(sample / "rootfs.ext4", rootfs)
    return VmSpec(name=name, kernel_image_path=str(sample / "vmlinuz"),
                  rootfs_path=str(rootfs), mem_size_mib=256, **extra)


def standin_spec(workdir: Path, name: str, behaviour: str = "", **extra) -> VmSpec:
    """A VM for the QEMU stand-in: placeholder image files (a root disk of its own, as two live
    VMs may not share one), behaviour in the kernel args."""
    kernel, rootfs = workdir / "standin-kernel", workdir / f"standin-rootfs-{name}"
    kernel.touch()
    rootfs.touch()
    return VmSpec(name=name, kernel_image_path=str(kernel), rootfs_path=str(rootfs),
                  mem_size_mib=64, hypervisor="qemu", kernel_args=f"console=ttyS0 {behaviour}",
                  **extra)


class ControlPlane:
    """A real glidex-control-plane process on a free port (found through its discovery file)."""

    def __init__(self, home: Path, *extra: str) -> None:
        self.home = home
        self.process = subprocess.Popen(
            [sys.executable, "-m", "glidex_core.control_plane", "--home", str(home),
             "--port", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=self._log_file(home),
        )
        discovery = discovery_file(Paths(home))  # run/ may fall back elsewhere for deep homes
        deadline = time.monotonic() + 60  # generous: a loaded 2-core CI machine
        while not discovery.exists():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, "the control plane did not come up"
            time.sleep(0.05)
        info = json.loads(discovery.read_text())
        self.url = info["url"]
        self.token = info["token"]
        self.http = httpx.Client(base_url=self.url, timeout=60)

    @staticmethod
    def _log_file(home: Path):
        """Its log goes to a file beside the home: a pipe nobody reads would fill and block it."""
        home.parent.mkdir(parents=True, exist_ok=True)
        return open(home.parent / f"{home.name}-control-plane.log", "ab")  # noqa: SIM115

    def log(self) -> str:
        return (self.home.parent / f"{self.home.name}-control-plane.log").read_text()

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(20)
