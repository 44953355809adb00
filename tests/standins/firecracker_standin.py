"""TEST STAND-IN for Firecracker. This is NOT Firecracker and gives none of its isolation.

There is no Firecracker binary and no working KVM on the development machines, so Glidex's
Firecracker backend is exercised against this program instead. Tests put ``tests/standins/bin`` on
PATH, where a launcher named ``firecracker`` runs ``main()`` below, and the backend runs unchanged.

What it does, to the extent a test can observe it:

* Command line like Firecracker's: ``--api-sock PATH --id ID [--log-path L] [--level Info]
  [--boot-timer] ...``. ``--id`` must match ``[A-Za-z0-9-]{1,64}`` (else exit 153, bad arguments);
  an existing socket path is refused (exit 1, message on stderr). Log lines go to ``--log-path``
  (created or appended), never to stdout: stdout is the guest's serial console.
* HTTP/1.1 with keep-alive on the Unix socket. Every request body is checked against the official
  API definition (``firecracker-api.yaml``, Swagger 2.0), parsed at start-up rather than retyped.
  Two rules are added to every schema derived from it, because Firecracker's serde deserializers
  enforce them although the YAML does not say so: objects refuse unknown fields
  (``additionalProperties: false``) and integers are unsigned (``minimum: 0``). A PATCH that reuses
  a PUT's definition (``/machine-config``) is a partial update, so its ``required`` list is dropped.
  Resource ids in the path must match ``[A-Za-z0-9_]+`` and equal the id in the body.
  Errors are 400 with ``{"fault_message": ...}``; success is 204 (PUT/PATCH) or 200 + JSON (GET).
* Pre-boot and post-boot phases as Firecracker has them; files (kernel, initrd, drives) are opened
  when their PUT is applied, so a missing file is a 400 from that PUT.
* ``InstanceStart`` boots the configured kernel under QEMU with TCG (software emulation) as a child
  process that shares the stand-in's stdin and stdout, so the guest's serial console is on the
  stand-in's stdio exactly as with Firecracker. QEMU dies with the stand-in (PR_SET_PDEATHSIG).
  Pause/resume are QMP ``stop``/``cont``; ``SendCtrlAltDel`` is QMP ``send-key``. When the guest
  resets (``reboot=k``; see below) QEMU is ended and the stand-in exits 0, as Firecracker does.
  InstanceStart answers 204 only once QEMU runs and its QMP socket answers.

Stand-in translations (QEMU is not Firecracker; these keep the same guest booting on both):

* Disks are emulated NVMe, not virtio-blk over virtio-mmio: the sample kernel has NVMe built in but
  virtio only as modules. All drives are namespaces of one NVMe controller, root first, so the
  guest's names are deterministic: Firecracker's ``/dev/vda``, ``/dev/vdb``, ... become
  ``/dev/nvme0n1``, ``/dev/nvme0n2``, ... In ``root=`` arguments the stand-in rewrites them.
* Like Firecracker, the stand-in appends ``root=<root drive> rw|ro`` itself when a root drive is
  configured (``root=PARTUUID=...`` with a partuuid).
* ``pci=off`` is dropped: NVMe sits on PCI. Without ``boot_args`` Firecracker's default command line
  is used, which (as in Firecracker) disables the serial console.
* Machine ``pc`` (``microvm`` hangs under TCG here). QEMU runs with ``-no-reboot -no-shutdown``, so
  it stops on any guest shutdown and reports why on QMP: a guest *reset* (``reboot=k``, a triple
  fault, ``panic=1``) makes the stand-in quit QEMU and exit 0, while a guest ``poweroff`` leaves
  the process running until it is killed, as Firecracker on x86 does.

What it does NOT emulate (requests are validated and stored, but nothing happens in the guest):
network interfaces (no tap device is opened or attached), vsock, balloon, entropy, MMDS
networking (the data store itself works), CPU templates, rate limiters, metrics contents (a
FlushMetrics writes one small JSON line), memory hot-plug, huge pages. Refused with a 400 that says
"not emulated by the Firecracker test stand-in": snapshots, pmem, drive/network PATCH after boot,
balloon updates, vhost-user drives, ``serial_out_path``, ``--config-file``/``--no-api``. It does not
check the kernel's format (Firecracker wants an uncompressed ELF vmlinux; the stand-in logs a
warning and lets QEMU boot a bzImage), has no seccomp and no jailer, and its timings are QEMU/TCG's
(seconds), not Firecracker's (milliseconds).

Deliberately like Firecracker rather than tidy: the API socket file is left behind when the
process ends (Firecracker never removes it; the caller must). The stand-in's private QMP socket is
removed. SIGTERM and SIGINT stop QEMU and then kill the stand-in with that same signal (Firecracker
does not handle them and dies of them); SIGHUP stops QEMU and exits 156.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import datetime as _dt
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jsonschema
import yaml

VMM_VERSION = "1.16.1-standin"
APP_NAME = "Firecracker"

EXIT_OK = 0
EXIT_GENERIC_ERROR = 1
EXIT_BAD_ARGUMENTS = 153
EXIT_SIGHUP = 156

DEFAULT_API_SOCK = "/run/firecracker.socket"
DEFAULT_INSTANCE_ID = "anonymous-instance"
DEFAULT_PAYLOAD_LIMIT = 51200
DEFAULT_VCPUS = 1
DEFAULT_MEM_MIB = 128
# Firecracker's command line when PUT /boot-source has no boot_args (serial console disabled).
FIRECRACKER_DEFAULT_CMDLINE = (
    "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux "
    "i8042.nopnp i8042.dumbkbd"
)
MAX_CMDLINE_LEN = 2048

INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
RESOURCE_ID_RE = re.compile(r"[A-Za-z0-9_]+")
MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
VIRTIO_DISK_RE = re.compile(r"/dev/vd([a-z])(\d*)")

SPEC_ENV = "GLIDEX_FIRECRACKER_API_SPEC"
QEMU_ENV = "GLIDEX_STANDIN_QEMU"
SPEC_NAME = "firecracker-api.yaml"

MSG_NOT_AFTER_START = "The requested operation is not supported after starting the microVM."
MSG_NOT_BEFORE_START = "The requested operation is not supported before starting the microVM."
NOT_EMULATED = "not emulated by the Firecracker test stand-in"

LEVELS = {"off": 0, "error": 1, "warning": 2, "warn": 2, "info": 3, "debug": 4, "trace": 5}
SUN_PATH_MAX = 107
PR_SET_PDEATHSIG = 1
QMP_START_TIMEOUT = 20.0


class ApiError(Exception):
    """A request that fails: becomes ``{"fault_message": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --------------------------------------------------------------------------------------------
# The API definition


def find_spec() -> Path:
    """The Firecracker API YAML: $GLIDEX_FIRECRACKER_API_SPEC, else the shared copy."""
    env = os.environ.get(SPEC_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    candidates = [
        repo / "shared" / "firecracker" / SPEC_NAME,
        repo.parent / "shared" / "firecracker" / SPEC_NAME,
        Path("/work/shared/firecracker") / SPEC_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[-1]


def _strict(schema: Any) -> None:
    """Add Firecracker's unwritten rules to a Swagger schema, in place (see the module doc)."""
    if not isinstance(schema, dict):
        return
    if (schema.get("type") == "object" or "properties" in schema) and (
        "additionalProperties" not in schema
    ):
        schema["additionalProperties"] = False
    if schema.get("type") == "integer" and "minimum" not in schema:
        schema["minimum"] = 0
    for prop in schema.get("properties", {}).values():
        _strict(prop)
    for key in ("items", "additionalProperties"):
        _strict(schema.get(key))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            _strict(sub)


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern
    path_params: list[str]
    body_def: str | None
    validator: Any = None


class ApiSpec:
    """Routes and body validators built from the Swagger 2.0 definition."""

    def __init__(self, path: Path) -> None:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(path, encoding="utf-8") as f:
            doc = yaml.load(f, Loader=loader)  # noqa: S506 - a SafeLoader
        self.version = str(doc.get("info", {}).get("version", "?"))
        definitions = copy.deepcopy(doc.get("definitions", {}))
        for schema in definitions.values():
            _strict(schema)
        self.routes: list[Route] = []
        self.empty_id_prefixes: dict[str, str] = {}  # "/drives" -> "/drives/{drive_id}"
        uses: dict[tuple[str, str], str] = {}
        for template, methods in doc.get("paths", {}).items():
            params = re.findall(r"{(\w+)}", template)
            pattern = re.escape(template)
            for name in params:
                pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]*)")
            regex = re.compile(f"^{pattern}$")
            if params and template.endswith("/{" + params[-1] + "}"):
                self.empty_id_prefixes[template.rsplit("/", 1)[0]] = template
            for method, op in methods.items():
                if not isinstance(op, dict):
                    continue
                body_def = None
                for param in op.get("parameters", []):
                    if param.get("in") == "body":
                        ref = param.get("schema", {}).get("$ref", "")
                        body_def = ref.rsplit("/", 1)[-1] if ref else None
                route = Route(method.upper(), template, regex, params, body_def)
                if body_def:
                    uses[(template, method.upper())] = body_def
                self.routes.append(route)
        for route in self.routes:
            if not route.body_def:
                continue
            target: dict[str, Any] = {"$ref": f"#/definitions/{route.body_def}"}
            if route.method == "PATCH" and uses.get((route.template, "PUT")) == route.body_def:
                # A PATCH reusing the PUT's definition is a partial update: nothing required.
                partial = copy.deepcopy(definitions[route.body_def])
                partial.pop("required", None)
                target = partial
            schema = {"definitions": definitions, "allOf": [target]}
            route.validator = jsonschema.Draft4Validator(schema)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        if path != "/":
            path = path.rstrip("/")
        path_matched = False
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            path_matched = True
            if route.method == method:
                return route, m.groupdict()
        if not path_matched and path in self.empty_id_prefixes:
            template = self.empty_id_prefixes[path]
            if any(r.template == template and r.method == method for r in self.routes):
                raise ApiError("The ID cannot be empty.")
        raise ApiError(f"Invalid request method and/or path: {method} {path}.")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean `{json.dumps(value)}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "sequence"
    return "map"


def describe_schema_error(err: jsonschema.ValidationError) -> str:
    """A serde-like description of one validation error that names the field."""
    where = ".".join(str(p) for p in err.absolute_path)
    at = f" at `{where}`" if where else ""
    kind = err.validator
    if kind == "additionalProperties" and isinstance(err.instance, dict):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        expected = ", ".join(f"`{a}`" for a in allowed)
        return f"unknown field `{extra[0]}`{at}, expected one of {expected}"
    if kind == "required" and isinstance(err.instance, dict):
        missing = [r for r in err.validator_value if r not in err.instance]
        return f"missing field `{missing[0]}`{at}"
    if kind == "type":
        return f"invalid type: {_json_kind(err.instance)}{at}, expected {err.validator_value}"
    if kind == "enum":
        variants = ", ".join(f"`{v}`" for v in err.validator_value)
        return f"unknown variant {json.dumps(err.instance)}{at}, expected one of {variants}"
    if kind == "minimum":
        return f"invalid value: {_json_kind(err.instance)}{at}, expected >= {err.validator_value}"
    if kind == "maximum":
        return f"invalid value: {_json_kind(err.instance)}{at}, expected <= {err.validator_value}"
    return f"{err.message}{at}"


_ERROR_ORDER = {"type": 0, "additionalProperties": 1, "required": 2, "enum": 3}


def validate_body(validator: Any, body: Any) -> None:
    errors = list(validator.iter_errors(body))
    if not errors:
        return
    errors.sort(key=lambda e: (len(e.absolute_path), _ERROR_ORDER.get(e.validator, 9)))
    raise ApiError(
        "An error occurred when deserializing the json body of a request: "
        f"{describe_schema_error(errors[0])}."
    )


# --------------------------------------------------------------------------------------------
# Logging (to --log-path; never to stdout, which is the guest console)


class Log:
    def __init__(self, instance_id: str, level: str = "info") -> None:
        self.instance_id = instance_id
        self.level = LEVELS.get(level.lower(), 3)
        self.show_level = False
        self.show_origin = False
        self._file: Any = None
        self._lock = threading.Lock()

    def open(self, path: str) -> None:
        f = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open
        with self._lock:
            old, self._file = self._file, f
        if old is not None:
            old.close()

    def write(self, level: int, message: str) -> None:
        if level > self.level:
            return
        now = _dt.datetime.now()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}"
        thread = threading.current_thread().name
        tag = f"{self.instance_id}:{thread}"
        if self.show_level:
            tag += ":" + {1: "ERROR", 2: "WARN", 3: "INFO", 4: "DEBUG", 5: "TRACE"}[level]
        line = f"{stamp} [{tag}] {message}\n"
        with self._lock:
            target = self._file if self._file is not None else sys.stderr
            try:
                target.write(line)
                target.flush()
            except (OSError, ValueError):
                pass

    def error(self, message: str) -> None:
        self.write(1, message)

    def warn(self, message: str) -> None:
        self.write(2, message)

    def info(self, message: str) -> None:
        self.write(3, message)

    def debug(self, message: str) -> None:
        self.write(4, message)


# --------------------------------------------------------------------------------------------
# QMP


class Qmp:
    """A small QMP client. Commands are sent from the VMM thread only; a reader thread takes
    the replies and hands events (such as the guest resetting itself) to ``on_event``."""

    def __init__(self, sock: socket.socket, on_event: Callable[[dict], None]) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.wfile = sock.makefile("wb")
        self.on_event = on_event
        self.replies: queue.Queue = queue.Queue()

    @classmethod
    def connect(
        cls, path: str, proc: subprocess.Popen, timeout: float, on_event: Callable[[dict], None]
    ) -> Qmp:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise ApiError(
                    f"Start microvm error: QEMU exited with code {proc.returncode} before its "
                    "QMP socket answered (the stand-in's stderr has QEMU's message)."
                )
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise ApiError(
                        f"Start microvm error: QEMU's QMP socket did not answer in {timeout:.0f} s."
                    ) from None
                time.sleep(0.01)
                continue
            qmp = cls(sock, on_event)
            sock.settimeout(timeout)
            try:
                greeting = json.loads(qmp.rfile.readline() or b"{}")
            except (OSError, ValueError):
                greeting = {}
            if "QMP" not in greeting:
                qmp.close()
                raise ApiError("Start microvm error: no QMP greeting from QEMU.")
            sock.settimeout(None)
            threading.Thread(target=qmp._read_loop, name="fc_qmp", daemon=True).start()
            qmp.execute("qmp_capabilities")
            return qmp

    def _read_loop(self) -> None:
        while True:
            try:
                line = self.rfile.readline()
            except (OSError, ValueError):
                line = b""
            if not line:
                self.replies.put(None)
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "event" in msg:
                self.on_event(msg)
            else:
                self.replies.put(msg)

    def execute(self, command: str, arguments: dict | None = None, timeout: float = 30) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.wfile.write(json.dumps(msg).encode() + b"\n")
        self.wfile.flush()
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise ConnectionError(f"QMP did not answer {command} in {timeout:.0f} s") from None
        if reply is None:
            self.replies.put(None)  # stays closed for later callers
            raise ConnectionError("QMP connection closed")
        if "error" in reply:
            raise RuntimeError(reply["error"].get("desc", str(reply["error"])))
        return reply.get("return")

    def close(self) -> None:
        for f in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                f.close()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(127)

    return setup


# --------------------------------------------------------------------------------------------
# The microVM model


PRE, POST, ANY = "pre-boot", "post-boot", "any"


def translate_boot_args(boot_args: str | None, root: dict | None) -> str:
    """Firecracker kernel arguments -> the arguments the QEMU guest gets (see the module doc)."""
    args = boot_args if boot_args is not None else FIRECRACKER_DEFAULT_CMDLINE
    if root is not None:  # Firecracker appends these itself
        args += f" root=PARTUUID={root['partuuid']}" if root.get("partuuid") else " root=/dev/vda"
        args += " ro" if root.get("is_read_only") else " rw"
    out = []
    for token in args.split():
        if token == "pci=off":
            continue
        if token.startswith("root="):
            token = "root=" + VIRTIO_DISK_RE.sub(_nvme_name, token[5:])
        out.append(token)
    return " ".join(out)


def _nvme_name(m: re.Match) -> str:
    name = f"/dev/nvme0n{ord(m.group(1)) - ord('a') + 1}"
    return name + (f"p{m.group(2)}" if m.group(2) else "")


def _open_error(exc: OSError) -> str:
    return f"{exc.strerror} (os error {exc.errno})"


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch (what PATCH /mmds does)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


@dataclass
class VmConfig:
    machine: dict = field(
        default_factory=lambda: {
            "vcpu_count": DEFAULT_VCPUS,
            "mem_size_mib": DEFAULT_MEM_MIB,
            "smt": False,
            "track_dirty_pages": False,
            "huge_pages": "None",
        }
    )
    boot_source: dict | None = None
    drives: dict[str, dict] = field(default_factory=dict)
    net: dict[str, dict] = field(default_factory=dict)
    others: dict[str, Any] = field(default_factory=dict)  # logger, metrics, vsock, ...
    mmds: Any = None
    touched: set[str] = field(default_factory=set)  # resources configured (for snapshot/load)


class MicroVm:
    """State and actions. Every method here runs on the VMM thread (the main thread)."""

    def __init__(self, standin: StandIn) -> None:
        self.s = standin
        self.log = standin.log
        self.cfg = VmConfig()
        self.state = "Not started"
        self.qemu: subprocess.Popen | None = None
        self.qmp: Qmp | None = None
        self.metrics_path: str | None = None

    # -- dispatch -----------------------------------------------------------------------------

    PHASES: dict[tuple[str, str], str] = {
        ("GET", "/"): ANY,
        ("GET", "/version"): ANY,
        ("GET", "/machine-config"): ANY,
        ("GET", "/vm/config"): ANY,
        ("GET", "/mmds"): ANY,
        ("PUT", "/mmds"): ANY,
        ("PATCH", "/mmds"): ANY,
        ("GET", "/balloon"): ANY,
        ("GET", "/balloon/statistics"): ANY,
        ("GET", "/balloon/hinting/status"): ANY,
        ("GET", "/hotplug/memory"): ANY,
        ("PUT", "/boot-source"): PRE,
        ("PUT", "/machine-config"): PRE,
        ("PATCH", "/machine-config"): PRE,
        ("PUT", "/drives/{drive_id}"): PRE,
        ("PUT", "/network-interfaces/{iface_id}"): PRE,
        ("PUT", "/pmem/{id}"): PRE,
        ("PUT", "/logger"): PRE,
        ("PUT", "/metrics"): PRE,
        ("PUT", "/mmds/config"): PRE,
        ("PUT", "/balloon"): PRE,
        ("PUT", "/cpu-config"): PRE,
        ("PUT", "/vsock"): PRE,
        ("PUT", "/entropy"): PRE,
        ("PUT", "/serial"): PRE,
        ("PUT", "/hotplug/memory"): PRE,
        ("PUT", "/snapshot/load"): PRE,
        ("PATCH", "/vm"): POST,
        ("PATCH", "/drives/{drive_id}"): POST,
        ("PATCH", "/network-interfaces/{iface_id}"): POST,
        ("PATCH", "/pmem/{id}"): POST,
        ("PATCH", "/balloon"): POST,
        ("PATCH", "/balloon/statistics"): POST,
        ("PATCH", "/balloon/hinting/start"): POST,
        ("PATCH", "/balloon/hinting/stop"): POST,
        ("PATCH", "/hotplug/memory"): POST,
        ("PUT", "/snapshot/create"): POST,
    }

    @property
    def started(self) -> bool:
        return self.state != "Not started"

    def execute(self, route: Route, params: dict[str, str], body: Any) -> tuple[int, Any]:
        key = (route.method, route.template)
        if key == ("PUT", "/actions"):
            return self.action(body)
        phase = self.PHASES.get(key, ANY)
        if phase == PRE and self.started:
            raise ApiError(MSG_NOT_AFTER_START)
        if phase == POST and not self.started:
            raise ApiError(MSG_NOT_BEFORE_START)
        resource = re.sub(r"{\w+}", "", route.template)
        name = "h_" + route.method.lower() + re.sub(r"[^a-z]+", "_", resource).rstrip("_")
        handler = getattr(self, name, None)
        if handler is None:
            raise ApiError(f"{route.method} {route.template} is {NOT_EMULATED}.")
        return handler(params, body)

    # -- instance info ------------------------------------------------------------------------

    def h_get(self, params: dict, body: Any) -> tuple[int, Any]:
        return 200, {
            "id": self.s.instance_id,
            "state": self.state,
            "vmm_version": VMM_VERSION,
            "app_name": APP_NAME,
        }

    def h_get_version(self, params: dict, body: Any) -> tuple[int, Any]:
        return 200, {"firecracker_version": VMM_VERSION}

    def h_get_machine_config(self, params: dict, body: Any) -> tuple[int, Any]:
        return 200, dict(self.cfg.machine)

    def h_get_vm_config(self, params: dict, body: Any) -> tuple[int, Any]:
        out: dict[str, Any] = {"machine-config": dict(self.cfg.machine)}
        if self.cfg.boot_source is not None:
            out["boot-source"] = dict(self.cfg.boot_source)
        out["drives"] = [dict(d) for d in self._ordered_drives()]
        out["network-interfaces"] = [dict(n) for n in self.cfg.net.values()]
        for key, value in self.cfg.others.items():
            out[key] = copy.deepcopy(value)
        return 200, out

    # -- pre-boot configuration ---------------------------------------------------------------

    def _check_machine(self, mc: dict) -> None:
        if mc["mem_size_mib"] < 1:
            raise ApiError("The memory size (MiB) is invalid.")
        if mc.get("smt") and mc["vcpu_count"] > 1 and mc["vcpu_count"] % 2:
            raise ApiError(
                "The vCPU number is invalid! The vCPU number can only be 1 or an even number "
                "when SMT is enabled."
            )
        if mc.get("huge_pages") == "2M" and mc["mem_size_mib"] % 2:
            raise ApiError("The memory size (MiB) must be a multiple of 2 with 2M huge pages.")

    def h_put_machine_config(self, params: dict, body: dict) -> tuple[int, Any]:
        mc = {"smt": False, "track_dirty_pages": False, "huge_pages": "None", **body}
        self._check_machine(mc)
        self.cfg.machine = mc
        self.cfg.touched.add("machine-config")
        return 204, None

    def h_patch_machine_config(self, params: dict, body: dict) -> tuple[int, Any]:
        mc = {**self.cfg.machine, **body}
        self._check_machine(mc)
        self.cfg.machine = mc
        self.cfg.touched.add("machine-config")
        return 204, None

    def h_put_boot_source(self, params: dict, body: dict) -> tuple[int, Any]:
        kernel = body["kernel_image_path"]
        try:
            with open(kernel, "rb") as f:
                magic = f.read(4)
        except OSError as exc:
            raise ApiError(
                f"The kernel file cannot be opened: {_open_error(exc)}, {kernel}"
            ) from None
        if magic != b"\x7fELF":
            self.log.warn(
                f"stand-in: {kernel} is not an ELF vmlinux; real Firecracker on x86_64 would "
                "refuse it at InstanceStart. QEMU boots it anyway."
            )
        initrd = body.get("initrd_path")
        if initrd is not None:
            try:
                with open(initrd, "rb"):
                    pass
            except OSError as exc:
                raise ApiError(
                    "The initrd file cannot be opened due to invalid path or invalid "
                    f"permissions. {_open_error(exc)}, {initrd}"
                ) from None
        args = body.get("boot_args")
        if args is not None:
            if len(args) >= MAX_CMDLINE_LEN:
                raise ApiError("The kernel command line is invalid: the string is too long.")
            if not args.isascii() or "\0" in args:
                raise ApiError("The kernel command line is invalid: invalid ascii string.")
        self.cfg.boot_source = dict(body)
        self.cfg.touched.add("boot-source")
        return 204, None

    def h_put_drives(self, params: dict, body: dict) -> tuple[int, Any]:
        drive_id = body["drive_id"]
        if "socket" in body:
            raise ApiError(f"vhost-user block devices (`socket`) are {NOT_EMULATED}.")
        path = body.get("path_on_host")
        if path is None:
            raise ApiError(
                "Unable to create the virtio block device: `path_on_host` is required for a "
                "virtio-block drive."
            )
        if body.get("is_read_only") is None:
            raise ApiError(
                "Unable to create the virtio block device: `is_read_only` is required for a "
                "virtio-block drive."
            )
        if "," in path:
            raise ApiError(
                f"The drive path {path!r} contains a comma, which the Firecracker test stand-in "
                "cannot pass to QEMU's -drive option; use a path without commas."
            )
        if body.get("is_root_device"):
            for other_id, other in self.cfg.drives.items():
                if other_id != drive_id and other.get("is_root_device"):
                    raise ApiError("A root block device already exists!")
        flags = os.O_RDONLY if body.get("is_read_only") else os.O_RDWR
        try:
            os.close(os.open(path, flags))
        except OSError as exc:
            raise ApiError(
                "Unable to create the virtio block device: Virtio backing file error: "
                f"{_open_error(exc)}, {path}"
            ) from None
        drive = {"cache_type": "Unsafe", "io_engine": "Sync", **body}
        self.cfg.drives[drive_id] = drive
        self.cfg.touched.add("drives")
        return 204, None

    def h_put_network_interfaces(self, params: dict, body: dict) -> tuple[int, Any]:
        iface_id = body["iface_id"]
        mac = body.get("guest_mac")
        if mac is not None and not MAC_RE.fullmatch(mac):
            raise ApiError(
                "An error occurred when deserializing the json body of a request: "
                f"invalid MAC address `{mac}` at `guest_mac`."
            )
        for other_id, other in self.cfg.net.items():
            if other_id == iface_id:
                continue
            if other["host_dev_name"] == body["host_dev_name"]:
                raise ApiError(f"The host device name {body['host_dev_name']} is already in use.")
            if mac is not None and other.get("guest_mac", "").lower() == mac.lower():
                raise ApiError(f"The guest MAC address {mac} is already in use.")
        self.cfg.net[iface_id] = dict(body)
        self.cfg.touched.add("network-interfaces")
        self.log.warn(f"stand-in: network interface {iface_id} is stored, but {NOT_EMULATED}.")
        return 204, None

    def h_put_logger(self, params: dict, body: dict) -> tuple[int, Any]:
        if "log_path" in body:
            try:
                self.log.open(body["log_path"])
            except OSError as exc:
                raise ApiError(f"Cannot open the log file: {_open_error(exc)}") from None
        if "level" in body:
            self.log.level = LEVELS[body["level"].lower()]
        self.log.show_level = body.get("show_level", self.log.show_level)
        self.log.show_origin = body.get("show_log_origin", self.log.show_origin)
        self.cfg.others["logger"] = dict(body)
        return 204, None

    def h_put_metrics(self, params: dict, body: dict) -> tuple[int, Any]:
        if self.metrics_path is not None:
            raise ApiError("Reinitialization of metrics not allowed.")
        self.configure_metrics(body["metrics_path"])
        self.cfg.others["metrics"] = dict(body)
        return 204, None

    def configure_metrics(self, path: str) -> None:
        try:
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise ApiError(f"Cannot open the metrics file: {_open_error(exc)}, {path}") from None
        self.metrics_path = path

    def _store(self, key: str, body: dict) -> tuple[int, Any]:
        self.cfg.others[key] = dict(body)
        self.cfg.touched.add(key)
        self.log.warn(f"stand-in: {key} configuration is stored, but {NOT_EMULATED}.")
        return 204, None

    def h_put_balloon(self, params: dict, body: dict) -> tuple[int, Any]:
        return self._store("balloon", body)

    def h_put_cpu_config(self, params: dict, body: dict) -> tuple[int, Any]:
        return self._store("cpu-config", body)

    def h_put_vsock(self, params: dict, body: dict) -> tuple[int, Any]:
        return self._store("vsock", body)

    def h_put_entropy(self, params: dict, body: dict) -> tuple[int, Any]:
        return self._store("entropy", body)

    def h_put_hotplug_memory(self, params: dict, body: dict) -> tuple[int, Any]:
        return self._store("memory-hotplug", body)

    def h_put_serial(self, params: dict, body: dict) -> tuple[int, Any]:
        if "serial_out_path" in body:
            raise ApiError(f"`serial_out_path` is {NOT_EMULATED}; the console is on stdout.")
        return self._store("serial", body)

    def h_put_mmds_config(self, params: dict, body: dict) -> tuple[int, Any]:
        for iface in body["network_interfaces"]:
            if iface not in self.cfg.net:
                raise ApiError(
                    "The list of network interface IDs that allow forwarding MMDS requests is "
                    f"invalid: no network interface with id {iface}."
                )
        return self._store("mmds-config", body)

    def h_put_pmem(self, params: dict, body: dict) -> tuple[int, Any]:
        raise ApiError(f"pmem devices are {NOT_EMULATED}.")

    def h_get_balloon(self, params: dict, body: Any) -> tuple[int, Any]:
        if "balloon" not in self.cfg.others:
            raise ApiError("No balloon device found.")
        return 200, dict(self.cfg.others["balloon"])

    def h_get_balloon_statistics(self, params: dict, body: Any) -> tuple[int, Any]:
        if "balloon" not in self.cfg.others:
            raise ApiError("No balloon device found.")
        raise ApiError(f"Balloon statistics are {NOT_EMULATED}.")

    def h_get_hotplug_memory(self, params: dict, body: Any) -> tuple[int, Any]:
        conf = self.cfg.others.get("memory-hotplug")
        if conf is None:
            raise ApiError("The memory hotplug device was not configured.")
        return 200, {
            "total_size_mib": conf.get("total_size_mib", 0),
            "slot_size_mib": conf.get("slot_size_mib", 128),
            "block_size_mib": conf.get("block_size_mib", 2),
            "plugged_size_mib": 0,
            "requested_size_mib": 0,
        }

    # -- MMDS data store ----------------------------------------------------------------------

    def _mmds_fits(self, data: Any) -> None:
        limit = self.s.mmds_size_limit
        size = len(json.dumps(data, separators=(",", ":")))
        if size > limit:
            raise ApiError(
                f"The MMDS patch request doesn't fit. The MMDS data store size limit is {limit} "
                "bytes.",
                status=413,
            )

    def h_get_mmds(self, params: dict, body: Any) -> tuple[int, Any]:
        return 200, self.cfg.mmds if self.cfg.mmds is not None else {}

    def h_put_mmds(self, params: dict, body: Any) -> tuple[int, Any]:
        self._mmds_fits(body)
        self.cfg.mmds = body
        return 204, None

    def h_patch_mmds(self, params: dict, body: Any) -> tuple[int, Any]:
        merged = _merge_patch(self.cfg.mmds if self.cfg.mmds is not None else {}, body)
        self._mmds_fits(merged)
        self.cfg.mmds = merged
        return 204, None

    # -- snapshots ----------------------------------------------------------------------------

    def h_put_snapshot_create(self, params: dict, body: dict) -> tuple[int, Any]:
        if self.state != "Paused":
            raise ApiError(
                "Create snapshot error: Cannot save the microVM state: the microVM must be "
                "paused first."
            )
        raise ApiError(f"Snapshots are {NOT_EMULATED}.")

    def h_put_snapshot_load(self, params: dict, body: dict) -> tuple[int, Any]:
        if self.cfg.touched:
            raise ApiError(
                "Loading a microVM snapshot not allowed after configuring boot-specific resources."
            )
        raise ApiError(f"Snapshots are {NOT_EMULATED}.")

    # -- runtime ------------------------------------------------------------------------------

    def h_patch_vm(self, params: dict, body: dict) -> tuple[int, Any]:
        want = body["state"]
        if want == "Paused" and self.state != "Paused":
            self._qmp_run_state("stop")
            self.state = "Paused"
        elif want == "Resumed" and self.state != "Running":
            self._qmp_run_state("cont")
            self.state = "Running"
        return 204, None

    def _qmp_run_state(self, command: str) -> None:
        assert self.qmp is not None
        try:
            self.qmp.execute(command)
        except RuntimeError as exc:
            # A guest that powered off (QEMU -no-shutdown) cannot be continued; Firecracker's
            # vCPUs would just stay halted, so the call still succeeds.
            status = self.qmp.execute("query-status").get("status")
            if status not in ("shutdown", "guest-panicked"):
                raise ApiError(f"Failed to {command} the microVM: {exc}") from None
        except (OSError, ConnectionError) as exc:
            raise ApiError(f"The microVM is not running: {exc}") from None

    def action(self, body: dict) -> tuple[int, Any]:
        kind = body["action_type"]
        if kind == "FlushMetrics":
            self.flush_metrics()
            return 204, None
        if kind == "InstanceStart":
            if self.started:
                raise ApiError(MSG_NOT_AFTER_START)
            self.start()
            return 204, None
        if kind == "SendCtrlAltDel":
            if not self.started:
                raise ApiError(MSG_NOT_BEFORE_START)
            assert self.qmp is not None
            keys = [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
            try:
                self.qmp.execute("send-key", {"keys": keys})
            except (RuntimeError, OSError, ConnectionError) as exc:
                raise ApiError(f"Failed to send Ctrl+Alt+Del: {exc}") from None
            return 204, None
        raise ApiError(f"Unknown action_type {kind}.")

    def flush_metrics(self) -> None:
        if self.metrics_path is None:
            return
        line = {
            "utc_timestamp_ms": int(time.time() * 1000),
            "standin": f"metrics contents are {NOT_EMULATED}",
        }
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as exc:
            raise ApiError(f"Failed to write metrics: {_open_error(exc)}") from None

    # -- boot -----------------------------------------------------------------------------------

    def _ordered_drives(self) -> list[dict]:
        drives = list(self.cfg.drives.values())
        return sorted(drives, key=lambda d: not d.get("is_root_device"))

    def qemu_command(self) -> list[str]:
        bs = self.cfg.boot_source
        assert bs is not None
        qemu = os.environ.get(QEMU_ENV) or shutil.which("qemu-system-x86_64")
        if not qemu:
            raise ApiError(
                "Start microvm error: the Firecracker test stand-in needs qemu-system-x86_64 "
                "(apt-get install qemu-system-x86), which is not on PATH."
            )
        mc = self.cfg.machine
        drives = self._ordered_drives()
        root = next((d for d in drives if d.get("is_root_device")), None)
        cmd = [
            qemu,
            "-machine",
            "pc,accel=tcg",
            "-m",
            str(mc["mem_size_mib"]),
            "-smp",
            str(mc["vcpu_count"]),
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-no-shutdown",
            "-chardev",
            "stdio,id=con0,signal=off",
            "-serial",
            "chardev:con0",
            "-qmp",
            f"unix:{self.s.qmp_path},server=on,wait=off",
            "-kernel",
            bs["kernel_image_path"],
        ]
        if bs.get("initrd_path"):
            cmd += ["-initrd", bs["initrd_path"]]
        cmd += ["-append", translate_boot_args(bs.get("boot_args"), root)]
        for index, drive in enumerate(drives):
            qemu_id = "root" if drive is root else f"drive{index}"
            spec = f"file={drive['path_on_host']},format=raw,if=none,id={qemu_id}"
            if drive.get("is_read_only"):
                spec += ",readonly=on"
            cmd += ["-drive", spec]
            if index == 0:
                cmd += ["-device", f"nvme,id=nvme0,drive={qemu_id},serial={qemu_id}"]
            else:
                cmd += ["-device", f"nvme-ns,drive={qemu_id},bus=nvme0,nsid={index + 1}"]
        return cmd

    def start(self) -> None:
        bs = self.cfg.boot_source
        if bs is None:
            raise ApiError(
                "Start microvm error: Cannot start microvm without kernel configuration "
                "(PUT /boot-source first)."
            )
        # The files could have gone since their PUT; Firecracker holds them open by now.
        for label, path in (("kernel", bs["kernel_image_path"]), ("initrd", bs.get("initrd_path"))):
            if path is not None and not os.path.isfile(path):
                raise ApiError(f"Start microvm error: the {label} file {path} does not exist.")
        for drive in self.cfg.drives.values():
            if not os.path.exists(drive["path_on_host"]):
                raise ApiError(
                    f"Start microvm error: the drive file {drive['path_on_host']} does not exist."
                )
        cmd = self.qemu_command()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.s.qmp_path)
        self.log.info("stand-in: starting QEMU: " + " ".join(cmd))
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=None,  # inherited: the guest console is on the stand-in's stdio
                stdout=None,
                stderr=None,
                close_fds=True,
                preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509
            )
        except OSError as exc:
            raise ApiError(f"Start microvm error: cannot run QEMU: {exc}") from None
        self.qemu = proc
        try:
            self.qmp = Qmp.connect(self.s.qmp_path, proc, QMP_START_TIMEOUT, self.s.on_qmp_event)
        except Exception:
            self.s.stop_qemu()
            self.qemu = None
            raise
        self.state = "Running"
        self.s.watch_qemu(proc)
        self.log.info(f"stand-in: QEMU (pid {proc.pid}) is running the guest.")


# --------------------------------------------------------------------------------------------
# HTTP server on the Unix socket


class _ApiServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    standin: StandIn


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Firecracker API"
    sys_version = ""
    server: _ApiServer

    def address_string(self) -> str:  # client_address is "" on a Unix socket
        return "api-socket"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        self.server.standin.log.debug("http: " + (format % args))

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass

    def setup(self) -> None:
        super().setup()
        threading.current_thread().name = "fc_api"

    def _serve(self) -> None:
        standin = self.server.standin
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._reply(400, {"fault_message": "Chunked request bodies are not supported."})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._reply(400, {"fault_message": "Invalid Content-Length header."})
            return
        if length > standin.payload_limit:
            self.close_connection = True
            self._reply(
                400,
                {
                    "fault_message": f"Request payload with size {length} is larger than the "
                    f"limit of {standin.payload_limit} allowed by server."
                },
            )
            return
        body = self.rfile.read(length) if length else b""
        status, payload = standin.handle_http(self.command, self.path, body)
        self._reply(status, payload)

    def _reply(self, status: int, payload: Any) -> None:
        self.send_response(status)
        if status == 204 or payload is None:
            self.end_headers()
            return
        data = json.dumps(payload).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_OPTIONS = do_HEAD = _serve


# --------------------------------------------------------------------------------------------
# The process


_STOP = object()


class StandIn:
    def __init__(self, args: argparse.Namespace, spec: ApiSpec, log: Log) -> None:
        self.args = args
        self.spec = spec
        self.log = log
        self.instance_id: str = args.id
        self.api_sock: str = args.api_sock
        self.payload_limit: int = args.http_api_max_payload_size
        self.mmds_size_limit: int = args.mmds_size_limit or args.http_api_max_payload_size
        self.qmp_path, self._qmp_dir = self._choose_qmp_path()
        self.vm = MicroVm(self)
        self.jobs: queue.Queue = queue.Queue()
        self.exit_code: int | None = None
        self.server: _ApiServer | None = None
        self._saved_stdin: tuple[Any, Any] | None = None

    def _choose_qmp_path(self) -> tuple[str, str | None]:
        candidate = self.api_sock + ".standin-qmp"
        if len(os.fsencode(candidate)) <= SUN_PATH_MAX and "," not in candidate:
            return candidate, None
        folder = tempfile.mkdtemp(prefix="fc-standin-")
        return os.path.join(folder, "qmp.sock"), folder

    # -- API thread side ------------------------------------------------------------------------

    def handle_http(self, method: str, raw_path: str, raw_body: bytes) -> tuple[int, Any]:
        path = raw_path.split("?", 1)[0] or "/"
        text = raw_body.decode("utf-8", errors="replace")
        if raw_body:
            self.log.info(
                f'The API server received a {method} request on "{path}" with body {text!r}.'
            )
        else:
            self.log.info(f'The API server received a {method} request on "{path}".')
        try:
            route, params, body = self.parse(method, path, raw_body)
            future: Future = Future()
            self.jobs.put((lambda: self.vm.execute(route, params, body), future))
            status, payload = future.result()
        except ApiError as exc:
            status, payload = exc.status, {"fault_message": exc.message}
        except Exception as exc:  # a stand-in bug: say so rather than hang the client
            self.log.error(f"stand-in internal error: {exc!r}")
            status, payload = 500, {"fault_message": f"Firecracker test stand-in error: {exc!r}"}
        if status < 300:
            self.log.info(f"The request was executed successfully. Status code: {status}.")
        else:
            self.log.error(
                f"Received Error. Status code: {status}. Message: {payload['fault_message']}"
            )
        return status, payload

    def parse(self, method: str, path: str, raw_body: bytes) -> tuple[Route, dict, Any]:
        route, params = self.spec.match(method, path)
        for value in params.values():
            if value == "":
                raise ApiError("The ID cannot be empty.")
            if not RESOURCE_ID_RE.fullmatch(value):
                raise ApiError(
                    "API Resource IDs can only contain alphanumeric characters and underscores."
                )
        if method == "GET" and raw_body:
            raise ApiError("GET request cannot have a body.")
        body: Any = None
        if route.body_def:
            if not raw_body.strip():
                raise ApiError(f"Empty {method} request.")
            try:
                body = json.loads(raw_body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(
                    f"An error occurred when deserializing the json body of a request: {exc}."
                ) from None
            validate_body(route.validator, body)
            body = in_jail(body)
            for name, value in params.items():
                if isinstance(body, dict) and body.get(name) != value:
                    raise ApiError("The id from the path does not match the id from the body!")
        return route, params, body

    # -- VMM thread (main thread) ----------------------------------------------------------

    def watch_qemu(self, proc: subprocess.Popen) -> None:
        def wait() -> None:
            code = proc.wait()
            self.jobs.put(("qemu-exited", code))

        threading.Thread(target=wait, name="fc_qemu_watch", daemon=True).start()

    def on_qmp_event(self, event: dict) -> None:
        """QMP reader thread: pass a guest reset to the VMM thread."""
        self.log.debug(f"stand-in: QMP event {json.dumps(event)}")
        if event.get("event") == "SHUTDOWN":
            reason = event.get("data", {}).get("reason", "")
            self.jobs.put(("qemu-shutdown", reason))

    def end_after_guest_reset(self, reason: str) -> None:
        """QEMU runs with -no-reboot -no-shutdown, so it stops (not exits) on any shutdown.
        Firecracker exits when the guest resets (reboot=k, a triple fault, panic=1) but keeps
        running after a guest power-off on x86, so only a reset ends QEMU here."""
        if reason != "guest-reset":
            self.log.info(
                f"stand-in: the guest shut down ({reason}); like Firecracker on x86, the process "
                "keeps running until it is killed."
            )
            return
        self.log.info("stand-in: the guest reset itself; ending QEMU, as Firecracker exits.")
        try:
            assert self.vm.qmp is not None
            self.vm.qmp.execute("quit", timeout=5)
        except (AssertionError, RuntimeError, OSError, ConnectionError):
            self.stop_qemu()

    def stop_qemu(self, grace: float = 2.0) -> None:
        proc = self.vm.qemu
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()  # QEMU restores the terminal on SIGTERM
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)

    def cleanup(self) -> None:
        """Stop QEMU, remove the private QMP socket, restore stdin. The API socket stays."""
        self.stop_qemu()
        if self.vm.qmp is not None:
            self.vm.qmp.close()
        with contextlib.suppress(OSError):
            os.unlink(self.qmp_path)
        if self._qmp_dir:
            shutil.rmtree(self._qmp_dir, ignore_errors=True)
        if self.server is not None:
            with contextlib.suppress(OSError):
                self.server.socket.close()
        self._restore_stdin()

    def _save_stdin(self) -> None:
        try:
            flags = fcntl.fcntl(0, fcntl.F_GETFL)
        except OSError:
            return
        attrs = None
        if os.isatty(0):
            with contextlib.suppress(termios.error):
                attrs = termios.tcgetattr(0)
        self._saved_stdin = (flags, attrs)

    def _restore_stdin(self) -> None:
        if self._saved_stdin is None:
            return
        flags, attrs = self._saved_stdin
        with contextlib.suppress(OSError):
            fcntl.fcntl(0, fcntl.F_SETFL, flags)
        if attrs is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(0, termios.TCSANOW, attrs)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        self.log.info(f"stand-in: received {name}; stopping QEMU.")
        self.cleanup()
        if signum == signal.SIGHUP:
            self.log.info(f"Firecracker exiting with error. exit_code={EXIT_SIGHUP}")
            os._exit(EXIT_SIGHUP)
        # Firecracker does not handle SIGTERM/SIGINT: it dies of them. Do the same.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1)
        os._exit(128 + signum)

    def serve(self) -> int:
        self._save_stdin()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            server = _ApiServer(self.api_sock, _ApiHandler, bind_and_activate=True)
        except OSError as exc:
            return self._bind_failed(exc)
        server.standin = self
        self.server = server
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="fc_api",
            daemon=True,
        ).start()
        self.log.info("stand-in: API server listening on " + self.api_sock)
        while True:
            try:
                job = self.jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            if job is _STOP:
                break
            first, second = job
            if first == "qemu-shutdown":
                self.end_after_guest_reset(second)
                continue
            if first == "qemu-exited":
                code = second
                self.log.info(f"stand-in: QEMU exited with code {code}; the guest has stopped.")
                self.exit_code = EXIT_OK if code == 0 else EXIT_GENERIC_ERROR
                break
            fn, future = first, second
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the API thread
                future.set_exception(exc)
        self.cleanup()
        code = self.exit_code if self.exit_code is not None else EXIT_OK
        if code == EXIT_OK:
            self.log.info("Firecracker exiting successfully. exit_code=0")
        else:
            self.log.error(f"Firecracker exiting with error. exit_code={code}")
        return code

    def _bind_failed(self, exc: OSError) -> int:
        msg = (
            f"RunWithApiError error: Failed to open the API socket at: {self.api_sock}. "
            "Check that it is not already used."
        )
        self.log.error(f"{msg} ({exc.strerror})")
        print(msg, file=sys.stderr)
        print(f'Error: RunWithApi(FailedToBindSocket("{self.api_sock}"))', file=sys.stderr)
        return EXIT_GENERIC_ERROR


# --------------------------------------------------------------------------------------------
# Command line


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"Arguments parsing error: {message}\n\n")
        sys.stderr.write("For more information try --help.\n")
        sys.exit(EXIT_BAD_ARGUMENTS)


def build_parser() -> argparse.ArgumentParser:
    p = _ArgParser(
        prog="firecracker",
        description="TEST STAND-IN for Firecracker (QEMU/TCG underneath). Not Firecracker.",
        allow_abbrev=False,
    )
    p.add_argument("--api-sock", default=DEFAULT_API_SOCK)
    p.add_argument("--id", default=DEFAULT_INSTANCE_ID)
    p.add_argument("--log-path")
    p.add_argument("--level", default="Info")
    p.add_argument("--module")
    p.add_argument("--show-level", action="store_true")
    p.add_argument("--show-log-origin", action="store_true")
    p.add_argument("--metrics-path")
    p.add_argument("--boot-timer", action="store_true")
    p.add_argument("--config-file")
    p.add_argument("--no-api", action="store_true")
    p.add_argument("--no-seccomp", action="store_true")
    p.add_argument("--seccomp-filter")
    p.add_argument("--start-time-us")
    p.add_argument("--start-time-cpu-us")
    p.add_argument("--parent-cpu-time-us")
    p.add_argument("--http-api-max-payload-size", type=int, default=DEFAULT_PAYLOAD_LIMIT)
    p.add_argument("--mmds-size-limit", type=int)
    p.add_argument("--metadata")
    p.add_argument("--enable-pci", action="store_true")
    p.add_argument("--version", action="store_true")
    return p


JAIL_ENV = "GLIDEX_STANDIN_CHROOT"
JAILED_PATH_FIELDS = ("kernel_image_path", "initrd_path", "path_on_host", "log_path",
                      "metrics_path")


def in_jail(body: Any) -> Any:
    """Under the jailer stand-in (tests/standins/jailer_standin.py), which cannot really chroot,
    map the in-jail paths a client sends to where they are on the host, as a chroot would."""
    root = os.environ.get(JAIL_ENV)
    if not root or not isinstance(body, dict):
        return body
    return {key: root + value if key in JAILED_PATH_FIELDS and isinstance(value, str)
            and value.startswith("/") else value for key, value in body.items()}


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"Firecracker v{VMM_VERSION} (TEST STAND-IN, not Firecracker)")
        return EXIT_OK
    if not INSTANCE_ID_RE.fullmatch(args.id):
        sys.stderr.write(
            f"Arguments parsing error: Invalid instance ID: {args.id!r} (it must be 1 to 64 "
            "characters from A-Z, a-z, 0-9 and '-').\n"
        )
        return EXIT_BAD_ARGUMENTS
    if args.level.lower() not in LEVELS:
        sys.stderr.write(f"Invalid value for logger level: {args.level}.\n")
        return EXIT_GENERIC_ERROR
    log = Log(args.id, args.level)
    log.show_level = args.show_level
    if args.log_path:
        try:
            log.open(args.log_path)
        except OSError as exc:
            sys.stderr.write(f"Failed to open the log file {args.log_path}: {exc.strerror}\n")
            return EXIT_GENERIC_ERROR
    log.info(f"Running Firecracker v{VMM_VERSION} (TEST STAND-IN: QEMU/TCG, not Firecracker)")
    if args.config_file or args.no_api:
        sys.stderr.write(f"--config-file and --no-api are {NOT_EMULATED}.\n")
        log.error(f"--config-file and --no-api are {NOT_EMULATED}.")
        return EXIT_GENERIC_ERROR
    if os.path.lexists(args.api_sock):
        msg = (
            f"RunWithApiError error: Failed to open the API socket at: {args.api_sock}. "
            "Check that it is not already used."
        )
        log.error(msg)
        sys.stderr.write(msg + "\n")
        sys.stderr.write(f'Error: RunWithApi(FailedToBindSocket("{args.api_sock}"))\n')
        log.error(f"Firecracker exiting with error. exit_code={EXIT_GENERIC_ERROR}")
        return EXIT_GENERIC_ERROR
    spec_path = find_spec()
    try:
        spec = ApiSpec(spec_path)
    except (OSError, yaml.YAMLError) as exc:
        sys.stderr.write(
            f"Firecracker test stand-in: cannot load the API definition {spec_path} ({exc}); "
            f"set {SPEC_ENV}.\n"
        )
        return EXIT_GENERIC_ERROR
    standin = StandIn(args, spec, log)
    if args.metrics_path:
        try:
            standin.vm.configure_metrics(args.metrics_path)
        except ApiError as exc:
            sys.stderr.write(exc.message + "\n")
            return EXIT_GENERIC_ERROR
    return standin.serve()


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in and end the process with its exit code (never returns)."""
    threading.current_thread().name = "main"
    try:
        code = run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_GENERIC_ERROR
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
