"""A real ``glidex-control-plane`` process for the benchmarks, with the STAND-IN qemu on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import PROCS, REPO_DIR, memory, write_qemu_standin
from glidex_core.config import Paths


class ControlPlane:
    def __init__(self, home: Path, *, standin_bin: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.home = home
        self.paths = Paths(home)
        self.discovery = self.paths.run_dir / "control-plane.json"
        self.discovery.unlink(missing_ok=True)
        full_env = dict(os.environ, GLIDEX_ACCEL="tcg", **(env or {}))
        if standin_bin is not None:
            full_env["PATH"] = f"{standin_bin}{os.pathsep}{full_env['PATH']}"
        self.started = time.monotonic()
        self.log_path = home.parent / "control-plane.log"
        with open(self.log_path, "ab") as err:
            self.process = PROCS.popen(
                [sys.executable, "-m", "glidex_core.control_plane", "--home", str(home),
                 "--port", "0"],
                stdout=subprocess.DEVNULL, stderr=err, env=full_env, cwd=REPO_DIR,
            )
        deadline = time.monotonic() + 60
        while not self.discovery.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"control plane exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the control plane did not come up")
            time.sleep(0.002)
        info = json.loads(self.discovery.read_text())
        self.url = info["url"]
        self.http = httpx.Client(base_url=self.url, timeout=120)

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory(self) -> dict[str, float]:
        return memory(self.pid)

    def health(self) -> dict:
        return self.http.get("/health").raise_for_status().json()

    def stop(self) -> None:
        """End the control plane (SIGTERM); running VMs keep running."""
        self.http.close()
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def standin_home(folder: Path) -> tuple[Path, Path, dict]:
    """A Glidex home, the stand-in qemu's bin dir, and a create body for a stand-in VM."""
    home = folder / "home"
    bin_dir = folder / "bin"
    write_qemu_standin(bin_dir)
    kernel = folder / "vmlinuz-standin"
    rootfs = folder / "rootfs-standin.ext4"
    kernel.write_bytes(b"not a kernel: the stand-in VMM boots nothing\n")
    rootfs.write_bytes(b"\0" * 4096)
    body = {"vcpu_count": 1, "mem_size_mib": 64, "kernel_image_path": str(kernel),
            "rootfs_path": str(rootfs), "hypervisor": "qemu"}
    return home, bin_dir, body


def vm_body(body: dict, name: str, **extra) -> dict:
    """The create body of stand-in VM ``name``, with a root disk of its own: the supervisor
    refuses a disk another live VM has open."""
    shared = Path(body["rootfs_path"])
    rootfs = shared.with_name(f"{shared.stem}-{name}{shared.suffix}")
    if not rootfs.exists():
        rootfs.write_bytes(b"\0" * 4096)
    return {**body, "name": name, "rootfs_path": str(rootfs), **extra}
