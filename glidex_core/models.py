"""The VM model: the create request, the stored record, states and the one transition table.

Validation lives here so that the dashboard form, the API and gxctl all refuse the same input
with the same message.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from glidex_core.config import HYPERVISORS


class VmState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"  # could not be started (bad config, VMM refused)
    CRASHED = "crashed"  # was running and ended without being asked to


class Operation(StrEnum):
    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"


# The one transition table: which operation is legal in which state, and where it leads.
# stop and delete of a VM that is not running are allowed and land in stopped / gone.
_DOWN = (VmState.CREATED, VmState.STOPPED, VmState.FAILED, VmState.CRASHED)
TRANSITIONS: dict[tuple[VmState, Operation], VmState | None] = {
    **{(s, Operation.START): VmState.RUNNING for s in _DOWN},
    (VmState.RUNNING, Operation.STOP): VmState.STOPPED,
    (VmState.PAUSED, Operation.STOP): VmState.STOPPED,
    (VmState.RUNNING, Operation.PAUSE): VmState.PAUSED,
    (VmState.PAUSED, Operation.RESUME): VmState.RUNNING,
    **{(s, Operation.DELETE): None for s in VmState},
}


class GlidexError(Exception):
    """Base of every error Glidex reports to a user; ``code`` is the API's error code."""

    code = "error"


class ValidationError(GlidexError, ValueError):
    code = "validation_error"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class NotFoundError(GlidexError, LookupError):
    code = "not_found"

    def __init__(self, ref: str) -> None:
        super().__init__(f"VM not found: {ref}")


class ConflictError(GlidexError):
    code = "conflict"


class InvalidStateError(GlidexError):
    code = "invalid_state"

    def __init__(self, state: VmState, operation: Operation) -> None:
        super().__init__(f"cannot {operation} a VM that is {state}")
        self.state = state
        self.operation = operation


class HypervisorError(GlidexError):
    """The VMM refused or failed; the message is the VMM's own words where it gave any."""

    code = "hypervisor_error"


def next_state(state: VmState, operation: Operation) -> VmState | None:
    """Where ``operation`` leads from ``state``; raises InvalidStateError where it is illegal."""
    key = (state, operation)
    if key not in TRANSITIONS:
        raise InvalidStateError(state, operation)
    return TRANSITIONS[key]


NAME_RULE = "1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_UUID_RE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
MAX_VCPUS = 32  # Firecracker's limit
MIN_MEM_MIB = 16
MAX_KERNEL_ARGS = 4096
DEFAULT_VCPUS = 1
DEFAULT_MEM_MIB = 512


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValidationError("name", f"{name!r} is not a valid name; use {NAME_RULE}")
    if _UUID_RE.fullmatch(name):
        raise ValidationError("name", f"{name!r} looks like a VM id; choose another name")
    return name


def _validate_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field_name, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(field_name, f"must be between {low} and {high}, got {value}")
    return value


def _validate_path(field_name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None or value == "":
        if optional:
            return None
        raise ValidationError(field_name, "is required")
    if not isinstance(value, str):
        raise ValidationError(field_name, f"must be a path, got {value!r}")
    if "\0" in value or "\n" in value:
        raise ValidationError(field_name, "must not contain NUL or newline characters")
    return value


def validate_kernel_args(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("kernel_args", f"must be a string, got {value!r}")
    if "\0" in value or "\n" in value or "\r" in value:
        raise ValidationError("kernel_args", "must not contain NUL or line breaks")
    if len(value.encode()) > MAX_KERNEL_ARGS:
        raise ValidationError("kernel_args", f"must be at most {MAX_KERNEL_ARGS} bytes")
    return value or None


@dataclass
class VmSpec:
    """What a user asks for when creating a VM (the original Glidex create body, plus extras)."""

    name: str
    kernel_image_path: str
    rootfs_path: str
    vcpu_count: int = DEFAULT_VCPUS
    mem_size_mib: int = DEFAULT_MEM_MIB
    kernel_args: str | None = None
    hypervisor: str | None = None
    initrd_path: str | None = None

    def field_errors(self, max_mem_mib: int = 1 << 20) -> dict[str, str]:
        """Every field's problem at once (a form shows them all), keyed by field name."""
        checks = {
            "name": lambda: validate_name(self.name),
            "vcpu_count": lambda: _validate_int("vcpu_count", self.vcpu_count, 1, MAX_VCPUS),
            "mem_size_mib": lambda: _validate_int(
                "mem_size_mib", self.mem_size_mib, MIN_MEM_MIB, max_mem_mib
            ),
            "kernel_image_path": lambda: _validate_path("kernel_image_path",
                                                        self.kernel_image_path),
            "rootfs_path": lambda: _validate_path("rootfs_path", self.rootfs_path),
            "initrd_path": lambda: _validate_path("initrd_path", self.initrd_path, optional=True),
            "kernel_args": lambda: validate_kernel_args(self.kernel_args),
            "hypervisor": self._check_hypervisor,
        }
        errors = {}
        for name, check in checks.items():
            try:
                check()
            except ValidationError as exc:
                errors[name] = exc.message
        return errors

    def _check_hypervisor(self) -> None:
        if self.hypervisor is not None and self.hypervisor not in HYPERVISORS:
            raise ValidationError(
                "hypervisor", f"must be one of {', '.join(HYPERVISORS)}, got {self.hypervisor!r}"
            )

    def validated(self, max_mem_mib: int = 1 << 20) -> VmSpec:
        """Return self after checking every field; raises ValidationError naming the field."""
        errors = self.field_errors(max_mem_mib)
        if errors:
            field_name, message = next(iter(errors.items()))
            raise ValidationError(field_name, message)
        self.kernel_args = self.kernel_args or None
        return self


@dataclass
class VmRecord:
    """One VM as stored in ``vms/<id>/vm.toml``."""

    id: str
    name: str
    vcpu_count: int
    mem_size_mib: int
    kernel_image_path: str
    rootfs_path: str
    hypervisor: str
    kernel_args: str | None = None
    initrd_path: str | None = None
    state: VmState = VmState.CREATED
    reason: str | None = None  # why it is failed/crashed/stopped, in words
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    stopped_at: float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    vmm_pid: int | None = None
    keeper_pid: int | None = None

    @classmethod
    def from_spec(cls, spec: VmSpec, hypervisor: str) -> VmRecord:
        return cls(
            id=str(uuid.uuid4()),
            name=spec.name,
            vcpu_count=spec.vcpu_count,
            mem_size_mib=spec.mem_size_mib,
            kernel_image_path=spec.kernel_image_path,
            rootfs_path=spec.rootfs_path,
            hypervisor=hypervisor,
            kernel_args=spec.kernel_args,
            initrd_path=spec.initrd_path,
        )

    def to_dict(self) -> dict:
        """A TOML-ready dict (TOML has no null, so None fields are left out)."""
        return {k: (str(v) if isinstance(v, VmState) else v)
                for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> VmRecord:
        known = set(cls.__dataclass_fields__)
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.state = VmState(record.state)
        return record

    @property
    def is_live(self) -> bool:
        return self.state in (VmState.RUNNING, VmState.PAUSED)

    @property
    def uptime(self) -> float | None:
        return time.time() - self.started_at if self.is_live and self.started_at else None
