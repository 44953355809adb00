"""The sample guest for tests that boot a real guest, built once per machine.

Built into ``~/.cache/glidex-test/sample`` and shared by every pytest run and every pytest-xdist
worker: an ``fcntl.flock`` on ``~/.cache/glidex-test/sample.lock`` makes parallel workers wait
for the first one instead of building twice; later calls only read the build stamp.
"""

from __future__ import annotations

import fcntl
import functools
import sys
from pathlib import Path

from glidex_core.images import SampleImages, build_sample

CACHE_ROOT = Path.home() / ".cache" / "glidex-test"
SAMPLE_DIR = CACHE_ROOT / "sample"
LOCK_FILE = CACHE_ROOT / "sample.lock"


def _progress(line: str) -> None:
    print(f"[sample guest] {line}", file=sys.stderr, flush=True)


@functools.cache
def sample_guest() -> SampleImages:
    """Build (or reuse) the shared sample guest and describe it."""
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            return build_sample(SAMPLE_DIR, progress=_progress, hypervisor="qemu")
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def sample_guest_dir() -> Path:
    """The folder holding the shared sample guest's ``vmlinuz`` and ``rootfs.ext4``."""
    sample_guest()
    return SAMPLE_DIR


def qemu_command(
    kernel: Path, rootfs: Path, *, qmp_socket: Path | None = None, accel: str = "tcg"
) -> list[str]:
    """The QEMU command line that boots the sample guest with its console on stdio."""
    cmd = [
        "qemu-system-x86_64", "-machine", f"pc,accel={accel}", "-m", "256",
        "-display", "none", "-nodefaults",
        "-chardev", "stdio,id=c0,signal=off", "-serial", "chardev:c0", "-no-reboot",
        "-kernel", str(kernel),
        "-drive", f"file={rootfs},format=raw,if=none,id=root",
        "-device", "nvme,drive=root,serial=root",
        "-append", "console=ttyS0 root=/dev/nvme0n1 rw rootwait reboot=t panic=-1",
    ]  # fmt: skip
    if qmp_socket is not None:
        cmd += ["-qmp", f"unix:{qmp_socket},server=on,wait=off"]
    return cmd
