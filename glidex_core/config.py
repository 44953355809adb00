"""Where Glidex keeps its files, and the user's settings from config.toml.

Everything lives under GLIDEX_HOME (default ``~/.glidex``); nothing goes to /tmp. Unix socket
paths are limited to 107 bytes, so the runtime directory falls back to a short per-home folder
under $XDG_RUNTIME_DIR (or ~/.cache) when GLIDEX_HOME is deep.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import tomli_w

HYPERVISORS = ("firecracker", "qemu")
# The longest socket file name we create inside the runtime dir: "<12 hex>.console.sock".
_LONGEST_SOCKET_NAME = 12 + len(".console.sock")
_SUN_PATH_MAX = 107


def glidex_home() -> Path:
    """The Glidex home folder, from GLIDEX_HOME or ~/.glidex."""
    env = os.environ.get("GLIDEX_HOME")
    return Path(env).expanduser().absolute() if env else Path.home() / ".glidex"


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, refusing a symlink at the leaf."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.is_symlink():
        raise PermissionError(f"refusing to use {path}: it is a symbolic link")
    os.chmod(path, 0o700)
    return path


@dataclass
class Settings:
    """User settings from ``config.toml``. Unknown keys are kept so a save never loses them."""

    default_hypervisor: str | None = None
    accel: str | None = None  # "kvm" | "tcg"; GLIDEX_ACCEL wins over this
    stop_timeout: float = 10.0
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    theme: str | None = None
    log_max_bytes: int = 64 << 20  # console.log rotates at this size
    log_keep: int = 2  # rotated console logs kept (console.log.1, .2)
    allow_overcommit: bool = False  # allow VM memory above the host's
    spare_keeper: bool = True  # keep one console keeper started ahead of need (faster starts)
    image_roots: list[str] = field(default_factory=list)  # if set, the only dirs for images
    use_jailer: bool = False  # start Firecracker through its jailer
    jailer_uid: int | None = None  # default: the current user
    jailer_gid: int | None = None
    jailer_chroot_base: str = "/srv/jailer"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Paths:
    """Every file location Glidex uses, derived from one home folder."""

    home: Path

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def vms_dir(self) -> Path:
        return self.home / "vms"

    def vm_dir(self, vm_id: str) -> Path:
        return self.vms_dir / vm_id

    def record_file(self, vm_id: str) -> Path:
        return self.vm_dir(vm_id) / "vm.toml"

    def console_log(self, vm_id: str) -> Path:
        return self.vm_dir(vm_id) / "console.log"

    def exit_file(self, vm_id: str) -> Path:
        return self.vm_dir(vm_id) / "exit.json"

    def vmm_log(self, vm_id: str) -> Path:
        """The VMM's own log (Firecracker --log-path) and stderr, kept out of the console."""
        return self.vm_dir(vm_id) / "vmm.log"

    @property
    def run_dir(self) -> Path:
        direct = self.home / "run"
        if len(str(direct)) + 1 + _LONGEST_SOCKET_NAME <= _SUN_PATH_MAX:
            return direct
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
        return Path(base) / f"glidex-{digest}"

    def _run_file(self, vm_id: str, suffix: str) -> Path:
        return self.run_dir / f"{short_id(vm_id)}.{suffix}"

    def console_socket(self, vm_id: str) -> Path:
        return self._run_file(vm_id, "console.sock")

    def api_socket(self, vm_id: str) -> Path:
        return self._run_file(vm_id, "api.sock")

    def qmp_socket(self, vm_id: str) -> Path:
        return self._run_file(vm_id, "qmp.sock")

    def keeper_pid_file(self, vm_id: str) -> Path:
        return self._run_file(vm_id, "keeper.pid")

    @property
    def supervisor_lock(self) -> Path:
        return self.run_dir / "supervisor.lock"

    @property
    def default_kernel(self) -> Path:
        """The sample kernel: a Firecracker vmlinux if one was fetched, else the offline build."""
        fc_kernel = self.home / "vmlinux.bin"
        return fc_kernel if fc_kernel.exists() else self.home / "vmlinuz"

    @property
    def default_rootfs(self) -> Path:
        return self.home / "rootfs.ext4"

    def ensure(self) -> None:
        make_private_dir(self.home)
        make_private_dir(self.vms_dir)
        make_private_dir(self.run_dir)


def short_id(vm_id: str) -> str:
    """The first 12 hex digits of a VM id: short enough for socket paths, unique per home."""
    return vm_id.replace("-", "")[:12]


def load_settings(paths: Paths) -> Settings:
    """Read config.toml; a missing file means defaults, a broken one is a clear error."""
    try:
        data = tomllib.loads(paths.config_file.read_text())
    except FileNotFoundError:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(
            f"{paths.config_file} is not valid TOML ({exc}); fix or remove it"
        ) from exc
    known = {f.name for f in fields(Settings)} - {"extra"}
    settings = Settings(**{k: v for k, v in data.items() if k in known})
    settings.extra = {k: v for k, v in data.items() if k not in known}
    if not isinstance(settings.log_keep, int) or settings.log_keep < 1:
        raise ValueError(f"{paths.config_file}: log_keep must be a whole number of at least 1")
    if not isinstance(settings.log_max_bytes, int) or settings.log_max_bytes < 4096:
        raise ValueError(f"{paths.config_file}: log_max_bytes must be at least 4096")
    if settings.default_hypervisor not in (None, *HYPERVISORS):
        raise ValueError(
            f"{paths.config_file}: default_hypervisor must be one of {', '.join(HYPERVISORS)}"
        )
    return settings


def save_settings(paths: Paths, settings: Settings) -> None:
    from glidex_core.store import atomic_write

    data = {k: v for k, v in vars(settings).items() if k != "extra" and v is not None}
    data.update(settings.extra)
    atomic_write(paths.config_file, tomli_w.dumps(data).encode())


def default_hypervisor(settings: Settings) -> str:
    """Firecracker when its binary is on PATH, else QEMU, unless config.toml says otherwise."""
    if settings.default_hypervisor:
        return settings.default_hypervisor
    return "firecracker" if shutil.which("firecracker") else "qemu"
