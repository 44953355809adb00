"""The console log: every byte, appended, rotated by size, never blocking the console on errors.

Rotation happens between writes, never inside one, so no byte is lost or split at a boundary:
``console.log`` becomes ``console.log.1``, which becomes ``console.log.2``, and so on up to
``keep`` old files. When the disk is full the write fails, the console goes on (clients still get
every byte live) and the problem is reported once, not once per chunk.

Stdlib only: the console keeper uses it.
"""

from __future__ import annotations

import os
import sys

DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_KEEP = 2


def rotated_name(path: str, index: int) -> str:
    return path if index == 0 else f"{path}.{index}"


class RotatingLog:
    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES,
                 keep: int = DEFAULT_KEEP) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.error: str | None = None  # the first write error, reported once
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                self._report(exc)
                return
            self._size += written
            view = view[written:]
        if self.max_bytes and self._size >= self.max_bytes:
            self._rotate()

    def _report(self, exc: OSError) -> None:
        if self.error is None:
            self.error = f"console log write failed: {exc.strerror or exc}"
            try:  # stderr may be a file on the same full disk: the report must not kill us
                print(f"glidex keeper: {self.error}", file=sys.stderr, flush=True)
            except OSError:
                pass

    def _rotate(self) -> None:
        try:
            for index in range(self.keep, 0, -1):
                source = rotated_name(self.path, index - 1)
                if os.path.exists(source):
                    os.replace(source, rotated_name(self.path, index))
            fd = self._open()
        except OSError as exc:
            self._report(exc)
            return
        os.close(self._fd)
        self._fd = fd
        self._size = 0

    def close(self) -> None:
        os.close(self._fd)
