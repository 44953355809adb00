"""The create form gives every VM a copy of the sample rootfs of its own, so accepting the
defaults twice gives two VMs that both start (found by a new user), and the sample is never
booted (so never copied while a guest has it mounted)."""

from __future__ import annotations

import os

from textual.widgets import Input, Label

from glidex_core.config import Paths
from glidex_core.models import VmState
from glidex_tui.app import GlidexApp
from glidex_tui.screens.create_form import CreateVmScreen
from tests.test_dashboard_helpers import type_text, wait_until


def sample_guest_files(home) -> Paths:
    """Placeholder sample files where the form's defaults point (the stand-in boots nothing)."""
    paths = Paths(home)
    paths.ensure()
    paths.default_kernel.write_bytes(b"kernel")
    paths.default_rootfs.write_bytes(os.urandom(3 << 20))
    return paths


async def create_with_defaults(pilot, app) -> CreateVmScreen:
    await pilot.press("n")
    await wait_until(pilot, lambda: isinstance(app.screen, CreateVmScreen), what="the form")
    return app.screen


async def test_every_vm_from_the_defaults_gets_its_own_copy_of_the_sample(home, qemu_standin):
    paths = sample_guest_files(home)
    app = GlidexApp(home=home)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: app.supervisor is not None)
        form = await create_with_defaults(pilot, app)
        assert form.query_one("#rootfs_path", Input).value == str(home / "rootfs-vm1.ext4")
        assert "copy of the sample" in str(form.query_one("#rootfs-note", Label).render())
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.supervisor.list()) == 1, what="vm1")

        form = await create_with_defaults(pilot, app)
        rootfs = form.query_one("#rootfs_path", Input)
        assert rootfs.value == str(home / "rootfs-vm2.ext4")
        name = form.query_one("#name", Input)
        name.value = ""
        await type_text(pilot, "db")  # the proposed copy follows the name typed
        assert rootfs.value == str(home / "rootfs-db.ext4")
        await type_text(pilot, "/")  # not a name, nor a file name: the copy stays (it crashed)
        await pilot.pause()
        assert rootfs.value == str(home / "rootfs-db.ext4") and app.is_running
        await pilot.press("backspace", "enter")
        await wait_until(pilot, lambda: len(app.supervisor.list()) == 2, what="db")

        for copy in (home / "rootfs-vm1.ext4", home / "rootfs-db.ext4"):
            assert copy.read_bytes() == paths.default_rootfs.read_bytes()
            assert copy.stat().st_mode & 0o777 == 0o600
        assert app.supervisor.get("db").rootfs_path == str(home / "rootfs-db.ext4")
        for record in app.supervisor.list():
            assert (await app.supervisor.start(record.id)).state == VmState.RUNNING
        for record in app.supervisor.list():
            await app.supervisor.stop(record.id, force=True)
        await pilot.press("q")


async def test_esc_cancels_the_form(home):
    """Found by a new user: the form said "esc to cancel", and Esc did nothing."""
    sample_guest_files(home)
    app = GlidexApp(home=home)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: app.supervisor is not None)
        await create_with_defaults(pilot, app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CreateVmScreen),
                         what="the form to close")
        await pilot.pause(0.2)
        assert app.supervisor.list() == [] and not (home / "rootfs-vm1.ext4").exists()


async def test_a_rootfs_typed_by_hand_is_never_copied_over(home, qemu_standin):
    sample_guest_files(home)
    mine = home / "mine.ext4"
    mine.write_bytes(b"my own disk")
    app = GlidexApp(home=home)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: app.supervisor is not None)
        await create_with_defaults(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.supervisor.list()) == 1, what="vm1")
        form = await create_with_defaults(pilot, app)
        form.query_one("#rootfs_path", Input).value = str(mine)
        await pilot.pause()
        assert str(form.query_one("#rootfs-note").render()) == ""
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.supervisor.list()) == 2, what="vm2")
        assert app.supervisor.get("vm2").rootfs_path == str(mine)
        assert mine.read_bytes() == b"my own disk"
        assert not (home / "rootfs-vm2.ext4").exists()
        await pilot.press("q")
