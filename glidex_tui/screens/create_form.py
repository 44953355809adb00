"""The create-VM form: the original gxctl fields and defaults, validated as you type with the
same rules the API uses (glidex_core.models), so a value refused here is refused everywhere."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from glidex_core.config import HYPERVISORS
from glidex_core.models import (
    DEFAULT_MEM_MIB,
    DEFAULT_VCPUS,
    ValidationError,
    VmSpec,
    validate_name,
)
from glidex_tui.disk_copies import copy_path


@dataclass
class FormDefaults:
    name: str
    kernel_image_path: str
    rootfs_path: str
    hypervisor: str
    max_mem_mib: int
    taken_names: frozenset[str] = frozenset()
    # The sample rootfs, when this dashboard can copy it: the form then proposes a copy of it
    # per VM (see disk_copies.py), following the name typed until the rootfs field is edited.
    copy_sample_rootfs: Path | None = None


TEXT_FIELDS = (
    ("name", "Name"),
    ("vcpu_count", "vCPUs"),
    ("mem_size_mib", "Memory (MiB)"),
    ("kernel_image_path", "Kernel image"),
    ("rootfs_path", "Root filesystem"),
    ("kernel_args", "Kernel args (optional; empty = the hypervisor's defaults)"),
)
INT_FIELDS = {"vcpu_count", "mem_size_mib"}


def _valid_name(name: str) -> bool:
    """Only a valid name names a disk copy ("a/b" would not even be a file name)."""
    try:
        validate_name(name)
    except ValidationError:
        return False
    return True


class CreateVmScreen(ModalScreen[VmSpec | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Create"),
    ]

    def __init__(self, defaults: FormDefaults) -> None:
        super().__init__()
        self.defaults = defaults
        self._proposed_copy = defaults.rootfs_path if defaults.copy_sample_rootfs else None

    def compose(self) -> ComposeResult:
        values = {
            "name": self.defaults.name,
            "vcpu_count": str(DEFAULT_VCPUS),
            "mem_size_mib": str(DEFAULT_MEM_MIB),
            "kernel_image_path": self.defaults.kernel_image_path,
            "rootfs_path": self.defaults.rootfs_path,
            "kernel_args": "",
        }
        with VerticalScroll(id="dialog"):
            yield Static("[b]Create a VM[/b]  (enter to create, esc to cancel)")
            for key, label in TEXT_FIELDS:
                yield Label(label)
                yield Input(value=values[key], id=key,
                            type="integer" if key in INT_FIELDS else "text")
                # markup=False: errors quote what was typed, and "x[/y]" is not markup
                yield Label("", id=f"{key}-error", classes="field-error", markup=False)
                if key == "rootfs_path":
                    yield Label("", id="rootfs-note", classes="field-note", markup=False)
            yield Label("Hypervisor")
            yield Select([(h, h) for h in HYPERVISORS], value=self.defaults.hypervisor,
                         allow_blank=False, id="hypervisor")
            yield Label("", id="hypervisor-note", classes="field-error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#dialog").can_focus = False  # typing starts in the first field
        self.query_one("#name", Input).focus()
        self._show_copy_note()

    def _spec(self) -> tuple[VmSpec, dict[str, str]]:
        """The spec as typed, and what is wrong with it, field by field."""
        raw = {key: self.query_one(f"#{key}", Input).value.strip() for key, _ in TEXT_FIELDS}
        errors: dict[str, str] = {}
        numbers: dict[str, int] = {}
        for key in INT_FIELDS:
            try:
                numbers[key] = int(raw[key])
            except ValueError:
                numbers[key] = 0
                errors[key] = f"must be a whole number, got {raw[key]!r}"
        spec = VmSpec(
            name=raw["name"],
            vcpu_count=numbers["vcpu_count"],
            mem_size_mib=numbers["mem_size_mib"],
            kernel_image_path=raw["kernel_image_path"],
            rootfs_path=raw["rootfs_path"],
            kernel_args=raw["kernel_args"] or None,
            hypervisor=str(self.query_one("#hypervisor", Select).value),
        )
        errors = {**spec.field_errors(max_mem_mib=self.defaults.max_mem_mib), **errors}
        if spec.name in self.defaults.taken_names:
            errors.setdefault("name", f"a VM named {spec.name!r} already exists")
        return spec, errors

    def validate_all(self) -> bool:
        """Show each field's problem under it; True when there is none."""
        _, errors = self._spec()
        for key, _ in TEXT_FIELDS:
            self.query_one(f"#{key}-error", Label).update(errors.get(key, ""))
            self.query_one(f"#{key}", Input).set_class(key in errors, "-invalid")
        return not errors

    def on_select_changed(self, event: Select.Changed) -> None:
        missing = event.value == "firecracker" and shutil.which("firecracker") is None
        self.query_one("#hypervisor-note", Label).update(
            "the firecracker binary is not installed here: this VM will not start until it is"
            if missing else "")

    def on_input_changed(self, event: Input.Changed) -> None:
        sample = self.defaults.copy_sample_rootfs
        name = event.value.strip()
        if sample is not None and event.input.id == "name" and _valid_name(name):
            rootfs = self.query_one("#rootfs_path", Input)
            if rootfs.value == self._proposed_copy:  # not edited by hand: follow the name
                self._proposed_copy = str(copy_path(sample, name))
                rootfs.value = self._proposed_copy
        self._show_copy_note()
        self.validate_all()

    def _show_copy_note(self) -> None:
        sample = self.defaults.copy_sample_rootfs
        rootfs = self.query_one("#rootfs_path", Input).value.strip()
        copying = sample is not None and rootfs == self._proposed_copy \
            and not Path(rootfs).exists()
        self.query_one("#rootfs-note", Label).update(
            f"a copy of the sample {sample} of its own, made on create (running VMs cannot "
            "share a disk)" if copying else "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        if self.validate_all():
            self.dismiss(self._spec()[0])

    def action_cancel(self) -> None:
        self.dismiss(None)
