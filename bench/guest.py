"""Figure 7: a real guest (the sample guest under QEMU/TCG), start to shell prompt.

Alternating in the same run:
- **glidex**: ``POST /vms/{id}/start`` on a real control plane, then the console log is read
  as it grows until the prompt ``/ # `` appears (checked every 5 ms).
- **direct**: the very argv the QEMU backend builds (``QemuBackend.command``) run by the bench on
  a PTY in raw mode (as the keeper runs it), reading the PTY until the prompt appears.
Both clocks start just before the request / the exec.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import termios
import time
import tty
from pathlib import Path

from bench.common import PROCS, Row, Section, fresh_dir, median, start_ticks, sweep
from bench.controlplane import ControlPlane
from glidex_core.config import Paths, Settings
from glidex_core.models import VmRecord, VmSpec
from glidex_core.vmm.qemu import QemuBackend

PROMPT = b"/ # "
BOOT_TIMEOUT = 120.0


def sample_guest() -> Path:
    from tests.guest_images import sample_guest_dir

    return sample_guest_dir()


def _glidex_boot(cp: ControlPlane, vm_id: str, log: Path) -> float:
    offset = log.stat().st_size if log.exists() else 0
    seen = b""
    begin = time.monotonic()
    cp.http.post(f"/vms/{vm_id}/start").raise_for_status()
    deadline = begin + BOOT_TIMEOUT
    with open(log, "rb") as f:
        f.seek(offset)
        while time.monotonic() < deadline:
            seen = (seen + f.read())[-4096:]
            if PROMPT in seen:
                elapsed = time.monotonic() - begin
                break
            time.sleep(0.005)
        else:
            raise TimeoutError(f"no prompt via glidex; console: {seen[-300:]!r}")
    cp.http.post(f"/vms/{vm_id}/stop", params={"force": "true"}).raise_for_status()
    return elapsed


def _direct_boot(argv: list[str], qmp: Path) -> float:
    qmp.unlink(missing_ok=True)
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~(termios.ONLCR | termios.OCRNL | termios.ONOCR | termios.ONLRET)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    seen = b""
    begin = time.monotonic()
    process = PROCS.popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    ticks = start_ticks(process.pid)
    try:
        deadline = begin + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen = (seen + os.read(master, 65536))[-4096:]
                except OSError:
                    break
                if PROMPT in seen:
                    return time.monotonic() - begin
        raise TimeoutError(f"no prompt from direct QEMU; console: {seen[-300:]!r}")
    finally:
        PROCS.end(process.pid, ticks, group=True)
        process.wait(10)
        os.close(master)
        qmp.unlink(missing_ok=True)


def run(quick: bool) -> Section:
    section = Section(7, "Real guest: start -> shell prompt (sample guest, QEMU, TCG)")
    work = fresh_dir("guest")
    sample = sample_guest()
    rootfs = work / "rootfs.ext4"
    shutil.copyfile(sample / "rootfs.ext4", rootfs)
    rounds = 3 if quick else 6
    os.environ["GLIDEX_ACCEL"] = "tcg"
    cp = ControlPlane(work / "home")
    glidex: list[float] = []
    direct: list[float] = []
    try:
        body = {"name": "guest", "vcpu_count": 1, "mem_size_mib": 256, "hypervisor": "qemu",
                "kernel_image_path": str(sample / "vmlinuz"), "rootfs_path": str(rootfs)}
        vm = cp.http.post("/vms", json=body).raise_for_status().json()
        log = Path(vm["log_path"])
        direct_paths = Paths(work / "direct")
        direct_paths.ensure()
        record = VmRecord.from_spec(VmSpec(**{k: v for k, v in body.items()}), "qemu")
        argv = QemuBackend(direct_paths, Settings()).command(record)
        qmp = direct_paths.qmp_socket(record.id)
        for i in range(rounds):  # alternate, and alternate who goes first
            if i % 2 == 0:
                glidex.append(_glidex_boot(cp, vm["id"], log))
                direct.append(_direct_boot(argv, qmp))
            else:
                direct.append(_direct_boot(argv, qmp))
                glidex.append(_glidex_boot(cp, vm["id"], log))
    finally:
        cp.stop()
        sweep(work)
    section.rows.append(Row(
        "7.1", "start -> '/ # ' via glidex (API, keeper)", median(glidex), "s", median(direct),
        "same qemu argv run directly", fmt="{:.2f}",
        paired_ratio=median(g / d for g, d in zip(glidex, direct, strict=True))))
    section.notes.append(
        f"{rounds} alternating rounds. glidex: " + ", ".join(f"{g:.2f}" for g in glidex)
        + " s; direct: " + ", ".join(f"{d:.2f}" for d in direct) + " s.")
    return section
