"""gxctl, the CLI client of the REST API, against a real ``glidex-control-plane`` process.

One-shot commands run as subprocesses (``--json`` output parses, errors exit non-zero with the
server's message); the shell and ``connect`` run under a real pty (pexpect), their output fed
through a terminal emulator (pyte) so checks look at the screen a person would see. Guest tests
share one sample guest per module (and per xdist worker). Pure parts (escape key, byte pump,
re-asking prompts, argument parsing, settings) are tested directly, with no server behaviour
imitated.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from gxctl.client import _parse_sse
from gxctl.connect import CLOSED, DETACHED, STDIN_EOF, SocketTransport, pump, raw_terminal
from gxctl.escape import EscapeFilter, describe_escape, parse_escape
from gxctl.parser import build_parser
from gxctl.prompts import ask_create, ask_int, confirm
from gxctl.settings import DEFAULT_URL, resolve
from gxctl.shell import GxctlCompleter
from tests.helpers import PROMPT, ControlPlane

GUEST = "gxvm"
SHELL_PROMPT = "gxctl>"


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A real glidex-control-plane on a free port with its own temporary GLIDEX_HOME."""
    plane = ControlPlane(tmp_path_factory.mktemp("gxctl") / "h")
    deadline = time.monotonic() + 20
    while plane.http.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "GET /health never answered"
        time.sleep(0.1)
    yield plane
    for vm in plane.http.get("/vms").json():
        plane.http.delete(f"/vms/{vm['id']}")
    plane.stop()


@pytest.fixture
def client_home(tmp_path: Path) -> Path:
    """gxctl's own GLIDEX_HOME (history, default images), separate from the server's."""
    home = tmp_path / "client-home"
    home.mkdir()
    return home


def gx_env(client_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIDEX_URL", "GLIDEX_TOKEN")}
    env.update({"GLIDEX_HOME": str(client_home), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm",
                **extra})
    return env


def gx(cp: ControlPlane, client_home: Path, *args: str,
       **kwargs) -> subprocess.CompletedProcess[str]:
    """Run one-shot gxctl against ``cp``."""
    return subprocess.run([sys.executable, "-m", "gxctl", "--url", cp.url, *args],
                          env=gx_env(client_home), capture_output=True, text=True, timeout=120,
                          **kwargs)


def vm_body(name: str, **extra) -> dict:
    return {"name": name, "kernel_image_path": "/nonexistent/kernel",
            "rootfs_path": "/nonexistent/rootfs", "mem_size_mib": 256, **extra}


class Term:
    """A program on a real pty, its output rendered by a terminal emulator."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 40,
                 cols: int = 120) -> None:
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols))
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.eof = False

    def _read(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.eof = True
            return
        self.raw += data
        self.stream.feed(data)

    def mark(self) -> int:
        return len(self.raw)

    def expect(self, needle: str | bytes, since: int = 0, timeout: float = 30.0) -> int:
        """Wait until ``needle`` is in the output after ``since``; returns the offset after it."""
        needle_b = needle.encode() if isinstance(needle, str) else needle
        deadline = time.monotonic() + timeout
        while True:
            at = self.raw.find(needle_b, since)
            if at >= 0:
                return at + len(needle_b)
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"{needle_b!r} not seen; screen:\n{self.text()}\n"
                                     f"raw tail: {bytes(self.raw[-600:])!r}")
            self._read(0.1)

    def line(self) -> str:
        """The screen line the cursor is on."""
        return self.screen.display[self.screen.cursor.y].rstrip()

    def wait_line(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while not re.fullmatch(pattern, self.line()):
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"cursor line {self.line()!r} never matched {pattern!r};"
                                     f" screen:\n{self.text()}")
            self._read(0.1)
        return self.line()

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip()

    def send(self, data: str | bytes) -> None:
        self.child.send(data)

    def wait_exit(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while not self.eof:
            assert time.monotonic() < deadline, f"still running; screen:\n{self.text()}"
            self._read(0.1)
        self.child.wait()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()


@pytest.fixture
def terms() -> Iterator[list[Term]]:
    opened: list[Term] = []
    yield opened
    for term in opened:
        term.close()


def shell(cp: ControlPlane, client_home: Path, terms: list[Term]) -> Term:
    term = Term([sys.executable, "-m", "gxctl", "--url", cp.url], gx_env(client_home))
    terms.append(term)
    term.expect(SHELL_PROMPT)
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    return term


def run_line(term: Term, line: str, expect: str, timeout: float = 30.0) -> None:
    """Type a shell line, wait for ``expect`` in its output and for the next prompt."""
    mark = term.mark()
    term.send(line + "\r")
    after = term.expect(expect, mark, timeout)
    term.expect(SHELL_PROMPT, after, timeout)
    term.wait_line(rf"{SHELL_PROMPT}\s*")


def lflags(term: Term) -> int:
    return termios.tcgetattr(term.child.child_fd)[3]


# -- one-shot commands against the real server ---------------------------------------------


def test_one_shot_json_output_parses(cp, client_home):
    health = gx(cp, client_home, "--json", "health")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["status"] == "ok"

    created = gx(cp, client_home, "create", "--name", "js", "--vcpus", "2", "--mem", "300",
                 "--kernel", "/nonexistent/k", "--rootfs", "/nonexistent/r",
                 "--kernel-args", "console=ttyS0", "--hypervisor", "qemu", "--json")
    assert created.returncode == 0, created.stderr
    vm = json.loads(created.stdout)
    assert (vm["name"], vm["state"], vm["vcpu_count"], vm["mem_size_mib"]) == \
        ("js", "created", 2, 300)
    assert (vm["kernel_args"], vm["hypervisor"]) == ("console=ttyS0", "qemu")

    listed = gx(cp, client_home, "--json", "list")
    assert "js" in [v["name"] for v in json.loads(listed.stdout)]
    got = gx(cp, client_home, "get", vm["id"], "--json")
    assert json.loads(got.stdout)["name"] == "js"
    log = gx(cp, client_home, "--json", "log", "js")
    assert json.loads(log.stdout) == {"offset": 0, "size": 0, "data": ""}
    deleted = gx(cp, client_home, "--json", "delete", "js", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"deleted": "js"}
    assert cp.http.get("/vms/js").status_code == 404


def test_one_shot_human_output(cp, client_home):
    cp.http.post("/vms", json=vm_body("human"))
    listed = gx(cp, client_home, "list")
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ID", "STATE"]
    assert any(row.split()[0] == "human" and "created" in row for row in rows)
    got = gx(cp, client_home, "get", "human")
    assert re.search(r"^state\s+created$", got.stdout, re.M)
    assert re.search(r"^status\s+ok$", gx(cp, client_home, "health").stdout, re.M)
    cp.http.delete("/vms/human")


def test_errors_exit_non_zero_with_the_servers_message(cp, client_home):
    missing = gx(cp, client_home, "get", "nope")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == "gxctl: VM not found: nope"
    assert gx(cp, client_home, "--json", "start", "nope").stderr.strip() == \
        "gxctl: VM not found: nope"

    cp.http.post("/vms", json=vm_body("errs"))
    duplicate = gx(cp, client_home, "create", "--name", "errs", "--kernel", "/k", "--rootfs", "/r")
    server_says = cp.http.post("/vms", json=vm_body("errs")).json()["message"]
    assert duplicate.returncode == 1 and duplicate.stderr == f"gxctl: {server_says}\n"
    pause = gx(cp, client_home, "pause", "errs")
    assert pause.returncode == 1
    assert pause.stderr.strip() == "gxctl: cannot pause a VM that is created"
    start = gx(cp, client_home, "start", "errs")  # its kernel does not exist
    assert start.returncode == 1 and "/nonexistent/kernel" in start.stderr
    bad = gx(cp, client_home, "create", "--name", "Bad Name!", "--kernel", "/k", "--rootfs", "/r")
    assert bad.returncode == 1 and bad.stderr.startswith("gxctl: name:")
    not_running = gx(cp, client_home, "connect", "errs")
    assert not_running.returncode == 1
    assert not_running.stderr.strip() == \
        "gxctl: the console of errs is not available: the VM is created"
    no_confirm = gx(cp, client_home, "delete", "errs", stdin=subprocess.DEVNULL)
    assert no_confirm.returncode == 1 and "--yes" in no_confirm.stderr
    assert cp.http.get("/vms/errs").status_code == 200
    cp.http.delete("/vms/errs")


def test_usage_errors_exit_2(cp, client_home):
    result = gx(cp, client_home, "create", "--name", "x", "--vcpus", "two")
    assert result.returncode == 2 and "'two' is not a whole number" in result.stderr
    assert gx(cp, client_home, "frobnicate").returncode == 2


def test_connection_refused_names_the_url_and_the_fix(client_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before gxctl runs: nothing listens there
    url = f"http://127.0.0.1:{port}"
    result = subprocess.run([sys.executable, "-m", "gxctl", "list"], capture_output=True,
                            text=True, env=gx_env(client_home, GLIDEX_URL=url), timeout=60)
    assert result.returncode == 1
    assert url in result.stderr and "glidex-control-plane" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_defaults_come_from_glidex_home(cp, client_home):
    result = gx(cp, client_home, "--json", "create", "--name", "defaults")
    vm = json.loads(result.stdout)
    assert (vm["vcpu_count"], vm["mem_size_mib"]) == (1, 512)
    assert vm["kernel_image_path"] == str(client_home / "vmlinuz")
    assert vm["rootfs_path"] == str(client_home / "rootfs.ext4")
    (client_home / "vmlinux.bin").write_bytes(b"")  # a Firecracker kernel wins when present
    second = gx(cp, client_home, "--json", "create", "--name", "defaults2")
    vm2 = json.loads(second.stdout)  # the note below goes to stderr: stdout stays JSON
    assert vm2["kernel_image_path"] == str(client_home / "vmlinux.bin")
    # Found by a new user: two VMs on one disk cannot both run; say so, and how to copy it.
    disk = client_home / "rootfs.ext4"
    assert f"note: defaults already uses {disk}" in second.stderr
    assert f"cp {disk} {client_home / 'rootfs-defaults2.ext4'}" in second.stderr
    relative = json.loads(gx(cp, client_home, "--json", "create", "--name", "rel", "--kernel",
                             "k.bin", "--rootfs", "r.ext4", cwd=client_home).stdout)
    assert relative["kernel_image_path"] == str(client_home / "k.bin")
    for name in ("defaults", "defaults2", "rel"):
        cp.http.delete(f"/vms/{name}")


def test_token_flag_env_and_discovery(tmp_path, client_home):
    plane = ControlPlane(tmp_path / "tok", "--token", "s3cret")
    try:
        def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "gxctl", *args], capture_output=True,
                                  text=True, env=gx_env(client_home, **env), timeout=60)

        refused = run("--url", plane.url, "list")
        assert refused.returncode == 1
        assert refused.stderr.strip() == "gxctl: a valid bearer token is required"
        assert run("--url", plane.url, "--token", "s3cret", "list").returncode == 0
        assert run("--url", plane.url, "list", GLIDEX_TOKEN="s3cret").returncode == 0
        # On the server's own home, gxctl finds URL and token in the control plane's
        # discovery file: no flags at all.
        local = run("--json", "list", GLIDEX_HOME=str(plane.home))
        assert local.returncode == 0, local.stderr
        assert json.loads(local.stdout) == []
    finally:
        plane.stop()


def test_events_stream_as_json_lines(cp, client_home):
    watcher = subprocess.Popen([sys.executable, "-m", "gxctl", "--url", cp.url, "--json",
                                "events"], env=gx_env(client_home), stdout=subprocess.PIPE)
    try:
        time.sleep(1.5)  # let it subscribe
        cp.http.post("/vms", json=vm_body("evented"))
        cp.http.delete("/vms/evented")
        out = b""
        deadline = time.monotonic() + 20
        while out.count(b"\n") < 2:
            assert time.monotonic() < deadline, f"events not seen; got {out!r}"
            if select.select([watcher.stdout], [], [], 0.2)[0]:
                out += os.read(watcher.stdout.fileno(), 65536)
        seen = [json.loads(line) for line in out.splitlines()]
        assert [(e["type"], e["vm"]["name"]) for e in seen] == \
            [("created", "evented"), ("deleted", "evented")]
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_piped_commands_run_as_a_script(cp, client_home):
    script = "health\nget nope\nlist\n"
    result = subprocess.run([sys.executable, "-m", "gxctl", "--url", cp.url], input=script,
                            capture_output=True, text=True, env=gx_env(client_home), timeout=60)
    assert result.returncode == 1  # one line failed
    assert "status" in result.stdout and "Error: VM not found: nope" in result.stderr


# -- the interactive shell under a real pty ----------------------------------------------


def test_history_survives_a_restart(cp, client_home, terms):
    first = shell(cp, client_home, terms)
    run_line(first, "health", "status")
    first.send("\x04")  # Ctrl-D exits
    assert first.wait_exit() == 0
    assert (client_home / "gxctl_history").exists()

    second = shell(cp, client_home, terms)
    second.send("\x1b[A")  # Up
    second.wait_line(rf"{SHELL_PROMPT} health")
    second.send("\r")
    second.expect("status", second.mark() - 1)
    second.send("exit\r")
    assert second.wait_exit() == 0


def test_tab_completes_commands_and_vm_names(cp, client_home, terms):
    cp.http.post("/vms", json=vm_body("tabby-cat"))
    term = shell(cp, client_home, terms)
    term.send("hea\t")
    term.wait_line(rf"{SHELL_PROMPT} health\s*")
    term.send("\x03")  # Ctrl-C drops the line
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    term.send("get tab\t")
    term.wait_line(rf"{SHELL_PROMPT} get tabby-cat\s*")
    mark = term.mark()
    term.send("\r")
    term.expect("tabby-cat", mark)
    term.expect(SHELL_PROMPT, mark)
    cp.http.delete("/vms/tabby-cat")


def test_create_reasks_bad_numbers(cp, client_home, terms):
    term = shell(cp, client_home, terms)
    mark = term.mark()
    term.send("create\r")
    term.expect("Name:", mark)
    term.send("\r")
    mark = term.expect("Name is required.", mark)
    term.expect("Name:", mark)
    term.send("asked\r")
    mark = term.expect("vCPUs [1]:", mark)
    term.send("abc\r")
    mark = term.expect("'abc' is not a whole number; try again.", mark)
    mark = term.expect("vCPUs [1]:", mark)
    term.send("0\r")
    mark = term.expect("vCPUs must be between 1 and 32; try again.", mark)
    term.send("2\r")
    mark = term.expect("Memory (MiB) [512]:", mark)
    term.send("lots\r")
    mark = term.expect("'lots' is not a whole number", mark)
    mark = term.expect("Memory (MiB) [512]:", mark)
    term.send("8\r")
    mark = term.expect("Memory (MiB) must be at least 16", mark)
    term.send("300\r")
    mark = term.expect(f"Kernel image [{client_home / 'vmlinuz'}]:", mark)
    term.send("\r")
    mark = term.expect(f"Root filesystem [{client_home / 'rootfs.ext4'}]:", mark)
    term.send("/custom/rootfs.ext4\r")
    mark = term.expect("Kernel args (optional):", mark)
    term.send("\r")
    mark = term.expect("Hypervisor (firecracker/qemu, empty = server default):", mark)
    term.send("xen\r")
    mark = term.expect("'xen' is not one of firecracker, qemu", mark)
    term.send("qemu\r")
    term.expect("Created asked", mark)
    term.expect(SHELL_PROMPT, mark)
    vm = cp.http.get("/vms/asked").json()
    assert (vm["vcpu_count"], vm["mem_size_mib"], vm["hypervisor"]) == (2, 300, "qemu")
    assert vm["kernel_image_path"] == str(client_home / "vmlinuz")
    assert (vm["rootfs_path"], vm["kernel_args"]) == ("/custom/rootfs.ext4", None)

    # Ctrl-C in the middle of the questions cancels the create; the shell carries on.
    mark = term.mark()
    term.send("create\r")
    term.expect("Name:", mark)
    term.send("never\r")
    term.expect("vCPUs [1]:", mark)
    term.send("\x03")
    term.expect("Error: cancelled", mark)
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    assert cp.http.get("/vms/never").status_code == 404
    cp.http.delete("/vms/asked")


def test_shell_errors_ctrl_c_delete_confirmation_and_ctrl_d(cp, client_home, terms):
    cp.http.post("/vms", json=vm_body("keepme"))
    term = shell(cp, client_home, terms)
    run_line(term, "get nope", "Error: VM not found: nope")
    run_line(term, "frobnicate", "Error: unknown command 'frobnicate'; type 'help'")
    run_line(term, "stop keepme --forse", "Error: unrecognized arguments: --forse")
    run_line(term, "help", "connect")
    term.send("delete keepme")
    term.send("\x03")  # cancels the line: nothing runs
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    mark = term.mark()
    term.send("delete keepme\r")
    term.expect("Delete VM keepme (created)? [y/N]:", mark)
    term.send("\r")  # the default is no
    term.expect("Not deleted.", mark)
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    assert cp.http.get("/vms/keepme").status_code == 200
    mark = term.mark()
    term.send("delete keepme\r")
    term.expect("[y/N]:", mark)
    term.send("y\r")
    term.expect("Deleted keepme", mark)
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    assert cp.http.get("/vms/keepme").status_code == 404
    term.send("\x04")
    assert term.wait_exit() == 0


# -- a real guest -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guest(cp: ControlPlane, sample_guest: Path, tmp_path_factory) -> str:
    """One sample guest, created and started through the API, at its shell prompt."""
    rootfs = tmp_path_factory.mktemp("gxguest") / "rootfs.ext4"
    shutil.copyfile(sample_guest / "rootfs.ext4", rootfs)
    created = cp.http.post("/vms", json={
        "name": GUEST, "vcpu_count": 1, "mem_size_mib": 256, "hypervisor": "qemu",
        "kernel_image_path": str(sample_guest / "vmlinuz"), "rootfs_path": str(rootfs)})
    assert created.status_code == 201, created.text
    wait_for_guest_prompt(cp)
    return GUEST


def wait_for_guest_prompt(cp: ControlPlane) -> None:
    """Start the guest if it is not running and wait for its prompt in the log."""
    if cp.http.get(f"/vms/{GUEST}").json()["state"] != "running":
        started = cp.http.post(f"/vms/{GUEST}/start")
        assert started.status_code == 200, started.text
    deadline = time.monotonic() + 90
    while PROMPT not in cp.http.get(f"/vms/{GUEST}/log", params={"tail_bytes": 4096}).content:
        assert time.monotonic() < deadline, "the guest never showed its prompt"
        time.sleep(0.2)


def attach(term: Term, name: str = GUEST, escape: str = "Ctrl+]") -> None:
    term.expect(f"Connected to {name}. Escape: {escape}")
    mark = term.mark()
    term.send("\r")
    term.expect(PROMPT, mark)


@pytest.mark.guest
def test_connect_from_the_shell_and_detach_back_to_the_prompt(cp, guest, client_home, terms):
    wait_for_guest_prompt(cp)
    term = shell(cp, client_home, terms)
    term.send(f"connect {guest}\r")
    attach(term)
    mark = term.mark()
    term.send("echo $((6*7))\r")
    term.expect(b"\r\n42\r\n" + PROMPT, mark)
    mark = term.mark()
    term.send("\x1d")  # Ctrl+]
    term.expect(f"Detached from {guest}", mark)
    term.expect(SHELL_PROMPT, mark)
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    # The terminal is sane again: typed text echoes at the prompt and commands run.
    term.send("health")
    term.wait_line(rf"{SHELL_PROMPT} health")
    mark = term.mark()
    term.send("\r")
    term.expect("status   ok", mark)
    term.wait_line(rf"{SHELL_PROMPT}\s*")
    term.send("exit\r")
    assert term.wait_exit() == 0


@pytest.mark.guest
def test_two_sessions_share_the_console_and_log_follows(cp, guest, client_home, terms):
    wait_for_guest_prompt(cp)
    env = gx_env(client_home)
    gxctl = [sys.executable, "-m", "gxctl", "--url", cp.url, "connect", guest]
    local = Term([*gxctl, "--via", "socket"], env)
    remote = Term([*gxctl, "--via", "ws", "--escape", "^a"], env)
    follow = Term([sys.executable, "-m", "gxctl", "--url", cp.url, "log", guest, "--tail",
                   "100", "--follow"], env)
    terms += [local, remote, follow]
    cooked = lflags(local)
    assert cooked & termios.ECHO and cooked & termios.ICANON
    attach(local)
    attach(remote, escape="Ctrl+A")
    assert not lflags(local) & (termios.ECHO | termios.ICANON)  # raw while attached

    marks = local.mark(), remote.mark(), follow.mark()
    local.send("echo from-local-$((1+2))\r")
    for term, mark in zip((local, remote, follow), marks, strict=True):
        term.expect(PROMPT, term.expect(b"from-local-3\r", mark))
    marks = local.mark(), remote.mark(), follow.mark()
    remote.send("echo from-remote-$((2+2))\r")
    for term, mark in zip((local, remote, follow), marks, strict=True):
        term.expect(PROMPT, term.expect(b"from-remote-4\r", mark))
    assert cp.http.get(f"/vms/{guest}/console").json()["clients"] >= 2

    # Typing the escape twice sends one to the guest; another session's escape is an ordinary
    # key. The guest's `read` counts the bytes that arrived.
    for term, keys in ((local, b"\x1d\x1d"), (remote, b"\x1d")):
        mark = term.mark()
        term.send(b"read x\r")
        term.expect(b"read x\r", mark)
        time.sleep(0.3)
        term.send(keys)
        time.sleep(0.3)
        term.send(b"\r")
        term.send(b"echo len=${#x}\r")
        term.expect(b"len=1\r", mark)
    mark = local.mark()
    remote.send("\x01")
    remote.expect(f"Detached from {guest}")
    assert remote.wait_exit() == 0
    local.send("\x1d")
    local.expect(f"Detached from {guest}", mark)
    assert lflags(local) == cooked  # the terminal is back as it was
    assert local.wait_exit() == 0
    follow.child.sendintr()
    assert follow.wait_exit() == 0


@pytest.mark.guest
def test_connection_drop_restores_the_terminal(cp, guest, client_home, terms):
    wait_for_guest_prompt(cp)
    term = Term([sys.executable, "-m", "gxctl", "--url", cp.url, "connect", guest],
                gx_env(client_home))
    terms.append(term)
    cooked = lflags(term)
    attach(term)
    restarted = cp.http.post(f"/vms/{guest}/restart")  # the old console goes away with the VMM
    assert restarted.status_code == 200, restarted.text
    term.expect("Connection closed")
    assert term.wait_exit() == 1
    assert lflags(term) == cooked
    wait_for_guest_prompt(cp)


# -- pure parts: escape key, byte pump, terminal, prompts, grammar, settings --------------


@pytest.mark.parametrize(("spec", "byte", "shown"), [
    ("^]", 0x1D, "Ctrl+]"), ("^a", 0x01, "Ctrl+A"), ("^A", 0x01, "Ctrl+A"),
    ("^?", 0x7F, "Ctrl+?"), ("~", 0x7E, "~"),
])
def test_parse_escape(spec, byte, shown):
    assert parse_escape(spec) == byte
    assert describe_escape(byte) == shown


@pytest.mark.parametrize("spec", ["", "^1", "^^^", "ab", "é"])
def test_parse_escape_refuses_nonsense(spec):
    with pytest.raises(ValueError):
        parse_escape(spec)


def test_escape_filter():
    keys = EscapeFilter(0x1D)
    assert keys.feed(b"ls\r") == b"ls\r" and not keys.pending
    assert keys.feed(b"ab\x1d") == b"ab" and keys.pending and not keys.detached
    assert keys.feed(b"\x1dcd") == b"\x1dcd" and not keys.detached  # twice sends one
    keys.feed(b"\x1d")
    keys.timeout()  # nothing followed: detach
    assert keys.detached
    other = EscapeFilter(0x1D)
    assert other.feed(b"x\x1dyz") == b"x" and other.detached  # escape then another key


def pty_pair() -> tuple[int, int]:
    master, slave = os.openpty()
    return master, slave


def test_pump_detaches_passes_double_escapes_and_shows_output():
    ours, theirs = socket.socketpair()
    transport = SocketTransport(ours, "test socket")
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(
        pump(transport, stdin_r, stdout_w, 0x1D, escape_wait=0.2)))
    thread.start()
    theirs.sendall(b"guest says hi")
    assert os.read(stdout_r, 100) == b"guest says hi"
    os.write(stdin_w, b"abc\x1d\x1dxyz")
    received = b""
    while len(received) < 7:
        received += theirs.recv(100)
    assert received == b"abc\x1dxyz"
    os.write(stdin_w, b"\x1d")
    thread.join(5)
    assert result == [DETACHED]
    assert theirs.recv(100) == b""  # the connection was closed on detach
    for fd in (stdin_r, stdin_w, stdout_r, stdout_w):
        os.close(fd)
    theirs.close()


def test_pump_reports_a_dropped_connection_and_stdin_eof():
    ours, theirs = socket.socketpair()
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    theirs.close()
    assert pump(SocketTransport(ours, "t"), stdin_r, stdout_w, 0x1D) == CLOSED
    ours, theirs = socket.socketpair()
    os.close(stdin_w)  # a pipe that ends: show output a moment longer, then leave
    assert pump(SocketTransport(ours, "t"), stdin_r, stdout_w, 0x1D, eof_linger=0.1) == STDIN_EOF
    theirs.close()
    for fd in (stdin_r, stdout_r, stdout_w):
        os.close(fd)


def test_raw_terminal_is_restored_even_on_error():
    master, slave = pty_pair()
    try:
        before = termios.tcgetattr(slave)
        with pytest.raises(RuntimeError), raw_terminal(slave):
            raw = termios.tcgetattr(slave)
            assert not raw[3] & (termios.ECHO | termios.ICANON | termios.ISIG)
            raise RuntimeError("connection dropped")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def answers(*lines: str):
    it = iter(lines)
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(it)

    return ask, asked


def test_ask_int_reasks_until_valid_and_never_defaults_silently():
    said: list[str] = []
    ask, asked = answers("abc", "")
    assert ask_int(ask, "vCPUs", 1, 1, 32, say=said.append) == 1  # only an empty answer defaults
    assert said == ["'abc' is not a whole number; try again."]
    ask, asked = answers("0", "33", "4.5", "4")
    said.clear()
    assert ask_int(ask, "vCPUs", 1, 1, 32, say=said.append) == 4
    assert len(asked) == 4 and len(said) == 3


def test_ask_create_asks_only_what_is_missing(tmp_path):
    ask, asked = answers("", "", "", "console=ttyS0 quiet", "")
    body = ask_create(ask, {"name": "given", "vcpu_count": 2}, tmp_path / "k", tmp_path / "r",
                      say=lambda _: None)
    assert body == {"name": "given", "vcpu_count": 2, "mem_size_mib": 512,
                    "kernel_image_path": str(tmp_path / "k"),
                    "rootfs_path": str(tmp_path / "r"), "kernel_args": "console=ttyS0 quiet"}
    assert [q.split(" [")[0].split(" (")[0] for q in asked] == \
        ["Memory", "Kernel image", "Root filesystem", "Kernel args", "Hypervisor"]


def test_confirm_is_no_unless_yes():
    assert confirm(answers("y")[0], "Delete?")
    assert confirm(answers("YES")[0], "Delete?")
    assert not confirm(answers("")[0], "Delete?")
    assert not confirm(answers("n")[0], "Delete?")


def test_one_shot_grammar():
    parser = build_parser()
    args = parser.parse_args(["--json", "stop", "web", "--force"])
    assert (args.json, args.command, args.vm, args.force) == (True, "stop", "web", True)
    args = parser.parse_args(["log", "web", "--tail", "100", "-f", "--json"])
    assert (args.tail, args.follow, args.json) == (100, True, True)
    args = parser.parse_args(["connect", "web", "--escape", "^a", "--via", "ws"])
    assert (args.escape, args.via) == ("^a", "ws")
    args = parser.parse_args(["create", "--name", "web", "--vcpus", "2", "--mem", "1024",
                              "--kernel", "K", "--rootfs", "R", "--kernel-args", "a b",
                              "--hypervisor", "qemu"])
    assert (args.name, args.vcpu_count, args.mem_size_mib, args.kernel_image_path,
            args.rootfs_path, args.kernel_args, args.hypervisor) == \
        ("web", 2, 1024, "K", "R", "a b", "qemu")
    assert parser.parse_args([]).command is None  # the shell
    for bad in (["create", "--vcpus", "x"], ["stop", "web", "--forse"],
                ["create", "--hypervisor", "xen"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(bad)
        assert exc.value.code == 2


def test_completer_offers_commands_then_vm_names():
    from prompt_toolkit.document import Document

    fetched: list[int] = []

    def names() -> list[str]:
        fetched.append(1)
        return ["web", "db", "webcache"]

    completer = GxctlCompleter(names)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), None)]

    # Completions end in a space, as in a shell, so the next word follows at once.
    assert complete("ge") == ["get "]

    assert complete("st") == ["start ", "stop "]
    assert complete("start we") == ["web ", "webcache "]
    assert complete("connect ") == ["web ", "db ", "webcache "]
    assert complete("list ") == []
    assert complete("stop web --") == []
    assert len(fetched) == 1  # cached between keystrokes


def test_settings_precedence(tmp_path, monkeypatch):
    home = tmp_path / "h"
    monkeypatch.setenv("GLIDEX_HOME", str(home))
    monkeypatch.delenv("GLIDEX_URL", raising=False)
    monkeypatch.delenv("GLIDEX_TOKEN", raising=False)
    assert resolve().url == DEFAULT_URL and resolve().token is None
    (home / "run").mkdir(parents=True)
    (home / "run" / "control-plane.json").write_text(
        json.dumps({"url": "http://127.0.0.1:9999", "token": "disc"}))
    assert (resolve().url, resolve().token) == ("http://127.0.0.1:9999", "disc")
    monkeypatch.setenv("GLIDEX_URL", "10.0.0.5:8080")
    assert (resolve().url, resolve().token) == ("http://10.0.0.5:8080", None)
    monkeypatch.setenv("GLIDEX_TOKEN", "env")
    assert resolve().token == "env"
    assert (resolve("http://h:1/", "flag").url, resolve("http://h:1/", "flag").token) == \
        ("http://h:1", "flag")


def test_sse_parsing():
    lines = [": connected", "", "event: state",
             'data: {"type": "state", "vm": {"name": "web", "state": "running"}, "at": 1}',
             "", ": keepalive", "", "event: overflow", "data: {}", ""]
    events = list(_parse_sse(iter(lines)))
    assert [e["type"] for e in events] == ["state", "overflow"]
    assert events[0]["vm"]["name"] == "web"


def test_log_output_drops_the_guests_terminal_queries():
    """Shown on our terminal, a guest's ESC[6n would make our terminal answer into our input."""
    from gxctl.commands import TERMINAL_QUERIES

    raw = b"/ # \x1b[6necho hi\r\n\x1b[1;31mred\x1b[0m \x1b[c\x1b[>0c\x1b[5n"
    assert TERMINAL_QUERIES.sub(b"", raw) == b"/ # echo hi\r\n\x1b[1;31mred\x1b[0m "
