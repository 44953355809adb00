"""Host-side limits on what a client may ask for: where image files may live, how much memory.

With ``image_roots`` set in config.toml, an API client cannot attach an arbitrary host file or
block device as a drive: every image path must resolve (symlinks followed) inside one of the
roots. It is checked at create and again at start, since a symlink can change in between.
"""

from __future__ import annotations

import os

import psutil

from glidex_core.config import Settings
from glidex_core.models import ValidationError

IMAGE_FIELDS = ("kernel_image_path", "rootfs_path", "initrd_path")
UNLIMITED_MEM_MIB = 1 << 20


def max_mem_mib(settings: Settings) -> int:
    if settings.allow_overcommit:
        return UNLIMITED_MEM_MIB
    return psutil.virtual_memory().total >> 20


def check_image_roots(item: object, settings: Settings) -> None:
    """Refuse image paths outside ``settings.image_roots`` (when any are configured)."""
    if not settings.image_roots:
        return
    roots = [os.path.realpath(root) for root in settings.image_roots]
    for field_name in IMAGE_FIELDS:
        value = getattr(item, field_name, None)
        if not value:
            continue
        resolved = os.path.realpath(value)
        if not any(os.path.commonpath([resolved, root]) == root for root in roots):
            raise ValidationError(
                field_name,
                f"{value} is outside the allowed image directories ({', '.join(roots)}); "
                "move the file there or add its directory to image_roots in config.toml",
            )
