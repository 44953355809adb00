"""Own copies of the sample root disk for the VMs made from the form.

Two live VMs may not share a writable root disk (the supervisor refuses it: one guest's writes
would corrupt the other's file system), and accepting the form's defaults twice is what a new
user does. So the form proposes ``~/.glidex/rootfs-<name>.ext4`` and the dashboard copies the
sample there on create; the sample itself is never booted, so it is never copied while a guest
has it mounted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def copy_path(sample: Path, vm_name: str) -> Path:
    """Where the copy for ``vm_name`` goes: beside the sample (``rootfs-web.ext4``)."""
    return sample.with_name(f"{sample.stem}-{vm_name}{sample.suffix}")


def make_copy(sample: Path, destination: Path) -> None:
    """Copy the sample to ``destination`` (0600), never over an existing file; the copy is
    written under a temporary name first, so a failed copy leaves nothing that looks whole."""
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        with open(sample, "rb") as source, open(
                os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600),
                "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
            target.flush()
            os.fsync(target.fileno())
        os.link(partial, destination)  # fails if destination appeared meanwhile
    finally:
        partial.unlink(missing_ok=True)
