"""What the dashboard does to VMs: create, start, stop, pause, delete (one or the marked ones),
and the ``:`` commands that say the same in words.

Kept apart from app.py so that wiring and doing stay separate; every supervisor call goes
through :meth:`VmActions._run`, which turns a failure into exactly one notification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from glidex_core.config import default_hypervisor
from glidex_core.models import (
    GlidexError,
    NotFoundError,
    ValidationError,
    VmRecord,
    VmSpec,
    VmState,
)
from glidex_core.policy import max_mem_mib
from glidex_tui.commands import CommandError, parse_command_line
from glidex_tui.disk_copies import copy_path, make_copy
from glidex_tui.screens.confirm import ConfirmScreen
from glidex_tui.screens.create_form import CreateVmScreen, FormDefaults
from glidex_tui.widgets.filter_input import FilterInput
from glidex_tui.widgets.vm_table import SORT_NAMES, VmTable

if TYPE_CHECKING:
    from glidex_tui.app import GlidexApp


class VmActions:
    """Mixed into GlidexApp: VM operations, marks and bulk operations, ``:`` commands."""

    # -- choosing VMs ----------------------------------------------------------------------
    def _selected(self: GlidexApp, quiet: bool = False) -> VmRecord | None:
        vm_id = self.query_one(VmTable).selected_id
        if vm_id is None or self.supervisor is None:
            if not quiet:
                self.notify("No VM selected: press n to create one.", severity="warning")
            return None
        try:
            return self.supervisor.get(vm_id)
        except GlidexError:
            return None

    def _targets(self: GlidexApp) -> tuple[list[VmRecord], bool]:
        """The marked VMs if any (and True), else the selected one."""
        table = self.query_one(VmTable)
        marked = []
        for vm_id in table.marked_ids():
            try:
                marked.append(self.supervisor.get(vm_id))
            except GlidexError:
                pass
        if marked:
            return marked, True
        record = self._selected()
        return ([record] if record else []), False

    def _named(self: GlidexApp, names: list[str]) -> list[VmRecord] | None:
        """VMs by name or id; None (after saying which name is unknown) if any is unknown."""
        records = []
        for name in names:
            try:
                records.append(self.supervisor.get(name))
            except NotFoundError:
                self.notify(f"No VM named {name!r}.", severity="error")
                return None
        return records

    def toggle_mark_by_name(self: GlidexApp, name: str) -> None:
        if records := self._named([name]):
            self.query_one(VmTable).toggle_mark(records[0].id)

    # -- running operations ------------------------------------------------------------------
    async def _run(self: GlidexApp, what: str, operation: Awaitable) -> None:
        """Run a supervisor operation, turning its errors into notifications."""
        try:
            record = await operation
        except GlidexError as exc:
            self.notify(f"{what} failed: {exc}", severity="error", timeout=10)
            return
        self.refresh_table()
        if what == "create" and record is not None:
            table = self.query_one(VmTable)
            if record.id in table.rows:
                table.move_cursor(row=table.get_row_index(record.id))

    def _operate(self: GlidexApp, verb: str, records: list[VmRecord], bulk: bool) -> None:
        """Start/stop/pause/resume each VM, one after the other in one worker: a VMM start is
        quick, and starting many at once only makes them compete (and races QMP sockets)."""
        if not records:
            return
        supervisor = self.supervisor

        async def run_all() -> None:
            for record in records:
                verb_now = verb
                if verb == "pause" and record.state == VmState.PAUSED:
                    verb_now = "resume"  # p toggles, as before: a paused VM resumes
                operation = getattr(supervisor, verb_now)(record.id)
                label = f"{verb_now} {record.name}" if len(records) > 1 else verb_now
                await self._run(label, operation)

        self.run_worker(run_all(), group="vm-ops")
        if bulk:
            self.query_one(VmTable).action_unmark_all()

    def action_start(self: GlidexApp) -> None:
        records, bulk = self._targets()
        self._operate("start", records, bulk)

    def action_stop(self: GlidexApp) -> None:
        records, bulk = self._targets()
        self._operate("stop", records, bulk)

    def action_pause_resume(self: GlidexApp) -> None:
        records, bulk = self._targets()
        self._operate("pause", records, bulk)

    def action_create(self: GlidexApp) -> None:
        if self.supervisor is None:
            return
        records = self.supervisor.list()
        paths, names = self.supervisor.paths, {r.name for r in records}
        suggestion = next(f"vm{i}" for i in range(1, len(names) + 2) if f"vm{i}" not in names)
        sample = self._sample_to_copy()
        defaults = FormDefaults(
            name=suggestion,
            kernel_image_path=str(paths.default_kernel),
            rootfs_path=str(copy_path(sample, suggestion) if sample else paths.default_rootfs),
            copy_sample_rootfs=sample,
            hypervisor=default_hypervisor(self.supervisor.settings),
            max_mem_mib=max_mem_mib(self.supervisor.settings),
            taken_names=frozenset(names),
        )
        self.push_screen(CreateVmScreen(defaults), self._create_from_form)

    def _sample_to_copy(self: GlidexApp) -> Path | None:
        """The sample rootfs, if this dashboard can copy it (not when the control plane is on
        another host: its disks are there). Every VM made from the form boots a copy: two
        running VMs cannot share a disk, and a copy of a disk a guest has mounted may not be
        consistent, so the sample itself is never booted."""
        sample = self.supervisor.paths.default_rootfs
        return None if self.url or not sample.exists() else sample

    def _create_from_form(self: GlidexApp, spec: VmSpec | None) -> None:
        if spec is None:
            return
        sample = self._sample_to_copy()
        if sample is None or spec.rootfs_path != str(copy_path(sample, spec.name)) \
                or Path(spec.rootfs_path).exists():
            self.run_worker(self._run("create", self.supervisor.create(spec)))
            return

        async def copy_then_create() -> VmRecord | None:
            try:
                await asyncio.to_thread(make_copy, sample, Path(spec.rootfs_path))
            except OSError as exc:
                raise ValidationError("rootfs_path", f"could not copy {sample} to "
                                      f"{spec.rootfs_path}: {exc.strerror or exc}") from None
            self.notify(f"{spec.name}: root disk copied from {sample} to {spec.rootfs_path}",
                        timeout=5)
            return await self.supervisor.create(spec)

        self.run_worker(self._run("create", copy_then_create()))

    def action_delete(self: GlidexApp) -> None:
        if record := self._selected():
            self.confirm_delete(record)

    def confirm_delete(self: GlidexApp, record: VmRecord) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._run("delete", self.supervisor.delete(record.id)))

        running = " It is running and will be stopped first." if record.is_live else ""
        self.push_screen(
            ConfirmScreen(f"Delete VM {record.name}?{running} Its disk files are kept."), answered
        )

    # -- the : line ------------------------------------------------------------------------
    async def run_command_line(self: GlidexApp, text: str) -> None:
        """Parse and run one ``:`` command; a mistake becomes a notification."""
        try:
            command, args = parse_command_line(text)
        except CommandError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        handler = getattr(self, f"command_{command.name}")
        result = handler(args)
        if result is not None:
            await result

    def _vm_command(self: GlidexApp, verb: str, args: list[str]) -> None:
        if args:
            records, bulk = self._named(args), False
            if records is None:
                return
        else:
            records, bulk = self._targets()
        self._operate(verb, records, bulk)

    def command_start(self: GlidexApp, args: list[str]) -> None:
        self._vm_command("start", args)

    def command_stop(self: GlidexApp, args: list[str]) -> None:
        self._vm_command("stop", args)

    def command_pause(self: GlidexApp, args: list[str]) -> None:
        self._vm_command("pause", args)

    def command_resume(self: GlidexApp, args: list[str]) -> None:
        self._vm_command("resume", args)

    def _one(self: GlidexApp, args: list[str]) -> VmRecord | None:
        if not args:
            return self._selected()
        records = self._named(args)
        return records[0] if records else None

    def command_connect(self: GlidexApp, args: list[str]) -> None:
        if record := self._one(args):
            self.open_console(record)

    def command_delete(self: GlidexApp, args: list[str]) -> None:
        if record := self._one(args):
            self.confirm_delete(record)

    def command_new(self: GlidexApp, _args: list[str]) -> None:
        self.action_create()

    def command_close(self: GlidexApp, _args: list[str]) -> None:
        self.action_close_pane()

    def command_theme(self: GlidexApp, args: list[str]) -> None:
        if not args:
            self.search_themes()
            return
        name = args[0]
        if name not in self.available_themes:
            ours = sorted(n for n in self.available_themes if n.startswith("glidex"))
            self.notify(f"No theme {name!r}. Try {', '.join(ours)} (or :theme alone for all).",
                        severity="error", timeout=8)
            return
        self.theme = name

    def command_filter(self: GlidexApp, args: list[str]) -> None:
        text = " ".join(args)
        field = self.query_one(FilterInput)
        field.value = text  # Changed applies it to the table
        field.display = bool(text)
        self.query_one(VmTable).set_filter(text)

    def command_sort(self: GlidexApp, args: list[str]) -> None:
        self.query_one(VmTable).set_sort(SORT_NAMES[args[0]] if args else None)

    def command_layout(self: GlidexApp, args: list[str]) -> None:
        what = args[0] if args else "save"
        if what == "save":
            self.action_save_layout()
        elif what == "restore":
            self.restore_layout()
        else:
            self.forget_layout()

    def command_help(self: GlidexApp, _args: list[str]) -> None:
        self.action_help()

    def command_quit(self: GlidexApp, _args: list[str]) -> None:
        self.exit()


__all__ = ["CommandError", "VmActions"]
