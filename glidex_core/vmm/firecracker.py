"""Firecracker backend: configured through its HTTP API on a Unix socket (v1.16 API).

Written to the official API definition (shared/firecracker/firecracker-api.yaml). On these
development machines it only ever ran against the test stand-in in tests/standins/, which enforces
that definition; see the README for what has and has not been tried on real Firecracker.

Firecracker appends ``root=/dev/vda`` (and rw/ro) for the root drive itself, so unlike the QEMU
backend we add no ``root=`` argument.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from glidex_core.models import HypervisorError, VmRecord
from glidex_core.vmm.base import VmmBackend, wait_for_socket
from glidex_core.vmm.jailer import JAIL_API_SOCKET, Jail

FIRECRACKER_BINARY = "firecracker"
JAILER_BINARY = "jailer"
ROOT_DRIVE_ID = "rootfs"


class FirecrackerBackend(VmmBackend):
    name = "firecracker"
    default_kernel_args = "console=ttyS0 reboot=k panic=1 pci=off"

    def binary(self) -> str:
        found = shutil.which(FIRECRACKER_BINARY)
        if not found:
            raise HypervisorError(
                "the firecracker binary is not on PATH; install it (./install.sh does when "
                "online) or create the VM with hypervisor 'qemu'"
            )
        return found

    def _jail(self, record: VmRecord) -> Jail | None:
        return Jail.for_vm(self.settings, record.id) if self.settings.use_jailer else None

    def api_socket(self, record: VmRecord) -> Path:
        jail = self._jail(record)
        return jail.host_path(JAIL_API_SOCKET) if jail else self.paths.api_socket(record.id)

    def command(self, record: VmRecord) -> list[str]:
        jail = self._jail(record)
        if jail is not None:
            jailer = shutil.which(JAILER_BINARY)
            if not jailer:
                raise HypervisorError("use_jailer is set but the jailer binary is not on PATH")
            jail.prepare(record)
            return jail.command(jailer, self.binary(), record.id)
        api_socket = self.paths.api_socket(record.id)
        api_socket.unlink(missing_ok=True)  # Firecracker refuses to start on an existing path
        log_path = self.paths.vmm_log(record.id)
        # Older releases open --log-path without creating it.
        os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600))
        return [
            self.binary(),
            "--api-sock", str(api_socket),
            "--id", record.id,
            "--log-path", str(log_path),
            "--level", "Info",
        ]

    def _file(self, record: VmRecord, field_name: str) -> str:
        """A file as Firecracker must name it: its path inside the jail, when jailed."""
        jail = self._jail(record)
        return jail.in_jail_path(field_name) if jail else getattr(record, field_name)

    def _client(self, record: VmRecord) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(uds=str(self.api_socket(record)))
        return httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=10)

    @staticmethod
    async def _call(
        client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
    ) -> None:
        try:
            response = await client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise HypervisorError(f"Firecracker API {method} {path} failed: {exc}") from exc
        if not response.is_success:
            try:
                fault = response.json().get("fault_message", response.text)
            except ValueError:
                fault = response.text
            raise HypervisorError(f"Firecracker refused {method} {path}: {fault}")

    async def boot(self, record: VmRecord) -> None:
        await wait_for_socket(self.api_socket(record), timeout=5)
        boot_source: dict[str, Any] = {
            "kernel_image_path": self._file(record, "kernel_image_path"),
            "boot_args": self.kernel_args(record),
        }
        if record.initrd_path:
            boot_source["initrd_path"] = self._file(record, "initrd_path")
        async with self._client(record) as client:
            await self._call(client, "PUT", "/machine-config", {
                "vcpu_count": record.vcpu_count,
                "mem_size_mib": record.mem_size_mib,
            })
            await self._call(client, "PUT", "/boot-source", boot_source)
            await self._call(client, "PUT", f"/drives/{ROOT_DRIVE_ID}", {
                "drive_id": ROOT_DRIVE_ID,
                "path_on_host": self._file(record, "rootfs_path"),
                "is_root_device": True,
                "is_read_only": False,
            })
            await self._call(client, "PUT", "/actions", {"action_type": "InstanceStart"})

    async def _patch_vm(self, record: VmRecord, state: str) -> None:
        async with self._client(record) as client:
            await self._call(client, "PATCH", "/vm", {"state": state})

    async def pause(self, record: VmRecord) -> None:
        await self._patch_vm(record, "Paused")

    async def resume(self, record: VmRecord) -> None:
        await self._patch_vm(record, "Resumed")

    async def request_shutdown(self, record: VmRecord) -> None:
        async with self._client(record) as client:
            await self._call(client, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})

    def runtime_files(self, record: VmRecord) -> list:
        return [self.api_socket(record)]

    def forget(self, record: VmRecord) -> None:
        if jail := self._jail(record):
            jail.remove()
