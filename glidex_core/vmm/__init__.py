"""VMM backends, chosen by name."""

from __future__ import annotations

from glidex_core.config import Paths, Settings
from glidex_core.vmm.base import VmmBackend


def backend_for(name: str, paths: Paths, settings: Settings) -> VmmBackend:
    if name == "firecracker":
        from glidex_core.vmm.firecracker import FirecrackerBackend

        return FirecrackerBackend(paths, settings)
    if name == "qemu":
        from glidex_core.vmm.qemu import QemuBackend

        return QemuBackend(paths, settings)
    raise ValueError(f"unknown hypervisor {name!r}; use firecracker or qemu")
