"""Request and response shapes. Strict: a string is not a number and unknown fields are errors,
so a typo in a script fails loudly instead of being silently ignored."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from glidex_core.config import Paths, short_id
from glidex_core.models import (
    DEFAULT_MEM_MIB,
    DEFAULT_VCPUS,
    MAX_KERNEL_ARGS,
    MAX_VCPUS,
    MIN_MEM_MIB,
    NAME_RULE,
    VmRecord,
    VmSpec,
)

PATH_PATTERN = r"^[^\x00\n]+$"


class CreateVmRequest(BaseModel):
    """The original create body. The schema documents the rules; the model's validation
    (glidex_core.models) has the last word, with messages naming the field."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(description=NAME_RULE, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    vcpu_count: StrictInt = Field(DEFAULT_VCPUS, ge=1, le=MAX_VCPUS)
    mem_size_mib: StrictInt = Field(DEFAULT_MEM_MIB, ge=MIN_MEM_MIB,
                                    description="at most the host's memory, unless overcommit "
                                    "is allowed in config.toml")
    kernel_image_path: StrictStr = Field(pattern=PATH_PATTERN)
    rootfs_path: StrictStr = Field(pattern=PATH_PATTERN)
    kernel_args: StrictStr | None = Field(None, max_length=MAX_KERNEL_ARGS,
                                          pattern=r"^[^\x00\r\n]*$")
    hypervisor: Literal["firecracker", "qemu"] | None = None
    initrd_path: StrictStr | None = Field(None, pattern=PATH_PATTERN)

    def to_spec(self) -> VmSpec:
        return VmSpec(**self.model_dump())


class VmResponse(BaseModel):
    id: str
    name: str
    state: str
    reason: str | None
    vcpu_count: int
    mem_size_mib: int
    kernel_image_path: str
    rootfs_path: str
    kernel_args: str | None
    initrd_path: str | None
    hypervisor: str
    console_socket_path: str
    log_path: str
    created_at: str
    updated_at: str
    started_at: str | None
    stopped_at: str | None
    uptime_seconds: float | None
    exit_code: int | None
    exit_signal: int | None
    pid: int | None

    @classmethod
    def of(cls, record: VmRecord, paths: Paths) -> VmResponse:
        return cls(**vm_dict(record, str(paths.run_dir), str(paths.vms_dir)))


def vm_dict(record: VmRecord, run_dir: str, vms_dir: str) -> dict:
    """A VM as the API shows it, as plain data: ``GET /vms`` builds a thousand of these per
    request, so no model and no pathlib per record (the folders are computed once)."""
    return {
        "id": record.id, "name": record.name, "state": str(record.state),
        "reason": record.reason, "vcpu_count": record.vcpu_count,
        "mem_size_mib": record.mem_size_mib, "kernel_image_path": record.kernel_image_path,
        "rootfs_path": record.rootfs_path, "kernel_args": record.kernel_args,
        "initrd_path": record.initrd_path, "hypervisor": record.hypervisor,
        "console_socket_path": f"{run_dir}/{short_id(record.id)}.console.sock",
        "log_path": f"{vms_dir}/{record.id}/console.log",
        "created_at": iso(record.created_at), "updated_at": iso(record.updated_at),
        "started_at": iso(record.started_at), "stopped_at": iso(record.stopped_at),
        "uptime_seconds": record.uptime, "exit_code": record.exit_code,
        "exit_signal": record.exit_signal, "pid": record.vmm_pid,
    }


class ConsoleResponse(BaseModel):
    vm_id: str
    console_socket_path: str
    log_path: str
    available: bool
    clients: int
    log_error: str | None = None


class HealthResponse(BaseModel):
    status: str
    version: str
    uptime_seconds: float
    vms: dict[str, int]


class ErrorResponse(BaseModel):
    error: str
    message: str


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _iso(timestamp)


@functools.lru_cache(maxsize=16384)
def _iso(timestamp: float) -> str:
    """Cached: a record's timestamps rarely change, and ``GET /vms`` formats four per VM
    (a third of its time with 1000 VMs)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()
