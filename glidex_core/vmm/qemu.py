"""QEMU backend: the guest's serial console on stdio, control over a QMP socket.

The rootfs is an emulated NVMe disk: stock distribution kernels have the NVMe driver built in, so
they mount it with no initrd, whereas virtio is usually a module. QEMU splits -drive options on
commas, so a path with a comma could inject options: such paths are refused.
"""

from __future__ import annotations

from pathlib import Path

from glidex_core.accel import choose_accel
from glidex_core.models import ValidationError, VmRecord
from glidex_core.vmm.base import VmmBackend, wait_for_socket
from glidex_core.vmm.qmp import qmp_command

QEMU_BINARY = "qemu-system-x86_64"


class QemuBackend(VmmBackend):
    name = "qemu"
    # A PCI machine: no pci=off. reboot=t + -no-reboot makes a guest reboot end the VMM.
    default_kernel_args = "console=ttyS0 reboot=t panic=-1"
    root_args = "root=/dev/nvme0n1 rw rootwait"

    def check_files(self, record: VmRecord) -> None:
        for field_name in ("kernel_image_path", "rootfs_path", "initrd_path"):
            value = getattr(record, field_name)
            if value and "," in value:
                raise ValidationError(
                    field_name, f"QEMU cannot take a path with a comma: {value}; rename the file"
                )
        super().check_files(record)

    def command(self, record: VmRecord) -> list[str]:
        accel = choose_accel(self.settings.accel, Path(record.kernel_image_path))
        argv = [
            QEMU_BINARY,
            "-name", f"glidex-{record.name}",
            "-machine", f"pc,accel={accel}",
            "-m", str(record.mem_size_mib),
            "-smp", str(record.vcpu_count),
            "-nodefaults", "-display", "none", "-no-reboot",
            # signal=off: Ctrl-C typed at the console goes to the guest, not to QEMU.
            "-chardev", "stdio,id=console,signal=off",
            "-serial", "chardev:console",
            "-qmp", f"unix:{self.paths.qmp_socket(record.id)},server=on,wait=off",
            "-kernel", record.kernel_image_path,
            "-append", f"{self.kernel_args(record)} {self.root_args}",
            "-drive", f"file={record.rootfs_path},format=raw,if=none,id=root",
            "-device", "nvme,drive=root,serial=root",
        ]
        if record.initrd_path:
            argv += ["-initrd", record.initrd_path]
        return argv

    async def boot(self, record: VmRecord) -> None:
        # QEMU boots straight away; reaching QMP proves it got past its own option checks.
        await wait_for_socket(self.paths.qmp_socket(record.id), timeout=10)
        await qmp_command(self.paths.qmp_socket(record.id), "query-status")

    async def pause(self, record: VmRecord) -> None:
        await qmp_command(self.paths.qmp_socket(record.id), "stop")

    async def resume(self, record: VmRecord) -> None:
        await qmp_command(self.paths.qmp_socket(record.id), "cont")

    async def request_shutdown(self, record: VmRecord) -> None:
        await qmp_command(self.paths.qmp_socket(record.id), "system_powerdown")

    def runtime_files(self, record: VmRecord) -> list:
        return [self.paths.qmp_socket(record.id)]
