"""Fixtures: a Glidex home per test, the sample guest built once, and one shared booted guest.

Real guests under TCG take seconds to boot, so tests that only need *a* running guest share one
(``shared_vm``), started once per xdist worker. Each test opens its own Supervisor on that home,
which is also a standing test of adoption: the supervisor that started the VM is long gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from glidex_core.supervisor import Supervisor
from tests.guest_images import sample_guest_dir
from tests.helpers import PROMPT, guest_spec, wait_for_file_text

STANDIN_BIN = Path(__file__).parent / "standins" / "bin"
QEMU_STANDIN_BIN = Path(__file__).parent / "standins" / "qemu-bin"

os.environ.setdefault("GLIDEX_ACCEL", "tcg")


@pytest.fixture(scope="session", autouse=True)
def no_stray_vms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the session, end any keeper (and so its VMM) a test left running in its temp dirs,
    so a failing test cannot leave VMs behind on the machine."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "glidex_core.console.keeper" in cmdline and _works_under(process, cmdline, base):
            with contextlib.suppress(psutil.Error):
                process.kill()


def _works_under(keeper: psutil.Process, cmdline: list[str], base: str) -> bool:
    """Whether a keeper serves a VM of this session: its spec names the temp dirs, or, for a
    keeper started as a spare (its spec came on stdin), the files it holds open are there."""
    if any(base in arg for arg in cmdline):
        return True
    with contextlib.suppress(psutil.Error):
        return any(f.path.startswith(base) for f in keeper.open_files())
    return False


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "h"
    monkeypatch.setenv("GLIDEX_HOME", str(home))
    return home


@pytest.fixture
async def supervisor(home: Path):
    sup = await Supervisor.open(home)
    yield sup
    for record in sup.list():
        if record.is_live:
            await sup.stop(record.id, force=True)
    await sup.close()


@pytest.fixture(scope="session")
def sample_guest() -> Path:
    """The folder with the sample guest's vmlinuz and rootfs.ext4 (built once, cached)."""
    return sample_guest_dir()


@pytest.fixture
def firecracker_standin(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the Firecracker TEST STAND-IN first on PATH, as ``firecracker``."""
    monkeypatch.setenv("PATH", f"{STANDIN_BIN}{os.pathsep}{os.environ['PATH']}")
    return STANDIN_BIN / "firecracker"


@pytest.fixture
def qemu_standin(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the QEMU TEST STAND-IN (a guestless VMM for fault injection) first on PATH."""
    monkeypatch.setenv("PATH", f"{QEMU_STANDIN_BIN}{os.pathsep}{os.environ['PATH']}")
    return QEMU_STANDIN_BIN / "qemu-system-x86_64"


@dataclass
class SharedVm:
    home: Path
    vm_id: str
    name: str


@pytest.fixture(scope="session")
def shared_vm(tmp_path_factory: pytest.TempPathFactory, sample_guest: Path) -> Iterator[SharedVm]:
    """One running sample guest at its shell prompt, shared by the tests that only read/type."""
    home = tmp_path_factory.mktemp("shared") / "h"
    workdir = home.parent

    async def boot() -> str:
        sup = await Supervisor.open(home)
        try:
            spec = guest_spec(sample_guest, workdir, "shared", hypervisor="qemu")
            record = await sup.create(spec)
            await sup.start(record.id)
            return record.id
        finally:
            await sup.close()

    vm_id = asyncio.run(boot())
    wait_for_file_text(home / "vms" / vm_id / "console.log", PROMPT)
    yield SharedVm(home, vm_id, "shared")

    async def teardown() -> None:
        sup = await Supervisor.open(home)
        try:
            await sup.delete(vm_id)
        finally:
            await sup.close()

    asyncio.run(teardown())
