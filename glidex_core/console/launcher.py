"""Starting console keepers, with one started ahead of need.

A keeper is a Python process, and an interpreter start (~30 ms here even with ``-S``) was most
of what ``start`` added on top of the VMM's own start (bench figure 3.1). So the launcher keeps
one *spare* keeper that has already started and imported everything and waits for its spec on
stdin. ``launch`` hands the next VM to the spare when there is one (writing the spec is all that
is left), else starts a keeper the plain way; ``refill`` starts the next spare in the background.

A spare holds nothing but its stdin pipe: when the supervisor closes it, or dies, the spare
reads end of file and exits, so spares never outlive their supervisor or pile up.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

from glidex_core.console.keeper import KeeperSpec

SPARE_FLAG = "--spare"


# glibc raises its mmap threshold to the size of each large block freed, so after a burst to
# many clients the keeper's per-client buffers came from the heap and their high-water mark
# stayed resident (bench figure 2.4). A fixed threshold keeps blocks over 128 KiB mmapped, and
# returned to the system as soon as a buffer drains.
KEEPER_TUNABLE = "glibc.malloc.mmap_threshold=131072"
VMM_TUNABLES = "GLIDEX_VMM_GLIBC_TUNABLES"  # the keeper gives its VMM this GLIBC_TUNABLES back


def keeper_env() -> dict[str, str]:
    """The environment of a keeper: ours, with glidex_core importable under ``python -S``
    and the keeper's malloc tuning (which its VMM does not inherit, see keeper.py)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    theirs = env.get("GLIBC_TUNABLES", "")
    env[VMM_TUNABLES] = theirs
    # Ours first: glibc 2.36 rewrites the variable as it parses it, and a tunable after
    # another one can be lost in that copy.
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [KEEPER_TUNABLE, theirs]))
    return env


def keeper_command(*args: str) -> list[str]:
    # -S: the keeper is stdlib-only and finds glidex_core through PYTHONPATH; not scanning
    # site-packages saves ~20 ms of every start and ~2 MiB per VM.
    return [sys.executable, "-S", "-m", "glidex_core.console.keeper", *args]


class KeeperLauncher:
    """Starts keepers; with ``spare`` set, keeps one started keeper waiting for the next VM."""

    def __init__(self, *, spare: bool = True) -> None:
        self.use_spare = spare
        self._spare: subprocess.Popen | None = None

    def launch(self, spec: KeeperSpec, stderr_path: Path) -> subprocess.Popen:
        """A keeper running ``spec``; its stdout gives the ready line, its stderr goes to
        ``stderr_path`` (0600)."""
        spare, self._spare = self._spare, None
        if spare is not None:
            handed = replace(spec, stderr_path=str(stderr_path), env=keeper_env())
            try:
                spare.stdin.write(json.dumps(asdict(handed)).encode() + b"\n")
                spare.stdin.close()
                return spare
            except OSError:  # it died while waiting (killed by someone): start one as before
                self._discard(spare)
        with open(stderr_path, "ab") as stderr:
            os.chmod(stderr_path, 0o600)
            # Popen, not asyncio's subprocess: asyncio would keep a waiter (a thread on 3.11)
            # per keeper for its whole life; the supervisor follows keepers through pidfds.
            return subprocess.Popen(
                keeper_command(json.dumps(asdict(spec))),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # its own session: it outlives us and our terminal
                env=keeper_env(),
            )

    def refill(self) -> None:
        """Start the next spare unless one waits already (cheap to call after every start)."""
        if not self.use_spare or (self._spare is not None and self._spare.poll() is None):
            return
        if self._spare is not None:
            self._discard(self._spare)
        try:
            self._spare = subprocess.Popen(
                keeper_command(SPARE_FLAG),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # until its spec names the VM's keeper log
                start_new_session=True,
                env=keeper_env(),
            )
        except OSError:
            self._spare = None  # no spare: the next start starts its keeper itself

    def close(self) -> None:
        """Let the spare go (it exits on end of file) and reap it."""
        spare, self._spare = self._spare, None
        if spare is not None:
            self._discard(spare)

    @staticmethod
    def _discard(spare: subprocess.Popen) -> None:
        with contextlib.suppress(OSError):
            spare.stdin.close()
        spare.stdout.close()
        try:
            spare.wait(timeout=1)
        except subprocess.TimeoutExpired:
            spare.kill()
            spare.wait()
