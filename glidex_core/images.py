"""Build (or fetch) the sample guest: a kernel and an ext4 root filesystem.

The offline recipe needs no internet beyond Debian's package mirror and no root-only tricks
(no loop devices, no mount, no mknod):

* kernel: the real package behind the meta package ``linux-image-cloud-amd64`` (its name changes
  with every Debian point release, so it is always resolved through the meta package), fetched
  with ``apt-get download`` and unpacked with ``dpkg -x``. It gives ``boot/vmlinuz-*``, a bzImage
  with the serial console, ext4 and the NVMe driver built in, plus two small modules the guest
  loads itself (``evdev`` and ``button``) so that an ACPI power-button press powers it off.
* userland: the static ``/bin/busybox`` of ``busybox-static``; busybox ``init`` is PID 1 and runs
  the boot script ``/etc/init.d/rcS`` (see :data:`INITTAB`), then a login shell on the console.
* ``rootfs.ext4``: ``mkfs.ext4 -d`` from a staging folder.

The offline kernel is a **bzImage**: QEMU boots it directly with ``-kernel``; real Firecracker
needs an uncompressed ELF ``vmlinux`` with virtio-mmio, which Debian does not ship. With
``hypervisor="firecracker"`` :func:`build_sample` first tries :func:`fetch_firecracker_ci` (the
official Firecracker CI kernel and Ubuntu rootfs) and falls back to the offline build.
"""

from __future__ import annotations

import fcntl
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from glidex_core.store import atomic_write

__all__ = [
    "BANNER",
    "KERNEL_META_PACKAGE",
    "RECIPE_VERSION",
    "STAMP_NAME",
    "ImageBuildError",
    "MissingToolError",
    "SampleImages",
    "build_sample",
    "fetch_firecracker_ci",
    "find_static_busybox",
    "rcs_script",
    "is_static_elf",
    "read_stamp",
    "resolve_kernel_package",
]

# Bump whenever the staging layout or init changes: existing samples are then rebuilt.
RECIPE_VERSION = 2
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
STAMP_NAME = ".sample-guest.toml"
LOCK_NAME = ".sample-guest.lock"
BANNER = "Welcome to the Glidex sample guest"
ROOTFS_SIZE = "64M"
# Modules the guest insmods itself, in this order (neither depends on another module).
GUEST_MODULES = ("kernel/drivers/input/evdev.ko", "kernel/drivers/acpi/button.ko")

FIRECRACKER_CI_BASE = "https://s3.amazonaws.com/spec.ccfc.min"
FIRECRACKER_CI_VERSIONS = ("v1.16", "v1.15", "v1.14")
CONNECT_TIMEOUT = 5.0

Progress = Callable[[str], None]

# tool -> Debian package that provides it
TOOL_PACKAGES = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "mkfs.ext4": "e2fsprogs",
    "busybox": "busybox-static",
    "unsquashfs": "squashfs-tools",
}


class ImageBuildError(RuntimeError):
    """The sample guest could not be built; the message says why and what to do."""


class MissingToolError(ImageBuildError):
    def __init__(self, tool: str, detail: str = ""):
        package = TOOL_PACKAGES.get(tool, tool)
        if package in ("apt", "dpkg"):
            msg = (
                f"{tool} not found (Debian package {package}): the offline sample guest is built "
                "from Debian packages and needs a Debian-based system with apt and dpkg"
            )
        else:
            msg = f"{tool} not found: install it with `apt-get install {package}`"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
        self.tool = tool
        self.package = package


@dataclass(frozen=True)
class SampleImages:
    """Where the sample guest lives, and what it is made of."""

    kernel: Path
    rootfs: Path
    source: str = "debian"  # "debian" (offline recipe) or "firecracker-ci"
    kernel_package: str = ""  # e.g. "linux-image-6.1.0-57-cloud-amd64"
    kernel_version: str = ""  # the package version, e.g. "6.1.192-3"
    built: bool = True  # False when an existing build was reused

    @property
    def kernel_is_bzimage(self) -> bool:
        """True for the offline kernel: QEMU boots it; Firecracker needs an ELF vmlinux."""
        return self.source == "debian"


# --------------------------------------------------------------------------- helpers


def _which(tool: str) -> str:
    """Find a tool on PATH or in the sbin folders that a non-root PATH often lacks."""
    extra = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])
    found = shutil.which(tool) or shutil.which(tool, path=extra)
    if not found:
        raise MissingToolError(tool)
    return found


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 900) -> str:
    """Run a command; on failure raise ImageBuildError with its output."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        out = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise ImageBuildError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {out}")
    return proc.stdout


def is_static_elf(path: Path) -> bool:
    """True when ``path`` is an ELF executable without a PT_INTERP (dynamic loader) header."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise ImageBuildError(f"{path} is not an ELF executable")
        is64 = ident[4] == 2
        endian = "<" if ident[5] == 1 else ">"
        header = f.read(64 - 16 if is64 else 52 - 16)
        if is64:
            phoff = struct.unpack_from(endian + "Q", header, 0x20 - 16)[0]
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x36 - 16)
        else:
            phoff = struct.unpack_from(endian + "I", header, 0x1C - 16)[0]
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x2A - 16)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            raw = f.read(4)
            if len(raw) < 4:
                break
            if struct.unpack(endian + "I", raw)[0] == 3:  # PT_INTERP
                return False
    return True


def find_static_busybox() -> Path:
    """The static busybox from ``busybox-static``; a dynamic one cannot run in the guest."""
    candidates = [Path("/bin/busybox"), Path("/usr/bin/busybox")]
    found = shutil.which("busybox")
    if found:
        candidates.append(Path(found))
    existing = [p for p in candidates if p.is_file()]
    if not existing:
        raise MissingToolError("busybox", "the guest's userland is the static /bin/busybox")
    for path in existing:
        if is_static_elf(path):
            return path
    raise MissingToolError(
        "busybox",
        f"{existing[0]} is dynamically linked and cannot run in the guest without libraries; "
        "busybox-static replaces it with a static build",
    )


def resolve_kernel_package(progress: Progress = print) -> str:
    """The real kernel package behind ``linux-image-cloud-amd64`` (apt-cache depends)."""
    apt_cache = _which("apt-cache")

    def lookup() -> str | None:
        try:
            out = _run([apt_cache, "depends", KERNEL_META_PACKAGE], timeout=60)
        except ImageBuildError:
            return None
        for line in out.splitlines():
            m = re.match(r"\s*\|?Depends:\s*<?(linux-image-[^\s>]+)>?", line)
            if m and m.group(1) != KERNEL_META_PACKAGE:
                return m.group(1)
        return None

    real = lookup()
    if real is None and os.geteuid() == 0:
        progress("Package lists have no linux-image-cloud-amd64; running apt-get update…")
        _run([_which("apt-get"), "update", "-q"], timeout=600)
        real = lookup()
    if real is None:
        hint = "run `apt-get update`" + (" as root (sudo apt-get update)" if os.geteuid() else "")
        raise ImageBuildError(
            f"apt-cache does not know {KERNEL_META_PACKAGE} or its kernel package: {hint} "
            "(needs Debian's main archive in the apt sources)"
        )
    return real


def rcs_script(module_paths: list[str]) -> str:
    """The guest's boot script, /etc/init.d/rcS, run once by busybox init before the shell."""
    modules = " ".join(module_paths)
    return f"""#!/bin/sh
# Glidex sample guest boot script (recipe {RECIPE_VERSION}), run by busybox init (PID 1).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ -e /bin/sh ] || /bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/log
# Keep kernel messages from mixing into the shell prompt.
dmesg -n 1
hostname glidex
# ACPI power button (QEMU's system_powerdown): the button and evdev modules, then acpid runs
# /etc/acpi/PWRF/00000080 on a press.
for m in {modules}; do
    [ -f "$m" ] && insmod "$m" 2>/dev/null
done
acpid -l /run/log/acpid.log -p /run/acpid.pid
echo
echo "{BANNER}"
"""


# busybox init is PID 1. It handles the signals at once, even while the shell runs (a shell-script
# PID 1 runs a trap only after its foreground command ends, and the shell it starts in the
# background ignores SIGINT, so Ctrl-C would not work there). It disables the kernel's hard
# Ctrl-Alt-Del, so Ctrl-Alt-Del (Firecracker's SendCtrlAltDel) reaches it as SIGINT and runs the
# ctrlaltdel entry: a reboot, which ends Firecracker (reboot=k; a guest poweroff does not end it
# on x86) and QEMU run with -no-reboot. SIGUSR2 (busybox `poweroff`, used by the ACPI power
# button) powers off; SIGTERM reboots. The shell is respawned when it exits, in its own session
# with default signal handlers; cttyhack gives it the console (ttyS0) as controlling terminal.
INITTAB = """::sysinit:/etc/init.d/rcS
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
"""

RCK_SCRIPT = """#!/bin/sh
# Run by busybox init before it stops every process and reboots or powers off.
sync
mount -o remount,ro / 2>/dev/null
exit 0
"""

PROFILE = r"""export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
export PS1='\w \$ '
"""

POWER_BUTTON_HANDLER = """#!/bin/sh
# Run by acpid on an ACPI power-button press (QEMU: QMP system_powerdown).
poweroff
"""


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _stage_root(staging: Path, busybox: Path, modules_src: Path | None, krel: str) -> None:
    """Lay out the guest's root file system in ``staging``."""
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "var/log",
        "etc/acpi/PWRF",
    ):
        (staging / d).mkdir(parents=True, exist_ok=True)
    os.chmod(staging / "tmp", 0o1777)
    os.symlink("/run", staging / "var/run")
    shutil.copy2(busybox, staging / "bin/busybox")
    os.chmod(staging / "bin/busybox", 0o755)
    # Applet links, where busybox would install them (/sbin/init is busybox init).
    listing = _run([str(busybox), "--list-full"], timeout=30)
    for rel in listing.split():
        link = staging / rel.lstrip("/")
        if link.exists() or link.is_symlink() or rel.lstrip("/") == "linuxrc":
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    guest_modules: list[str] = []
    if modules_src is not None:
        for rel in GUEST_MODULES:
            src = modules_src / rel
            for candidate, opener in ((src, open), (src.with_name(src.name + ".xz"), lzma.open)):
                if candidate.exists():
                    dst = staging / "lib/modules" / krel / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    with opener(candidate, "rb") as fin, open(dst, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                    guest_modules.append(f"/lib/modules/{krel}/{rel}")
                    break
    if not (staging / "sbin/init").is_symlink():
        os.symlink("/bin/busybox", staging / "sbin/init")
    _write(staging / "etc/inittab", INITTAB)
    _write(staging / "etc/init.d/rcS", rcs_script(guest_modules), 0o755)
    _write(staging / "etc/init.d/rcK", RCK_SCRIPT, 0o755)
    _write(staging / "etc/profile", PROFILE)
    _write(staging / "etc/acpi/PWRF/00000080", POWER_BUTTON_HANDLER, 0o755)
    _write(staging / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    _write(staging / "etc/group", "root:x:0:\n")
    _write(staging / "etc/hostname", "glidex\n")
    _write(staging / "etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tglidex\n")


def _mkfs_ext4(staging: Path, out: Path, size: str = ROOTFS_SIZE) -> None:
    mkfs = _which("mkfs.ext4")
    cmd = [mkfs, "-q", "-L", "glidex-root", "-d", str(staging), "-F", str(out), size]
    if os.geteuid() != 0:
        cmd[1:1] = ["-E", "root_owner=0:0"]
    _run(cmd, timeout=300)


# --------------------------------------------------------------------------- stamp & lock


def read_stamp(dest: Path) -> dict:
    """The build record in ``dest/.sample-guest.toml`` ({} when missing or unreadable)."""
    try:
        return tomllib.loads((dest / STAMP_NAME).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _write_stamp(dest: Path, images: SampleImages) -> None:
    record = {
        "recipe": RECIPE_VERSION,
        "source": images.source,
        "kernel": images.kernel.name,
        "rootfs": images.rootfs.name,
        "kernel_package": images.kernel_package,
        "kernel_version": images.kernel_version,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(dest / STAMP_NAME, tomli_w.dumps(record).encode(), mode=0o644)


def _existing(dest: Path) -> SampleImages | None:
    """The sample already in ``dest``, if its stamp matches this recipe and its files exist."""
    stamp = read_stamp(dest)
    if stamp.get("recipe") != RECIPE_VERSION or not stamp.get("kernel_version"):
        return None
    kernel = dest / str(stamp.get("kernel", ""))
    rootfs = dest / str(stamp.get("rootfs", "rootfs.ext4"))
    if kernel == dest or not kernel.is_file() or not rootfs.is_file():
        return None
    return SampleImages(
        kernel=kernel,
        rootfs=rootfs,
        source=str(stamp.get("source", "debian")),
        kernel_package=str(stamp.get("kernel_package", "")),
        kernel_version=str(stamp.get("kernel_version", "")),
        built=False,
    )


@contextmanager
def _locked(dest: Path):
    """Serialise builds into one folder (other processes wait)."""
    with open(dest / LOCK_NAME, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@contextmanager
def _workdir(dest: Path, prefix: str):
    work = Path(tempfile.mkdtemp(dir=dest, prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- offline build


def _build_offline(dest: Path, progress: Progress) -> SampleImages:
    # Check every tool before downloading anything.
    apt_get = _which("apt-get")
    dpkg = _which("dpkg")
    dpkg_deb = _which("dpkg-deb")
    _which("mkfs.ext4")
    busybox = find_static_busybox()

    progress(f"Resolving the kernel package behind {KERNEL_META_PACKAGE}…")
    package = resolve_kernel_package(progress)
    with _workdir(dest, ".sample-build-") as work:
        progress(f"Downloading {package} from the Debian mirror (about 27 MB)…")
        cmd = [apt_get, "download", "-q"]
        if os.geteuid() == 0:
            # apt's _apt user cannot write to a private home; download as root without a warning.
            cmd += ["-o", "APT::Sandbox::User=root"]
        _run([*cmd, package], cwd=work, timeout=1800)
        debs = sorted(work.glob(f"{package}_*.deb"))
        if not debs:
            raise ImageBuildError(f"apt-get download {package} produced no .deb in {work}")
        deb = debs[-1]
        version = _run([dpkg_deb, "-f", str(deb), "Version"], timeout=60).strip()
        progress(f"Unpacking {deb.name}…")
        unpacked = work / "kernel"
        _run([dpkg, "-x", str(deb), str(unpacked)], timeout=600)
        vmlinuz = sorted((unpacked / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise ImageBuildError(f"{deb.name} holds no boot/vmlinuz-*")
        krel = vmlinuz[-1].name.removeprefix("vmlinuz-")
        modules_src = unpacked / "lib/modules" / krel
        if not modules_src.is_dir():
            modules_src = None
            progress("warning: the kernel package has no modules; no ACPI power button")

        progress(f"Staging the root file system (busybox from {busybox})…")
        staging = work / "root"
        _stage_root(staging, busybox, modules_src, krel)
        progress(f"Creating rootfs.ext4 ({ROOTFS_SIZE}) with mkfs.ext4 -d…")
        rootfs_tmp = dest / ".rootfs.ext4.tmp"
        kernel_tmp = dest / ".vmlinuz.tmp"
        try:
            _mkfs_ext4(staging, rootfs_tmp)
            shutil.copyfile(vmlinuz[-1], kernel_tmp)
            os.replace(kernel_tmp, dest / "vmlinuz")
            os.replace(rootfs_tmp, dest / "rootfs.ext4")
        finally:
            rootfs_tmp.unlink(missing_ok=True)
            kernel_tmp.unlink(missing_ok=True)
    # A Firecracker kernel fetched earlier would now be paired with this rootfs: drop it so
    # paths.default_kernel names the kernel built with it.
    (dest / "vmlinux.bin").unlink(missing_ok=True)
    return SampleImages(
        kernel=dest / "vmlinuz",
        rootfs=dest / "rootfs.ext4",
        source="debian",
        kernel_package=package,
        kernel_version=version,
    )


# --------------------------------------------------------------------------- Firecracker CI


def _http_get(url: str, timeout: float) -> urllib.request.addinfourl:
    return urllib.request.urlopen(url, timeout=timeout)


def _latest_key(listing: bytes, pattern: str) -> str | None:
    keys = []
    for el in ET.fromstring(listing).iter():
        if el.tag.endswith("Key") and el.text and re.fullmatch(pattern, el.text):
            keys.append(el.text)

    def version(key: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", key.rsplit("/", 1)[-1]))

    return max(keys, key=version) if keys else None


def fetch_firecracker_ci(
    dest: Path, *, progress: Progress = print, timeout: float = CONNECT_TIMEOUT
) -> SampleImages | None:
    """Fetch the official Firecracker CI kernel (ELF vmlinux) and Ubuntu rootfs into ``dest``.

    Writes ``dest/vmlinux.bin`` and ``dest/rootfs.ext4`` (the squashfs unpacked with
    ``unsquashfs`` and repacked with ``mkfs.ext4 -d``). Returns None when the bucket cannot be
    reached within ``timeout`` seconds or a tool is missing, so callers fall back to the offline
    build. Run as root for a faithful rootfs (unsquashfs keeps file owners only then).
    """
    dest.mkdir(parents=True, exist_ok=True)
    arch = os.uname().machine
    try:
        unsquashfs = _which("unsquashfs")
        _which("mkfs.ext4")
    except MissingToolError as exc:
        progress(f"Firecracker CI images skipped: {exc}")
        return None
    kernel_key = rootfs_key = None
    try:
        for ci in FIRECRACKER_CI_VERSIONS:
            prefix = f"firecracker-ci/{ci}/{arch}/"
            with _http_get(f"{FIRECRACKER_CI_BASE}/?list-type=2&prefix={prefix}", timeout) as r:
                listing = r.read()
            kernel_key = _latest_key(listing, re.escape(prefix) + r"vmlinux-\d+\.\d+\.\d+")
            rootfs_key = _latest_key(listing, re.escape(prefix) + r"ubuntu-\d+\.\d+\.squashfs")
            if kernel_key and rootfs_key:
                break
    except (OSError, urllib.error.URLError, ET.ParseError) as exc:
        progress(f"Firecracker CI images unreachable ({exc}); using the offline build")
        return None
    if not (kernel_key and rootfs_key):
        progress("Firecracker CI bucket lists no kernel/rootfs pair; using the offline build")
        return None
    try:
        with _workdir(dest, ".fc-ci-") as work:
            for key, name in ((kernel_key, "vmlinux"), (rootfs_key, "rootfs.squashfs")):
                progress(f"Downloading {key}…")
                with (
                    _http_get(f"{FIRECRACKER_CI_BASE}/{key}", timeout) as r,
                    open(work / name, "wb") as out,
                ):
                    shutil.copyfileobj(r, out, 1 << 20)
            progress("Converting the Ubuntu squashfs to ext4…")
            _run([unsquashfs, "-q", "-d", str(work / "root"), str(work / "rootfs.squashfs")])
            rootfs_tmp = dest / ".rootfs.ext4.tmp"
            try:
                _mkfs_ext4(work / "root", rootfs_tmp, "1G")
                os.replace(work / "vmlinux", dest / "vmlinux.bin")
                os.replace(rootfs_tmp, dest / "rootfs.ext4")
            finally:
                rootfs_tmp.unlink(missing_ok=True)
    except (OSError, urllib.error.URLError, ImageBuildError) as exc:
        progress(f"Firecracker CI images failed ({exc}); using the offline build")
        return None
    return SampleImages(
        kernel=dest / "vmlinux.bin",
        rootfs=dest / "rootfs.ext4",
        source="firecracker-ci",
        kernel_package=kernel_key.rsplit("/", 1)[-1],
        kernel_version=kernel_key.rsplit("-", 1)[-1],
    )


# --------------------------------------------------------------------------- entry point


def build_sample(
    dest: Path,
    *,
    progress: Progress = print,
    force: bool = False,
    hypervisor: str = "qemu",
) -> SampleImages:
    """Build the sample guest into ``dest`` (``vmlinuz`` + ``rootfs.ext4``) and return it.

    Work already done is skipped: when both files exist and ``dest/.sample-guest.toml`` records
    this recipe version and the kernel package version, nothing is rebuilt (``force`` rebuilds;
    a newer Debian kernel is picked up only then). With ``hypervisor="firecracker"`` the official
    Firecracker CI images are tried first (5 s connect timeout); the offline kernel is a bzImage
    that QEMU boots but real Firecracker cannot (it needs an ELF vmlinux).
    """
    dest = Path(dest).expanduser().absolute()
    dest.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        existing = None if force else _existing(dest)
        if existing and (hypervisor != "firecracker" or existing.source == "firecracker-ci"):
            progress(
                f"Sample guest already built in {dest} ({existing.source}, "
                f"{existing.kernel_package} {existing.kernel_version}); use --force to rebuild"
            )
            return existing
        if hypervisor == "firecracker":
            progress("Trying the official Firecracker CI kernel and rootfs…")
            fetched = fetch_firecracker_ci(dest, progress=progress)
            if fetched is not None:
                _write_stamp(dest, fetched)
                progress(f"Sample guest ready: {fetched.kernel} + {fetched.rootfs}")
                return fetched
            if existing:
                progress(f"Keeping the offline sample guest in {dest}")
                progress(
                    "note: its kernel is a bzImage; real Firecracker needs an ELF vmlinux "
                    "(QEMU boots it)"
                )
                return existing
        images = _build_offline(dest, progress)
        _write_stamp(dest, images)
        progress(f"Sample guest ready: {images.kernel} + {images.rootfs}")
        if hypervisor == "firecracker":
            progress(
                "note: this kernel is a bzImage that QEMU boots; real Firecracker needs an ELF "
                "vmlinux (fetch the Firecracker CI kernel when online)"
            )
        return images
