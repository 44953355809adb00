"""The dashboard driven with Textual's Pilot, on a real guest: form, start, console, typing."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from glidex_core.models import VmState
from glidex_core.supervisor import Supervisor
from glidex_tui.app import GlidexApp
from glidex_tui.screens.create_form import CreateVmScreen
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.vm_table import VmTable

pytestmark = pytest.mark.guest


async def wait_until(pilot, condition, timeout: float = 60.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what or condition}"
        await pilot.pause(0.1)


def screen_text(app) -> str:
    return "\n".join(app.query_one(ConsolePane).screen_lines())


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[{" ": "space", "-": "minus"}.get(c, c) for c in text])


async def test_form_defaults_start_console_and_type(home, sample_guest):
    home.mkdir(parents=True)
    shutil.copyfile(sample_guest / "vmlinuz", home / "vmlinuz")
    shutil.copyfile(sample_guest / "rootfs.ext4", home / "rootfs.ext4")

    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateVmScreen), what="form")
        await pilot.press("enter")  # accept every default
        table = app.query_one(VmTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the new row")
        assert app.supervisor.list()[0].name == "vm1"

        await pilot.press("s")
        await wait_until(pilot, lambda: app.supervisor.list()[0].state == VmState.RUNNING,
                         what="running")
        await pilot.press("enter")  # the console opens in a pane, with the keyboard
        await wait_until(pilot, lambda: isinstance(app.focused, ConsolePane), what="console")
        await wait_until(pilot, lambda: "/ #" in screen_text(app), what="the guest prompt")

        await type_text(pilot, "uname -a")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Linux glidex" in screen_text(app), timeout=20,
                         what="uname output")
        await pilot.press("ctrl+c")  # goes to the guest, the app keeps running
        await pilot.pause(0.3)
        assert isinstance(app.focused, ConsolePane)

        await pilot.press("ctrl+right_square_bracket")  # leaves: the table has the keys again
        await wait_until(pilot, lambda: app.focused is table, what="leave")
        await pilot.press("q")

    # Quitting the dashboard leaves the VM running.
    sup = await Supervisor.open(home)
    try:
        assert sup.list()[0].state == VmState.RUNNING
        await sup.stop("vm1", force=True)
    finally:
        await sup.close()


async def test_form_shows_invalid_values_inline(home):
    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateVmScreen), what="form")
        form = app.screen
        form.query_one("#name").value = "Bad/Name"
        form.query_one("#vcpu_count").value = "99"
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CreateVmScreen), "an invalid form must not submit"
        assert "a-z" in str(form.query_one("#name-error").render())
        assert "between 1 and 32" in str(form.query_one("#vcpu_count-error").render())
        await pilot.press("escape")
        assert app.supervisor.list() == []
