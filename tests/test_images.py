"""The sample guest builder, the accel choice and ``glidex images``."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from glidex_core import accel, cli_images, images
from glidex_core.accel import ProbeResult, choose_accel
from glidex_core.images import (
    BANNER,
    RECIPE_VERSION,
    STAMP_NAME,
    ImageBuildError,
    MissingToolError,
    SampleImages,
    build_sample,
)
from tests.guest_images import qemu_command, sample_guest_dir

PROMPT = b"/ # "


# --------------------------------------------------------------------------- accel


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GLIDEX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLIDEX_ACCEL", raising=False)
    return tmp_path / "home"


@pytest.fixture
def no_probe(monkeypatch):
    def refuse(kernel, **kwargs):
        raise AssertionError("must not probe")

    monkeypatch.setattr(accel, "run_probe", refuse)


@pytest.mark.parametrize("value, expected", [("tcg", "tcg"), ("kvm", "kvm"), (" KVM ", "kvm")])
def test_env_accel_wins(home, no_probe, monkeypatch, value, expected):
    monkeypatch.setenv("GLIDEX_ACCEL", value)
    assert choose_accel("tcg" if expected == "kvm" else "kvm", None) == expected


def test_env_accel_bogus_is_a_clear_error(home, no_probe, monkeypatch):
    monkeypatch.setenv("GLIDEX_ACCEL", "bogus")
    with pytest.raises(ValueError, match=r"GLIDEX_ACCEL must be 'kvm' or 'tcg', not 'bogus'"):
        choose_accel(None, None)


def test_config_accel_used_without_env(home, no_probe):
    assert choose_accel("kvm", None) == "kvm"
    assert choose_accel("tcg", None) == "tcg"
    with pytest.raises(ValueError, match="config.toml"):
        choose_accel("hvf", None)


def test_cached_probe_is_used(home, no_probe, monkeypatch):
    accel.write_probe_cache(ProbeResult("tcg", "test"), Path("/k"))
    assert choose_accel(None, None) == "tcg"
    record = tomllib.loads((home / "accel-probe.toml").read_text())
    assert record["accel"] == "tcg" and record["kernel"] == "/k" and record["probed_at"]
    # A cached "kvm" does not outlive access to /dev/kvm.
    accel.write_probe_cache(ProbeResult("kvm", "test"), Path("/k"))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda *a: True)
    assert choose_accel(None, None) == "kvm"
    monkeypatch.setattr(accel, "kvm_device_usable", lambda *a: False)
    assert choose_accel(None, None) == "tcg"


def test_probe_result_cached_only_when_conclusive(home, monkeypatch, tmp_path):
    monkeypatch.setattr(accel, "run_probe", lambda k, **kw: ProbeResult("tcg", "no qemu", False))
    assert choose_accel(None, tmp_path / "k") == "tcg"
    assert not (home / "accel-probe.toml").exists()
    monkeypatch.setattr(accel, "run_probe", lambda k, **kw: ProbeResult("kvm", "ran"))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda *a: True)
    assert choose_accel(None, tmp_path / "k") == "kvm"
    assert accel.read_probe_cache()["accel"] == "kvm"
    assert [p.name for p in home.iterdir()] == ["accel-probe.toml"]  # no temp file left


def test_probe_without_kvm_device_is_tcg(monkeypatch, tmp_path):
    monkeypatch.setattr(accel, "kvm_device_usable", lambda *a: False)
    assert accel.probe_kvm(tmp_path / "vmlinuz") is False


def test_probe_without_kernel_is_inconclusive(monkeypatch, tmp_path):
    monkeypatch.setattr(accel, "kvm_device_usable", lambda *a: True)
    monkeypatch.setattr(accel.shutil, "which", lambda name: "/usr/bin/" + name)
    result = accel.run_probe(tmp_path / "missing")
    assert result.accel == "tcg" and not result.conclusive


# --------------------------------------------------------------------------- builder units


def test_static_elf_check(tmp_path):
    if Path("/bin/busybox").exists():
        assert images.is_static_elf(Path("/bin/busybox")) is images.is_static_elf(
            images.find_static_busybox()
        )
    assert images.is_static_elf(Path("/bin/sh")) is False  # dash/bash: dynamically linked
    (tmp_path / "text").write_text("#!/bin/sh\n")
    with pytest.raises(ImageBuildError, match="not an ELF"):
        images.is_static_elf(tmp_path / "text")


def test_missing_tool_names_the_apt_package(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", lambda *a, **k: None)
    with pytest.raises(MissingToolError, match=r"mkfs.ext4 not found.*apt-get install e2fsprogs"):
        images._which("mkfs.ext4")
    with pytest.raises(MissingToolError, match=r"busybox not found.*busybox-static"):
        images._which("busybox")
    with pytest.raises(MissingToolError, match=r"apt-get not found \(Debian package apt\)"):
        images._which("apt-get")


def test_dynamic_busybox_is_refused(monkeypatch):
    if not Path("/bin/busybox").exists():
        pytest.skip("no /bin/busybox here")
    monkeypatch.setattr(images, "is_static_elf", lambda path: False)
    with pytest.raises(MissingToolError, match=r"dynamically linked.*busybox-static"):
        images.find_static_busybox()


def test_guest_boot_files_have_the_contract():
    script = images.rcs_script(["/lib/modules/x/evdev.ko", "/lib/modules/x/button.ko"])
    for needle in (
        "mount -t devtmpfs devtmpfs /dev",
        "dmesg -n 1",
        "hostname glidex",
        "acpid",
        f'echo "{BANNER}"',
        "/lib/modules/x/evdev.ko /lib/modules/x/button.ko",
    ):
        assert needle in script
    assert "::respawn:/bin/cttyhack /bin/sh -l" in images.INITTAB
    assert "::ctrlaltdel:/sbin/reboot" in images.INITTAB
    assert "poweroff" in images.POWER_BUTTON_HANDLER


def _fake_sample(dest: Path, *, recipe=RECIPE_VERSION, source="debian") -> None:
    dest.mkdir(parents=True, exist_ok=True)
    kernel = "vmlinux.bin" if source == "firecracker-ci" else "vmlinuz"
    (dest / kernel).write_bytes(b"k")
    (dest / "rootfs.ext4").write_bytes(b"r")
    (dest / STAMP_NAME).write_text(
        f'recipe = {recipe}\nsource = "{source}"\nkernel = "{kernel}"\nrootfs = "rootfs.ext4"\n'
        'kernel_package = "linux-image-test"\nkernel_version = "1.0"\n'
    )


def test_existing_build_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_build_offline", lambda *a: pytest.fail("rebuilt"))
    _fake_sample(tmp_path)
    lines: list[str] = []
    result = build_sample(tmp_path, progress=lines.append)
    assert result.built is False and result.kernel == tmp_path / "vmlinuz"
    assert result.kernel_version == "1.0"
    assert "already built" in lines[0]


def test_stale_recipe_or_force_rebuilds(tmp_path, monkeypatch):
    calls = []

    def fake_build(dest, progress):
        calls.append(dest)
        return SampleImages(dest / "vmlinuz", dest / "rootfs.ext4", "debian", "pkg", "2.0")

    monkeypatch.setattr(images, "_build_offline", fake_build)
    _fake_sample(tmp_path, recipe=RECIPE_VERSION - 1)
    build_sample(tmp_path, progress=lambda s: None)
    assert images.read_stamp(tmp_path)["kernel_version"] == "2.0"
    build_sample(tmp_path, progress=lambda s: None)  # now up to date: skipped
    build_sample(tmp_path, progress=lambda s: None, force=True)
    assert len(calls) == 2


def test_firecracker_falls_back_to_offline(tmp_path, monkeypatch):
    tried = []
    monkeypatch.setattr(images, "fetch_firecracker_ci", lambda d, **kw: tried.append(d))
    monkeypatch.setattr(images, "_build_offline", lambda *a: pytest.fail("rebuilt"))
    _fake_sample(tmp_path)
    lines: list[str] = []
    result = build_sample(tmp_path, progress=lines.append, hypervisor="firecracker")
    assert tried == [tmp_path] and result.source == "debian" and not result.built
    assert any("bzImage" in line for line in lines)
    # qemu never tries the network
    build_sample(tmp_path, progress=lines.append, hypervisor="qemu")
    assert len(tried) == 1


def test_fetch_firecracker_ci_unreachable_returns_none(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_which", lambda tool: "/usr/bin/" + tool)

    def unreachable(url, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(images, "_http_get", unreachable)
    lines: list[str] = []
    assert images.fetch_firecracker_ci(tmp_path, progress=lines.append) is None
    assert "unreachable" in lines[-1]


def test_latest_ci_keys_are_picked_by_version():
    prefix = "firecracker-ci/v1.16/x86_64/"
    listing = (
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + "".join(
            f"<Contents><Key>{prefix}{name}</Key></Contents>"
            for name in (
                "vmlinux-5.10.239",
                "vmlinux-6.1.141",
                "vmlinux-6.1.99",
                "vmlinux-6.1.141.config",
                "ubuntu-22.04.squashfs",
                "ubuntu-24.04.squashfs",
                "ubuntu-24.04.id_rsa",
            )
        )
        + "</ListBucketResult>"
    ).encode()
    assert images._latest_key(listing, prefix + r"vmlinux-\d+\.\d+\.\d+") == prefix + (
        "vmlinux-6.1.141"
    )
    assert images._latest_key(listing, prefix + r"ubuntu-\d+\.\d+\.squashfs") == prefix + (
        "ubuntu-24.04.squashfs"
    )


def test_cli_builds_into_home_and_reports_accel(home, monkeypatch, capsys):
    seen = {}

    def fake_build(dest, *, progress, force, hypervisor):
        seen.update(dest=dest, force=force, hypervisor=hypervisor)
        (dest / "vmlinuz").write_bytes(b"k")
        return SampleImages(dest / "vmlinuz", dest / "rootfs.ext4")

    monkeypatch.setattr(cli_images, "build_sample", fake_build)
    monkeypatch.setattr(accel, "run_probe", lambda k, **kw: ProbeResult("tcg", "hangs"))
    assert cli_images.main(["sample", "--force", "--hypervisor", "qemu"]) == 0
    assert seen == {"dest": home, "force": True, "hypervisor": "qemu"}
    out = capsys.readouterr().out
    assert "Acceleration: tcg (hangs)" in out
    assert accel.read_probe_cache()["accel"] == "tcg"


def test_cli_reports_build_errors(home, monkeypatch, capsys):
    def broken(dest, **kw):
        raise MissingToolError("mkfs.ext4")

    monkeypatch.setattr(cli_images, "build_sample", broken)
    assert cli_images.main(["sample", "--hypervisor", "qemu"]) == 1
    assert "apt-get install e2fsprogs" in capsys.readouterr().err


# --------------------------------------------------------------------------- real guest


class Guest:
    """A QEMU TCG guest with its serial console on a pipe and a QMP socket."""

    def __init__(self, kernel: Path, rootfs: Path, workdir: Path):
        self.qmp_path = workdir / "qmp.sock"
        if len(str(self.qmp_path)) > 100:  # AF_UNIX path limit
            short = Path.home() / ".cache" / "glidex-test" / f"qmp-{os.getpid()}.sock"
            short.parent.mkdir(parents=True, exist_ok=True)
            self.qmp_path = short
        self.qmp_path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            qemu_command(kernel, rootfs, qmp_socket=self.qmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = b""

    def read_until(self, needle: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while needle not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.output += chunk
        return needle in self.output

    def type(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def qmp(self, command: str, **arguments) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_path))
            f = sock.makefile("rwb")
            json.loads(f.readline())  # greeting
            for msg in ({"execute": "qmp_capabilities"}, {"execute": command}):
                if msg["execute"] == command and arguments:
                    msg["arguments"] = arguments
                f.write(json.dumps(msg).encode() + b"\n")
                f.flush()
                while True:  # skip events until the reply
                    reply = json.loads(f.readline())
                    if "return" in reply or "error" in reply:
                        break
                assert "return" in reply, reply

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.qmp_path.unlink(missing_ok=True)


def _boot_to_prompt(guest: Guest) -> None:
    assert guest.read_until(BANNER.encode(), 60), guest.output[-2000:].decode(errors="replace")
    assert guest.read_until(PROMPT, 30), guest.output[-2000:].decode(errors="replace")


@pytest.mark.guest
def test_build_sample_boots_and_powers_off(tmp_path):
    dest = tmp_path / "sample"
    lines: list[str] = []
    first = build_sample(dest, progress=lines.append)
    assert first.built and first.source == "debian"
    assert first.kernel == dest / "vmlinuz" and first.rootfs == dest / "rootfs.ext4"
    assert first.kernel.read_bytes()[0x202:0x206] == b"HdrS"  # a bzImage
    assert first.rootfs.stat().st_size == 64 * 1024 * 1024
    stamp = images.read_stamp(dest)
    assert stamp["recipe"] == RECIPE_VERSION
    assert stamp["kernel_package"].startswith("linux-image-") and stamp["kernel_version"]
    assert any("Downloading linux-image-" in line for line in lines)
    leftovers = {p.name for p in dest.iterdir()}
    assert leftovers == {"vmlinuz", "rootfs.ext4", STAMP_NAME, images.LOCK_NAME}

    start = time.monotonic()
    second = build_sample(dest, progress=lines.append)
    assert time.monotonic() - start < 2
    assert not second.built and second.kernel_version == stamp["kernel_version"]

    guest = Guest(first.kernel, first.rootfs, tmp_path)
    try:
        _boot_to_prompt(guest)
        guest.type("echo glidex-$((6*7)) $(hostname)")
        assert guest.read_until(b"glidex-42 glidex", 20)
        # Ctrl-C reaches the shell (it has the console as controlling terminal).
        guest.type("while true; do echo tick; sleep 0.2; done")
        assert guest.read_until(b"tick\r\ntick\r\n", 20)
        guest.output = b""
        guest.proc.stdin.write(b"\x03")
        guest.proc.stdin.flush()
        assert guest.read_until(PROMPT, 20), guest.output[-500:]
        # ACPI power button: QEMU's system_powerdown → button.ko → acpid → poweroff.
        guest.qmp("system_powerdown")
        assert guest.wait_exit(30) == 0, guest.output[-2000:].decode(errors="replace")
    finally:
        guest.close()


@pytest.mark.guest
def test_ctrl_alt_del_ends_the_guest(tmp_path):
    """Firecracker's stop is Ctrl-Alt-Del: PID 1 gets SIGINT and resets; -no-reboot exits."""
    cached = sample_guest_dir()
    rootfs = tmp_path / "rootfs.ext4"
    shutil.copyfile(cached / "rootfs.ext4", rootfs)  # QEMU locks its disk image
    guest = Guest(cached / "vmlinuz", rootfs, tmp_path)
    try:
        _boot_to_prompt(guest)
        keys = [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
        guest.qmp("send-key", keys=keys)
        assert guest.wait_exit(30) == 0, guest.output[-2000:].decode(errors="replace")
    finally:
        guest.close()
