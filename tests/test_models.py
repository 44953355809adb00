"""The VM model: the transition table and the input rules shared by form, API and CLI."""

from __future__ import annotations

import pytest

from glidex_core.models import (
    InvalidStateError,
    Operation,
    ValidationError,
    VmRecord,
    VmSpec,
    VmState,
    next_state,
)


def spec(**changes) -> VmSpec:
    values = dict(name="web", kernel_image_path="/k", rootfs_path="/r")
    values.update(changes)
    return VmSpec(**values)


@pytest.mark.parametrize(
    ("state", "operation", "expected"),
    [
        (VmState.CREATED, Operation.START, VmState.RUNNING),
        (VmState.CRASHED, Operation.START, VmState.RUNNING),
        (VmState.RUNNING, Operation.PAUSE, VmState.PAUSED),
        (VmState.PAUSED, Operation.RESUME, VmState.RUNNING),
        (VmState.PAUSED, Operation.STOP, VmState.STOPPED),
        (VmState.RUNNING, Operation.DELETE, None),
    ],
)
def test_legal_transitions(state, operation, expected):
    assert next_state(state, operation) == expected


@pytest.mark.parametrize(
    ("state", "operation"),
    [
        (VmState.STOPPED, Operation.PAUSE),
        (VmState.CREATED, Operation.STOP),
        (VmState.RUNNING, Operation.START),
        (VmState.RUNNING, Operation.RESUME),
        (VmState.PAUSED, Operation.PAUSE),
    ],
)
def test_illegal_transition_names_state_and_operation(state, operation):
    with pytest.raises(InvalidStateError) as caught:
        next_state(state, operation)
    assert str(state) in str(caught.value) and str(operation) in str(caught.value)


@pytest.mark.parametrize(
    "name", ["", "A", "../x", "a/b", "-web", "x" * 64, "we\nb", "web ", "é",
             "123e4567-e89b-12d3-a456-426614174000"],
)
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(ValidationError) as caught:
        spec(name=name).validated()
    assert caught.value.field == "name"


@pytest.mark.parametrize("name", ["a", "web-1", "db.prod_2", "9lives", "x" * 63])
def test_good_names(name):
    assert spec(name=name).validated().name == name


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"vcpu_count": 0}, "vcpu_count"),
        ({"vcpu_count": 33}, "vcpu_count"),
        ({"vcpu_count": "2"}, "vcpu_count"),
        ({"vcpu_count": True}, "vcpu_count"),
        ({"mem_size_mib": 8}, "mem_size_mib"),
        ({"mem_size_mib": 2.5}, "mem_size_mib"),
        ({"kernel_args": "a\nb"}, "kernel_args"),
        ({"kernel_args": "x" * 4097}, "kernel_args"),
        ({"rootfs_path": "/a\0b"}, "rootfs_path"),
        ({"kernel_image_path": ""}, "kernel_image_path"),
        ({"hypervisor": "xen"}, "hypervisor"),
    ],
)
def test_bad_values_name_their_field(changes, field):
    errors = spec(**changes).field_errors()
    assert list(errors) == [field]
    with pytest.raises(ValidationError) as caught:
        spec(**changes).validated()
    assert caught.value.field == field


def test_record_round_trips_through_a_dict():
    record = VmRecord.from_spec(spec(kernel_args="console=ttyS0"), "qemu")
    record.state = VmState.CRASHED
    record.reason = "VMM killed by SIGKILL"
    again = VmRecord.from_dict(record.to_dict())
    assert again == record
    assert "exit_code" not in record.to_dict()  # TOML has no null
