"""``glidex images ...``: build the sample guest into the Glidex home and probe acceleration.

Runnable on its own as ``python -m glidex_core.cli_images sample`` (install.sh does this).
"""

from __future__ import annotations

import argparse
import os
import sys

from glidex_core import accel
from glidex_core.config import (
    HYPERVISORS,
    Paths,
    default_hypervisor,
    glidex_home,
    load_settings,
    make_private_dir,
)
from glidex_core.images import ImageBuildError, build_sample


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glidex images", description="Manage Glidex guest images."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sample = sub.add_parser(
        "sample",
        help="build the offline sample guest (kernel + rootfs.ext4) into the Glidex home",
        description="Build the sample guest into GLIDEX_HOME (default ~/.glidex): a Debian "
        "cloud kernel and a busybox rootfs.ext4. With --hypervisor firecracker the official "
        "Firecracker CI images are tried first.",
    )
    sample.add_argument("--force", action="store_true", help="rebuild even if already built")
    sample.add_argument(
        "--hypervisor",
        choices=HYPERVISORS,
        help="the hypervisor the sample is for (default: from config.toml, else firecracker "
        "when its binary is on PATH, else qemu)",
    )
    return parser


def _progress(line: str) -> None:
    print(f"  {line}", flush=True)


def _report_accel(kernel, *, reprobe: bool) -> None:
    env = os.environ.get("GLIDEX_ACCEL", "").strip()
    cached = None if reprobe else accel.read_probe_cache()
    if cached is not None:
        print(
            f"Acceleration: {cached['accel']} (cached probe from {cached.get('probed_at')}: "
            f"{cached.get('reason', '')})"
        )
    else:
        print("Probing KVM (booting the sample kernel under accel=kvm)…", flush=True)
        result = accel.run_probe(kernel)
        if result.conclusive:
            accel.write_probe_cache(result, kernel)
        print(f"Acceleration: {result.accel} ({result.reason})")
    if env:
        print(f"  note: GLIDEX_ACCEL={env} overrides the probe for QEMU guests")


def _sample(args: argparse.Namespace) -> int:
    paths = Paths(glidex_home())
    make_private_dir(paths.home)
    hypervisor = args.hypervisor
    if hypervisor is None:
        try:
            hypervisor = default_hypervisor(load_settings(paths))
        except ValueError as exc:
            print(f"warning: {exc}; assuming qemu", file=sys.stderr)
            hypervisor = "qemu"
    print(f"Building the sample guest for {hypervisor} in {paths.home}", flush=True)
    try:
        images = build_sample(
            paths.home, progress=_progress, force=args.force, hypervisor=hypervisor
        )
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Kernel: {images.kernel}")
    print(f"Rootfs: {images.rootfs}")
    # The probe needs a kernel QEMU boots: the offline bzImage when there is one.
    probe_kernel = paths.home / "vmlinuz"
    if not probe_kernel.is_file():
        probe_kernel = images.kernel
    _report_accel(probe_kernel, reprobe=images.built or args.force)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sample":
        return _sample(args)
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
