"""Fixtures of the fault-injection tests: control planes that are cleaned up whatever happens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.support import Plane, kill_everything_in, standin_env, write_config


@pytest.fixture
def planes() -> Iterator[Callable[..., Plane]]:
    """Start real control planes; on teardown stop them and kill anything left in their homes."""
    started: list[Plane] = []

    def start(home: Path, env: dict[str, str] | None = None) -> Plane:
        plane = Plane(home, env)
        started.append(plane)
        return plane

    yield start
    for plane in started:
        plane.stop()
        kill_everything_in(plane.home)


@pytest.fixture
def reaper(home: Path) -> Iterator[Path]:
    """The test's home; whatever VMM or keeper is left in it is killed on teardown."""
    yield home
    kill_everything_in(home)


STANDIN_STOP_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def standin_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """A control plane whose ``qemu-system-x86_64`` is the TEST STAND-IN (shared by a module);
    graceful stops give up after STANDIN_STOP_TIMEOUT seconds."""
    home = tmp_path_factory.mktemp("standin-plane") / "h"
    write_config(home, stop_timeout=STANDIN_STOP_TIMEOUT)
    plane = Plane(home, standin_env())
    yield plane
    plane.stop()
    kill_everything_in(home)
