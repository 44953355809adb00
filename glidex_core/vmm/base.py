"""The one small interface every VMM backend implements.

The console keeper runs ``command()``; once it reports the VMM started, the supervisor calls
``boot()`` to configure and start the guest, and later ``pause``/``resume``/``request_shutdown``.
Forced stops are signals sent by the supervisor and need nothing from the backend.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path

from glidex_core.config import Paths, Settings
from glidex_core.models import HypervisorError, ValidationError, VmRecord


class VmmBackend(ABC):
    name: str
    default_kernel_args: str

    def __init__(self, paths: Paths, settings: Settings) -> None:
        self.paths = paths
        self.settings = settings

    def kernel_args(self, record: VmRecord) -> str:
        return record.kernel_args or self.default_kernel_args

    def check_files(self, record: VmRecord) -> None:
        """Refuse to start with a file that is not there, naming the field and the path."""
        for field_name in ("kernel_image_path", "rootfs_path", "initrd_path"):
            value = getattr(record, field_name)
            if value and not Path(value).is_file():
                raise ValidationError(field_name, f"file not found: {value}")

    @abstractmethod
    def command(self, record: VmRecord) -> list[str]:
        """The VMM's argv: a list, never a shell string."""

    @abstractmethod
    async def boot(self, record: VmRecord) -> None:
        """Configure and start the guest once the VMM process runs."""

    @abstractmethod
    async def pause(self, record: VmRecord) -> None: ...

    @abstractmethod
    async def resume(self, record: VmRecord) -> None: ...

    @abstractmethod
    async def request_shutdown(self, record: VmRecord) -> None:
        """Ask the guest to power off; the caller waits and forces after a timeout."""

    def runtime_files(self, record: VmRecord) -> list[Path]:
        """Sockets this backend creates, removed by the supervisor when the VM ends."""
        return []

    def forget(self, record: VmRecord) -> None:  # noqa: B027 - most backends keep nothing
        """Remove what this backend keeps for a VM beyond its runtime files (on delete)."""


async def wait_for_socket(path: Path, timeout: float) -> None:
    """Wait until the VMM accepts connections on ``path``.

    The file appearing is not enough: a VMM binds before it listens, and a connection in
    between is refused. The supervisor races this against the VMM exiting.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.002
    while True:
        try:
            _, writer = await asyncio.open_unix_connection(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            if loop.time() > deadline:
                raise HypervisorError(
                    f"the VMM did not open {path.name} within {timeout:.0f} s") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        else:
            writer.close()
            return
