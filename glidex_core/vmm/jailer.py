"""Starting Firecracker through its jailer (production isolation: chroot, uid/gid, namespaces).

The jailer chroots Firecracker into ``<chroot_base>/firecracker/<id>/root``, so every file the
API names must be inside that folder and be named by its path *inside* the jail. We hard-link the
images in (copying only across file systems), hand them to the jail's uid/gid, and remove the
whole jail folder when the VM is deleted — the jailer itself never cleans up.

Only exercised here against a jailer TEST STAND-IN (tests/standins/jailer_standin.py) that checks
the arguments and the jail's contents: no jailer binary exists on the development machines.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from glidex_core.config import Settings
from glidex_core.models import HypervisorError, VmRecord

JAIL_API_SOCKET = "/run/firecracker.socket"
JAIL_LOG = "/firecracker.log"
SUN_PATH_MAX = 107
JAILED_FILES = {"kernel_image_path": "vmlinux", "rootfs_path": "rootfs.ext4",
                "initrd_path": "initrd.img"}


@dataclass(frozen=True)
class Jail:
    base: Path
    vm_id: str
    uid: int
    gid: int

    @classmethod
    def for_vm(cls, settings: Settings, vm_id: str) -> Jail:
        return cls(Path(settings.jailer_chroot_base), vm_id,
                   os.getuid() if settings.jailer_uid is None else settings.jailer_uid,
                   os.getgid() if settings.jailer_gid is None else settings.jailer_gid)

    @property
    def folder(self) -> Path:
        return self.base / "firecracker" / self.vm_id

    @property
    def root(self) -> Path:
        return self.folder / "root"

    def host_path(self, in_jail: str) -> Path:
        return self.root / in_jail.lstrip("/")

    def in_jail_path(self, field_name: str) -> str:
        return "/" + JAILED_FILES[field_name]

    def prepare(self, record: VmRecord) -> None:
        """A fresh jail holding the VM's images (linked), owned by the jail's uid/gid."""
        socket_path = str(self.host_path(JAIL_API_SOCKET))
        if len(socket_path.encode()) > SUN_PATH_MAX:
            raise HypervisorError(
                f"the jail's API socket path {socket_path} is longer than the {SUN_PATH_MAX} "
                "bytes a Unix socket allows; set a shorter jailer_chroot_base in config.toml"
            )
        self.remove()
        (self.root / "run").mkdir(parents=True, mode=0o750)
        for field_name, name in JAILED_FILES.items():
            source = getattr(record, field_name)
            if source:
                target = self.root / name
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)  # another file system: copy instead
                os.chown(target, self.uid, self.gid)
        log = self.host_path(JAIL_LOG)
        log.touch(mode=0o600)
        for path in (log, self.root, self.root / "run"):
            os.chown(path, self.uid, self.gid)

    def remove(self) -> None:
        if self.folder.is_symlink():
            raise HypervisorError(f"refusing to remove {self.folder}: it is a symbolic link")
        shutil.rmtree(self.folder, ignore_errors=True)

    def command(self, jailer: str, firecracker: str, vm_id: str) -> list[str]:
        return [
            jailer, "--id", vm_id, "--exec-file", firecracker,
            "--uid", str(self.uid), "--gid", str(self.gid),
            "--chroot-base-dir", str(self.base),
            "--",
            "--api-sock", JAIL_API_SOCKET, "--log-path", JAIL_LOG, "--level", "Info",
        ]
