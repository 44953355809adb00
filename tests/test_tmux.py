"""``glidex`` in a real terminal (tmux), driven by keystrokes as a person would drive it.

Covers the issue's acceptance path: n, accept the defaults, s, enter -> the guest's prompt;
uname -a is answered; leaving the console and quitting leaves the VM running; starting glidex
again shows it running and its console still answers.

The details panel also shows the last console lines, so "the prompt is on screen" is checked
inside the console pane's border (``PANE_PROMPT``): the pane shows it once it is connected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.base = ["tmux", "-L", name]
        self.env = env

    def start(self, *argv: str, width: int = 120, height: int = 40) -> None:
        subprocess.run([*self.base, "new-session", "-d", "-s", "t", "-x", str(width),
                        "-y", str(height), *argv], check=True, env=self.env)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "t", *keys], check=True)

    def literal(self, text: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "t", "-l", text], check=True)

    def screen(self) -> str:
        result = subprocess.run([*self.base, "capture-pane", "-p", "-t", "t"],
                                capture_output=True, text=True)
        return result.stdout

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen()}")

    def session_alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", "t"],
                              capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


PANE_PROMPT = "│/ #"  # the guest's prompt at the left border of a console pane


@pytest.fixture
def tmux(home: Path):
    # pytest-xdist workers carry COLUMNS=80/LINES=24, which Textual would take over the pane's
    # real size: leave them out so glidex sees tmux's 120x40.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(GLIDEX_HOME=str(home), TERM="xterm-256color")
    session = Tmux(f"glidex-test-{os.getpid()}", env)
    yield session
    session.kill()


def test_glidex_in_tmux_boots_a_guest_and_keeps_it_running(tmux, home, sample_guest):
    home.mkdir(parents=True)
    shutil.copyfile(sample_guest / "vmlinuz", home / "vmlinuz")
    shutil.copyfile(sample_guest / "rootfs.ext4", home / "rootfs.ext4")
    glidex = [sys.executable, "-m", "glidex_tui"]

    tmux.start(*glidex)
    tmux.wait_for("press n to create one")
    tmux.keys("n")
    tmux.wait_for("Create a VM")
    tmux.keys("Enter")
    tmux.wait_for("created")
    tmux.keys("s")
    tmux.wait_for("running")
    tmux.keys("Enter")
    tmux.wait_for(PANE_PROMPT)
    tmux.literal("uname -a")
    tmux.keys("Enter")
    tmux.wait_for("Linux glidex", timeout=20)
    tmux.keys("C-]")
    tmux.wait_for("vm1")
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while tmux.session_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tmux.session_alive(), "glidex did not quit on q"

    tmux.start(*glidex)
    tmux.wait_for("running")  # the VM outlived the dashboard
    tmux.keys("Enter")
    tmux.wait_for(PANE_PROMPT)
    tmux.literal("echo still-$((40+2))")
    tmux.keys("Enter")
    tmux.wait_for("still-42", timeout=20)
    tmux.keys("C-]")
    tmux.wait_for("vm1")
    tmux.keys("x")  # stop it, so nothing is left running
    tmux.wait_for("stopped", timeout=30)
    tmux.keys("q")
