"""Tests of the Firecracker TEST STAND-IN (tests/standins/), run as a real process.

The stand-in is what Glidex's Firecracker backend talks to on machines without Firecracker or
working KVM, so these tests pin down the behaviour the backend relies on: the API is enforced as
strictly as Firecracker enforces it, phases are respected, and a real guest boots with its serial
console on the stand-in's stdio and stops the way a Firecracker guest does.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STANDIN = Path(__file__).parent / "standins" / "bin" / "firecracker"
DEV_IMAGES = Path("/root/dev-images")
BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off"  # the product's Firecracker kernel args
BANNER = b"Welcome to the Glidex sample guest"
PROMPT = b"/ # "
GUEST_BOOT_TIMEOUT = 60.0  # TCG on a loaded 2-core machine; a boot usually takes 3-5 s

pytestmark = pytest.mark.skipif(
    not os.access(STANDIN, os.X_OK), reason=f"{STANDIN} is missing or not executable"
)


# ------------------------------------------------------------------------------------------
# Fixtures and helpers


@dataclass
class GuestFiles:
    kernel: Path
    rootfs: Path  # a private copy: the guest writes to it


def _guest_source(request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """Kernel and rootfs: $GLIDEX_TEST_KERNEL/$GLIDEX_TEST_ROOTFS, else the suite's session
    ``sample_guest`` folder (vmlinuz + rootfs.ext4) if the suite has one, else /root/dev-images."""
    kernel_env = os.environ.get("GLIDEX_TEST_KERNEL")
    rootfs_env = os.environ.get("GLIDEX_TEST_ROOTFS")
    if kernel_env and rootfs_env:
        return Path(kernel_env), Path(rootfs_env)
    folder = DEV_IMAGES
    with contextlib.suppress(pytest.FixtureLookupError):
        found = request.getfixturevalue("sample_guest")
        if isinstance(found, Path) and (found / "vmlinuz").is_file():
            folder = found
    return Path(kernel_env or folder / "vmlinuz"), Path(rootfs_env or folder / "rootfs.ext4")


@pytest.fixture
def sample_guest_files(request: pytest.FixtureRequest, tmp_path: Path) -> GuestFiles:
    """The sample guest with a private copy of its rootfs; skips if the images are missing."""
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    kernel, rootfs = _guest_source(request)
    for path in (kernel, rootfs):
        if not path.is_file():
            pytest.skip(
                f"sample guest image {path} is missing: set GLIDEX_TEST_KERNEL and "
                "GLIDEX_TEST_ROOTFS, or build the sample guest (shared/guest/README.md)"
            )
    copy = tmp_path / "rootfs.ext4"
    shutil.copyfile(rootfs, copy)
    return GuestFiles(kernel, copy)


class StandIn:
    """One stand-in process with a PTY as its stdin and stdout, as a console keeper gives it."""

    def __init__(self, tmp_path: Path, *extra: str, vm_id: str = "standin-test") -> None:
        self.sock = tmp_path / "fc.sock"
        self.log = tmp_path / "fc.log"
        self.stderr_path = tmp_path / "fc.stderr"
        self.vm_id = vm_id
        self.master, slave = os.openpty()
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    str(STANDIN),
                    "--api-sock",
                    str(self.sock),
                    "--id",
                    vm_id,
                    "--log-path",
                    str(self.log),
                    "--level",
                    "Info",
                    *extra,
                ],
                stdin=slave,
                stdout=slave,
                stderr=stderr,
                start_new_session=True,
            )
        os.close(slave)
        self.output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._client: httpx.Client | None = None

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO once every holder of the slave side has gone
                return
            if not data:
                return
            with self._lock:
                self.output += data

    def out(self) -> bytes:
        with self._lock:
            return bytes(self.output)

    def wait_for_output(
        self, needle: bytes, timeout: float, start: int = 0, count: int = 1
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.out()[start:].count(needle) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"{needle!r} not on the console after {timeout} s (exit {self.proc.poll()}); "
            f"tail: {self.out()[-600:]!r}; stderr: {self.stderr()!r}"
        )

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 10.0) -> StandIn:
        deadline = time.monotonic() + timeout
        while not self.sock.exists():
            assert self.proc.poll() is None, f"stand-in exited early: {self.stderr()}"
            assert time.monotonic() < deadline, "the stand-in did not create its API socket"
            time.sleep(0.01)
        return self

    @property
    def api(self) -> httpx.Client:
        if self._client is None:
            transport = httpx.HTTPTransport(uds=str(self.sock))
            self._client = httpx.Client(
                transport=transport, base_url="http://localhost", timeout=30
            )
        return self._client

    def state(self) -> str:
        response = self.api.get("/")
        assert response.status_code == 200, response.text
        return response.json()["state"]

    def qemu_pids(self) -> list[int]:
        pids = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (task / "children").read_text().split()]
        return pids

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self._reader.join(5)


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    spec = load_module().find_spec()
    if not spec.is_file():
        pytest.skip(f"the Firecracker API definition {spec} is missing")
    s = StandIn(tmp_path).wait_ready()
    yield s
    s.close()


def assert_fault(response: httpx.Response, *needles: str) -> str:
    assert response.status_code == 400, (response.status_code, response.text)
    fault = response.json()["fault_message"]
    for needle in needles:
        assert needle in fault, f"{needle!r} not in {fault!r}"
    return fault


def configure_guest(s: StandIn, guest: GuestFiles, boot_args: str = BOOT_ARGS) -> None:
    for method, path, body in (
        ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
        ("PUT", "/boot-source", {"kernel_image_path": str(guest.kernel), "boot_args": boot_args}),
        (
            "PUT",
            "/drives/rootfs",
            {
                "drive_id": "rootfs",
                "path_on_host": str(guest.rootfs),
                "is_root_device": True,
                "is_read_only": False,
            },
        ),
    ):
        response = s.api.request(method, path, json=body)
        assert response.status_code == 204, (path, response.text)


@functools.cache
def load_module():
    """The stand-in module itself, for tests of its pure functions."""
    path = STANDIN.parent.parent / "firecracker_standin.py"
    spec = importlib.util.spec_from_file_location("firecracker_standin", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def process_gone(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X")  # a zombie left for init to reap is gone too


# ------------------------------------------------------------------------------------------
# The API, without a guest


def test_instance_info_and_defaults(standin: StandIn) -> None:
    info = standin.api.get("/")
    assert info.status_code == 200
    assert info.json() == {
        "id": "standin-test",
        "state": "Not started",
        "vmm_version": "1.16.1-standin",
        "app_name": "Firecracker",
    }
    version = standin.api.get("/version").json()
    assert version == {"firecracker_version": "1.16.1-standin"}
    machine = standin.api.get("/machine-config").json()
    assert (machine["vcpu_count"], machine["mem_size_mib"]) == (1, 128)


def test_unknown_field_is_refused_and_named(standin: StandIn) -> None:
    response = standin.api.put(
        "/machine-config", json={"vcpu_count": 1, "mem_size_mib": 128, "bogus": 1}
    )
    assert_fault(response, "unknown field `bogus`")
    nested = standin.api.put(
        "/drives/rootfs",
        json={
            "drive_id": "rootfs",
            "path_on_host": "/x",
            "is_root_device": True,
            "is_read_only": True,
            "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1, "burst": 5}},
        },
    )
    assert_fault(nested, "unknown field `burst`", "rate_limiter.bandwidth")


def test_wrong_type_is_refused(standin: StandIn) -> None:
    assert_fault(
        standin.api.put("/machine-config", json={"vcpu_count": "2", "mem_size_mib": 128}),
        "invalid type",
        "vcpu_count",
    )
    assert_fault(
        standin.api.put("/machine-config", json={"vcpu_count": 1.0, "mem_size_mib": 128}),
        "vcpu_count",
    )
    assert_fault(
        standin.api.put("/machine-config", json={"vcpu_count": 33, "mem_size_mib": 128}),
        "vcpu_count",
    )
    assert_fault(standin.api.put("/vm", json={"state": "Paused"}), "Invalid request method")
    assert_fault(
        standin.api.put("/actions", json={"action_type": "Reboot"}),
        "unknown variant",
        "action_type",
    )
    assert_fault(standin.api.put("/actions", content=b"{not json"), "deserializing")


def test_missing_required_field_is_refused(standin: StandIn) -> None:
    assert_fault(
        standin.api.put("/boot-source", json={"boot_args": BOOT_ARGS}),
        "missing field `kernel_image_path`",
    )
    assert_fault(
        standin.api.put("/machine-config", json={"vcpu_count": 1}), "missing field `mem_size_mib`"
    )
    assert_fault(
        standin.api.put("/network-interfaces/eth0", json={"iface_id": "eth0"}),
        "missing field `host_dev_name`",
    )
    assert_fault(standin.api.put("/machine-config"), "Empty PUT request")


def test_path_id_must_be_valid_and_match_body(standin: StandIn, tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    body = {
        "drive_id": "rootfs",
        "path_on_host": str(disk),
        "is_root_device": True,
        "is_read_only": True,
    }
    assert_fault(standin.api.put("/drives/other", json=body), "does not match")
    assert_fault(
        standin.api.put("/drives/root-fs", json={**body, "drive_id": "root-fs"}),
        "alphanumeric characters and underscores",
    )
    assert_fault(
        standin.api.put(
            "/network-interfaces/eth1", json={"iface_id": "eth0", "host_dev_name": "tap0"}
        ),
        "does not match",
    )
    assert standin.api.put("/drives/rootfs", json=body).status_code == 204
    drives = standin.api.get("/vm/config").json()["drives"]
    assert [d["drive_id"] for d in drives] == ["rootfs"]


def test_unknown_path_or_method_is_400(standin: StandIn) -> None:
    assert_fault(standin.api.get("/nope"), "Invalid request method and/or path")
    assert_fault(standin.api.delete("/"), "Invalid request method and/or path")
    assert_fault(
        standin.api.patch("/boot-source", json={"kernel_image_path": "/k"}),
        "Invalid request method and/or path",
    )


def test_files_are_opened_when_configured(standin: StandIn, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-vmlinux"
    assert_fault(
        standin.api.put("/boot-source", json={"kernel_image_path": str(missing)}), str(missing)
    )
    missing_disk = tmp_path / "no-such-disk.ext4"
    assert_fault(
        standin.api.put(
            "/drives/rootfs",
            json={
                "drive_id": "rootfs",
                "path_on_host": str(missing_disk),
                "is_root_device": True,
                "is_read_only": False,
            },
        ),
        str(missing_disk),
    )
    comma = tmp_path / "a,b.img"
    comma.write_bytes(b"\0" * 4096)
    assert_fault(
        standin.api.put(
            "/drives/rootfs",
            json={
                "drive_id": "rootfs",
                "path_on_host": str(comma),
                "is_root_device": True,
                "is_read_only": False,
            },
        ),
        "comma",
    )


def test_phases_before_start(standin: StandIn, tmp_path: Path) -> None:
    assert_fault(standin.api.patch("/vm", json={"state": "Paused"}), "before starting")
    assert_fault(
        standin.api.put("/actions", json={"action_type": "SendCtrlAltDel"}), "before starting"
    )
    assert_fault(
        standin.api.put("/actions", json={"action_type": "InstanceStart"}), "kernel configuration"
    )
    assert standin.api.put("/actions", json={"action_type": "FlushMetrics"}).status_code == 204
    assert standin.state() == "Not started"


def test_config_is_reported_back(standin: StandIn, tmp_path: Path) -> None:
    assert standin.api.patch("/machine-config", json={"mem_size_mib": 256}).status_code == 204
    assert (
        standin.api.put("/metrics", json={"metrics_path": str(tmp_path / "m.json")}).status_code
        == 204
    )
    assert_fault(
        standin.api.put("/metrics", json={"metrics_path": str(tmp_path / "m2.json")}),
        "Reinitialization",
    )
    assert standin.api.put("/actions", json={"action_type": "FlushMetrics"}).status_code == 204
    assert (tmp_path / "m.json").read_text().count("\n") == 1
    assert standin.api.put("/mmds", json={"a": {"b": 1}}).status_code == 204
    assert standin.api.patch("/mmds", json={"a": {"c": 2}}).status_code == 204
    assert standin.api.get("/mmds").json() == {"a": {"b": 1, "c": 2}}
    config = standin.api.get("/vm/config").json()
    assert config["machine-config"]["mem_size_mib"] == 256
    assert config["machine-config"]["vcpu_count"] == 1
    assert config["metrics"] == {"metrics_path": str(tmp_path / "m.json")}


def test_every_documented_route_is_served() -> None:
    """Routes come from the YAML, not a retyped list: every path+method has a route and every
    body definition a validator that refuses unknown fields."""
    import yaml

    fc = load_module()
    spec = fc.find_spec()
    if not spec.is_file():
        pytest.skip(f"{spec} is missing")
    api = fc.ApiSpec(spec)
    doc = yaml.safe_load(spec.read_text())
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert {(r.method, r.template) for r in api.routes} == documented
    for route in api.routes:
        if route.body_def and route.body_def != "MmdsContentsObject":
            assert list(route.validator.iter_errors({"surely_unknown": 1})), route


def test_boot_args_translation() -> None:
    fc = load_module()
    product = "console=ttyS0 reboot=k panic=1 pci=off"
    root = {"drive_id": "rootfs", "is_root_device": True, "is_read_only": False}
    assert fc.translate_boot_args(product, root) == (
        "console=ttyS0 reboot=k panic=1 root=/dev/nvme0n1 rw"
    )
    assert fc.translate_boot_args(
        product + " root=/dev/vda1 ro", {**root, "is_read_only": True}
    ).endswith("root=/dev/nvme0n1p1 ro root=/dev/nvme0n1 ro")
    assert fc.translate_boot_args(product, None) == "console=ttyS0 reboot=k panic=1"
    assert "8250.nr_uarts=0" in fc.translate_boot_args(None, None)  # Firecracker's default


def test_log_goes_to_log_path_never_stdout(standin: StandIn) -> None:
    for _ in range(3):  # one keep-alive connection, several requests
        standin.api.get("/")
    assert_fault(standin.api.get("/nope"), "Invalid")
    log = standin.log.read_text()
    assert "TEST STAND-IN" in log and '"/nope"' in log
    time.sleep(0.2)
    assert standin.out() == b""


def test_refuses_existing_socket_path(tmp_path: Path) -> None:
    sock = tmp_path / "fc.sock"
    sock.write_text("in the way")
    proc = subprocess.run(
        [str(STANDIN), "--api-sock", str(sock), "--id", "t1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert str(sock) in proc.stderr and "Failed to open the API socket" in proc.stderr
    assert proc.stdout == ""
    assert sock.read_text() == "in the way"


@pytest.mark.parametrize("bad_id", ["", "has_underscore", "x" * 65, "spa ce"])
def test_bad_instance_id_exits_153(tmp_path: Path, bad_id: str) -> None:
    proc = subprocess.run(
        [str(STANDIN), "--api-sock", str(tmp_path / "s"), "--id", bad_id],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 153, proc.stderr
    assert not (tmp_path / "s").exists()


def test_unknown_argument_exits_153(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(STANDIN), "--api-sock", str(tmp_path / "s"), "--frobnicate"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 153


def test_sigterm_before_start_kills_it(standin: StandIn) -> None:
    standin.proc.send_signal(signal.SIGTERM)
    assert standin.proc.wait(10) == -signal.SIGTERM


# ------------------------------------------------------------------------------------------
# With the sample guest under QEMU/TCG (seconds each)


@pytest.mark.guest
def test_guest_boots_pauses_resumes_and_stops(
    standin: StandIn, sample_guest_files: GuestFiles
) -> None:
    s = standin
    # With root= as well (Firecracker appends its own too): translated to the NVMe disk.
    configure_guest(s, sample_guest_files, BOOT_ARGS + " root=/dev/vda rw")
    assert s.state() == "Not started"
    start = s.api.put("/actions", json={"action_type": "InstanceStart"})
    assert start.status_code == 204, start.text
    assert s.state() == "Running"
    qmp_socket = Path(str(s.sock) + ".standin-qmp")
    assert qmp_socket.exists()

    # Pre-boot calls and a second start are refused once running.
    assert_fault(
        s.api.put("/machine-config", json={"vcpu_count": 2, "mem_size_mib": 256}),
        "not supported after starting",
    )
    assert_fault(
        s.api.put("/boot-source", json={"kernel_image_path": "/k"}), "not supported after starting"
    )
    assert_fault(
        s.api.put("/actions", json={"action_type": "InstanceStart"}), "not supported after starting"
    )

    s.wait_for_output(BANNER, GUEST_BOOT_TIMEOUT)
    s.wait_for_output(PROMPT, GUEST_BOOT_TIMEOUT)
    s.type(b"while true; do echo tick; sleep 0.2; done\r")
    mark = len(s.out())
    # Line ends are the PTY's business (ONLCR stays on, with Firecracker too), so count words.
    s.wait_for_output(b"tick", 20, start=mark, count=3)

    assert s.api.patch("/vm", json={"state": "Paused"}).status_code == 204
    assert s.api.patch("/vm", json={"state": "Paused"}).status_code == 204  # idempotent
    assert s.state() == "Paused"
    time.sleep(0.3)  # bytes already on their way through the PTY
    frozen = len(s.out())
    time.sleep(2.0)
    assert len(s.out()) == frozen, f"output while paused: {s.out()[frozen:]!r}"

    assert s.api.patch("/vm", json={"state": "Resumed"}).status_code == 204
    assert s.api.patch("/vm", json={"state": "Resumed"}).status_code == 204
    assert s.state() == "Running"
    s.wait_for_output(b"tick", 10, start=frozen, count=2)

    assert s.api.put("/actions", json={"action_type": "SendCtrlAltDel"}).status_code == 204
    assert s.proc.wait(10) == 0
    assert not qmp_socket.exists()
    assert s.sock.exists()  # like Firecracker, the API socket is left for the caller to remove
    assert "Running Firecracker" in s.log.read_text()


@pytest.mark.guest
def test_guest_poweroff_leaves_the_process_running(
    standin: StandIn, sample_guest_files: GuestFiles
) -> None:
    """On x86 a Firecracker guest's poweroff does not end the process; the caller must kill it."""
    configure_guest(standin, sample_guest_files)
    assert standin.api.put("/actions", json={"action_type": "InstanceStart"}).status_code == 204
    standin.wait_for_output(PROMPT, GUEST_BOOT_TIMEOUT)
    standin.type(b"poweroff -f\r")
    standin.wait_for_output(b"Power down", 20)
    time.sleep(1.0)
    assert standin.proc.poll() is None
    assert standin.state() == "Running"
    standin.proc.send_signal(signal.SIGTERM)
    assert standin.proc.wait(10) == -signal.SIGTERM


@pytest.mark.guest
@pytest.mark.parametrize(
    ("sig", "expected"),
    [
        pytest.param(signal.SIGKILL, -signal.SIGKILL, id="SIGKILL"),
        pytest.param(signal.SIGTERM, -signal.SIGTERM, id="SIGTERM"),
        pytest.param(signal.SIGHUP, 156, id="SIGHUP-exits-156"),
    ],
)
def test_qemu_does_not_outlive_the_standin(
    standin: StandIn, sample_guest_files: GuestFiles, sig: signal.Signals, expected: int
) -> None:
    configure_guest(standin, sample_guest_files)
    assert standin.api.put("/actions", json={"action_type": "InstanceStart"}).status_code == 204
    qemu = standin.qemu_pids()
    assert len(qemu) == 1, qemu
    standin.proc.send_signal(sig)
    assert standin.proc.wait(10) == expected
    deadline = time.monotonic() + 5
    while not process_gone(qemu[0]):
        assert time.monotonic() < deadline, f"QEMU {qemu[0]} outlived the stand-in ({sig!r})"
        time.sleep(0.05)
