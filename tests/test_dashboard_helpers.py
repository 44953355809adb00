"""Helpers shared by the dashboard's Pilot tests (no tests here).

The dashboard is driven on VMs of the QEMU TEST STAND-IN (a guestless VMM that prints a prompt
and echoes what it reads), so a test can run several "VMs" with consoles in well under a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from glidex_core.supervisor import Supervisor
from glidex_tui.widgets.console_pane import ConsolePane
from tests.helpers import standin_spec


async def wait_until(pilot, condition: Callable[[], object], timeout: float = 20.0,
                     what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what or condition}"
        await pilot.pause(0.05)


@asynccontextmanager
async def standin_vms(home: Path, names: list[str], *, running: list[str] | None = None,
                      behaviours: dict[str, str] | None = None) -> AsyncIterator[dict[str, str]]:
    """Create stand-in VMs (name -> id), start ``running`` (default: all); stop them after.

    Needs the ``qemu_standin`` fixture (it puts the stand-in first on PATH)."""
    running = names if running is None else running
    behaviours = behaviours or {}
    supervisor = await Supervisor.open(home)
    ids: dict[str, str] = {}
    try:
        for name in names:
            record = await supervisor.create(
                standin_spec(home.parent, name, behaviours.get(name, "")))
            ids[name] = record.id
        for name in running:  # one at a time: parallel starts race the stand-in's QMP listen
            await supervisor.start(ids[name])
    finally:
        await supervisor.close()
    try:
        yield ids
    finally:
        supervisor = await Supervisor.open(home)
        try:
            for record in supervisor.list():
                if record.is_live:
                    await supervisor.stop(record.id, force=True)
        finally:
            await supervisor.close()


def pane_text(pane: ConsolePane) -> str:
    return "\n".join(pane.screen_lines())


async def type_text(pilot, text: str) -> None:
    """Type like a person: one key per character (Pilot needs key names for a few)."""
    names = {" ": "space", "-": "minus", ".": "full_stop", "/": "slash", "$": "dollar_sign",
             "(": "left_parenthesis", ")": "right_parenthesis", "+": "plus", "=": "equals_sign"}
    await pilot.press(*[names.get(c, c) for c in text])
