"""Two real guests in side-by-side console panes, in a real terminal (tmux), driven by keys:
open both, type into each, and read both answers on one screen, each in its own pane."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from glidex_core.supervisor import Supervisor, SupervisorBusyError
from tests.helpers import PROMPT, guest_spec, wait_for_file_text
from tests.test_tmux import Tmux

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
WIDTH, HEIGHT = 170, 50
NAMES = ("alpha", "beta")


async def _boot(home: Path, sample: Path) -> list[str]:
    supervisor = await Supervisor.open(home)
    try:
        ids = []
        for name in NAMES:
            record = await supervisor.create(guest_spec(sample, home.parent, name,
                                                        hypervisor="qemu"))
            await supervisor.start(record.id)
            ids.append(record.id)
        return ids
    finally:
        await supervisor.close()


async def _stop_all(home: Path) -> None:
    for _ in range(100):  # glidex may still be exiting (it holds the home's lock until then)
        try:
            supervisor = await Supervisor.open(home)
            break
        except SupervisorBusyError:
            await asyncio.sleep(0.1)
    else:
        supervisor = await Supervisor.open(home)
    try:
        for record in supervisor.list():
            if record.is_live:
                await supervisor.stop(record.id, force=True)
    finally:
        await supervisor.close()


def pane_columns(screen: str, text: str) -> list[int]:
    """The column where ``text`` starts on each screen line that shows it."""
    return [line.index(text) for line in screen.splitlines() if text in line]


def test_two_guests_side_by_side_in_tmux(home, sample_guest):
    ids = asyncio.run(_boot(home, sample_guest))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(GLIDEX_HOME=str(home), TERM="xterm-256color")
    tmux = Tmux(f"glidex-sbs-{os.getpid()}", env)
    try:
        for vm_id in ids:
            wait_for_file_text(home / "vms" / vm_id / "console.log", PROMPT)
        tmux.start(sys.executable, "-m", "glidex_tui", width=WIDTH, height=HEIGHT)
        tmux.wait_for("alpha")
        tmux.keys("Enter")  # alpha's console: the whole console area
        tmux.wait_for("│/ #")
        tmux.keys("C-]", "Down", "Enter")  # beta's: beside it (the area is wide)
        tmux.wait_for("╭─ beta")
        screen = tmux.wait_for("│/ #")
        assert "╭─ alpha" in screen

        tmux.literal("echo right-$((20+3))")  # beta has the keyboard
        tmux.keys("Enter")
        tmux.wait_for("right-23", timeout=30)
        tmux.keys("C-\\", "h")  # the prefix, then: the pane to the left
        tmux.literal("echo left-$((40+2))")
        tmux.keys("Enter")
        screen = tmux.wait_for("left-42", timeout=30)
        screen = tmux.wait_for("right-23")  # both answers on one screen

        half = WIDTH // 2
        left, right = pane_columns(screen, "left-42"), pane_columns(screen, "right-23")
        assert left and all(col < half for col in left), screen
        assert right and all(col > half for col in right), screen
        for line in screen.splitlines():  # each answer only in its own pane
            if "left-42" in line and "right-23" in line:
                assert line.index("left-42") < half < line.index("right-23")

        tmux.keys("C-]")
        tmux.wait_for("q Quit")
        tmux.keys("q")
    finally:
        tmux.kill()
        asyncio.run(_stop_all(home))
