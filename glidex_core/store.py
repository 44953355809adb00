"""One TOML record per VM under ``vms/<id>/vm.toml``, replaced atomically.

A crash at any moment leaves either the old record or the new one, never a torn file: we write a
temporary file in the same folder, fsync it, rename it over the record, then fsync the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import tomli_w

from glidex_core.config import Paths, make_private_dir
from glidex_core.models import VmRecord


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    os.fchmod(fd, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class RecordStore:
    """Reads and writes VM records; knows nothing about states or processes."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def save(self, record: VmRecord) -> None:
        make_private_dir(self.paths.vm_dir(record.id))
        atomic_write(self.paths.record_file(record.id), tomli_w.dumps(record.to_dict()).encode())

    def load(self, vm_id: str) -> VmRecord:
        with open(self.paths.record_file(vm_id), "rb") as f:
            return VmRecord.from_dict(tomllib.load(f))

    def load_all(self) -> Iterator[VmRecord]:
        """Every readable record; unreadable ones are skipped (and reported by the caller)."""
        if not self.paths.vms_dir.is_dir():
            return
        for entry in sorted(self.paths.vms_dir.iterdir()):
            if (entry / "vm.toml").is_file():
                try:
                    yield self.load(entry.name)
                except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError):
                    continue

    def delete(self, vm_id: str) -> None:
        shutil.rmtree(self.paths.vm_dir(vm_id), ignore_errors=True)
