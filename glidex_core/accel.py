"""Choose QEMU's accelerator: KVM only when a guest really runs under it, else TCG.

Opening /dev/kvm is not enough: on some hosts KVM_CREATE_VM works but guests hang right after
SeaBIOS (and ``-cpu host`` aborts). So the probe boots the sample kernel under ``accel=kvm``
without a root disk and waits for it to panic ("Kernel panic", it cannot mount root) and QEMU to
exit; anything else means KVM is unusable. The answer is cached in
``<GLIDEX_HOME>/accel-probe.toml``.

Order: the GLIDEX_ACCEL environment variable, then config.toml's ``accel``, then the cached
probe, then a fresh probe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from glidex_core.config import glidex_home
from glidex_core.store import atomic_write

__all__ = [
    "ACCELS",
    "PROBE_FILE",
    "PROBE_TIMEOUT",
    "ProbeResult",
    "choose_accel",
    "kvm_device_usable",
    "probe_kvm",
    "read_probe_cache",
    "run_probe",
    "write_probe_cache",
]

ACCELS = ("kvm", "tcg")
PROBE_FILE = "accel-probe.toml"
PROBE_TIMEOUT = 8.0
KVM_DEVICE = "/dev/kvm"
QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class ProbeResult:
    accel: str  # "kvm" | "tcg"
    reason: str
    # False when no guest was booted (no /dev/kvm access, no QEMU, no kernel): not cached
    conclusive: bool = True


def _validate(value: str, origin: str) -> str:
    accel = value.strip().lower()
    if accel not in ACCELS:
        raise ValueError(f"{origin} must be 'kvm' or 'tcg', not {value!r}")
    return accel


def kvm_device_usable(device: str = KVM_DEVICE) -> bool:
    """True when /dev/kvm can be opened read-write."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def run_probe(kernel: Path | None, *, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Boot ``kernel`` under accel=kvm with no root disk; KVM works if it panics and QEMU exits."""
    if not kvm_device_usable():
        # Cheap to check again each time, so not cached (permissions may be fixed later).
        return ProbeResult("tcg", f"{KVM_DEVICE} cannot be opened read-write", False)
    qemu = shutil.which(QEMU)
    if qemu is None:
        return ProbeResult("tcg", f"{QEMU} not found (apt-get install qemu-system-x86)", False)
    if kernel is None or not Path(kernel).is_file():
        return ProbeResult("tcg", f"no kernel to test KVM with ({kernel})", False)
    cmd = [
        qemu, "-machine", "pc,accel=kvm", "-m", "256", "-display", "none", "-nodefaults",
        "-serial", "stdio", "-no-reboot", "-kernel", str(kernel),
        "-append", "console=ttyS0 panic=-1",
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return ProbeResult("tcg", f"a guest did not run under accel=kvm within {timeout:.0f} s")
    elapsed = time.monotonic() - start
    if b"Kernel panic" in out and proc.returncode == 0:
        return ProbeResult("kvm", f"a guest kernel ran under accel=kvm ({elapsed:.1f} s)")
    tail = out.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
    return ProbeResult("tcg", f"QEMU with accel=kvm exited {proc.returncode}: {tail[0][:200]}")


def probe_kvm(kernel: Path | None) -> bool:
    """True when a guest really runs under KVM (see :func:`run_probe`)."""
    return run_probe(kernel).accel == "kvm"


def _probe_path() -> Path:
    return glidex_home() / PROBE_FILE


def read_probe_cache() -> dict | None:
    """The cached probe ({accel, reason, kernel, probed_at}), or None when missing or invalid."""
    try:
        data = tomllib.loads(_probe_path().read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return data if data.get("accel") in ACCELS else None


def write_probe_cache(result: ProbeResult, kernel: Path | None) -> Path:
    """Record a probe result atomically (temp file in the same folder, fsync, rename)."""
    path = _probe_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {
        "accel": result.accel,
        "reason": result.reason,
        "kernel": str(kernel) if kernel else "",
        "probed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(path, tomli_w.dumps(record).encode())
    return path


def choose_accel(settings_accel: str | None, kernel: Path | None) -> str:
    """Return "kvm" or "tcg": GLIDEX_ACCEL, then the config value, then the (cached) probe."""
    env = os.environ.get("GLIDEX_ACCEL", "").strip()
    if env:
        return _validate(env, "GLIDEX_ACCEL")
    if settings_accel:
        return _validate(settings_accel, "config.toml's accel")
    cached = read_probe_cache()
    if cached is not None:
        if cached["accel"] == "kvm" and not kvm_device_usable():
            return "tcg"
        return cached["accel"]
    result = run_probe(kernel)
    if result.conclusive:
        write_probe_cache(result, kernel)
    return result.accel
