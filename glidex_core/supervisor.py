"""The supervisor: VM lifecycle, the only writer of VM records, adoption of live keepers.

Each running VM is a console keeper process (see console/keeper.py) that is the VMM's parent.
The supervisor watches every keeper through a pidfd, so it learns of a VM's end at once, without
polling, and it can be closed and reopened (or crash) while the VMs keep running: on open it
adopts the keepers it finds (pid file + kernel start time, never a bare pid) and settles the
records of VMs whose keeper is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from glidex_core.config import Paths, Settings, default_hypervisor, glidex_home, load_settings
from glidex_core.console.keeper import KeeperSpec
from glidex_core.console.launcher import KeeperLauncher
from glidex_core.console.procinfo import is_same_process, start_ticks
from glidex_core.models import (
    ConflictError,
    GlidexError,
    HypervisorError,
    InvalidStateError,
    NotFoundError,
    Operation,
    VmRecord,
    VmSpec,
    VmState,
    next_state,
)
from glidex_core.policy import check_image_roots, max_mem_mib
from glidex_core.store import RecordStore
from glidex_core.vmm import VmmBackend, backend_for

log = logging.getLogger(__name__)

KEEPER_READY_TIMEOUT = 10.0
BOOT_TIMEOUT = 30.0
SIGNAL_GRACE = 3.0
EXIT_AFTER_FAILURE = 0.5  # seconds to see whether a failed start was the VMM exiting


class SupervisorBusyError(GlidexError):
    code = "busy"


@dataclass
class VmEvent:
    """Something that happened to a VM: created, state (with a reason), deleted."""

    kind: str
    vm: VmRecord
    reason: str | None = None
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {"type": self.kind, "vm": asdict(self.vm), "reason": self.reason, "at": self.at}


@dataclass
class ConsoleInfo:
    vm_id: str
    console_socket_path: Path
    log_path: Path
    available: bool
    clients: int = 0
    log_error: str | None = None  # e.g. the disk is full: the console works, the log does not


@dataclass
class _Watch:
    """A live keeper we follow through its pidfd."""

    keeper_pid: int
    vmm_pid: int
    vmm_start: int | None
    pidfd: int
    exited: asyncio.Event = field(default_factory=asyncio.Event)


def _read_json(path: Path) -> dict | None:
    """A JSON object from a file we wrote, or None if it is missing, torn or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_exit(exit_code: int | None, exit_signal: int | None) -> str:
    if exit_signal:
        return f"VMM killed by {signal.Signals(exit_signal).name}"
    return f"VMM exited with code {exit_code}"


def _tail_text(path: Path, max_bytes: int = 2000, since: int = 0) -> str:
    """The end of a log, from ``since`` on (what earlier runs wrote is not this run's story)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(since, f.seek(0, os.SEEK_END) - max_bytes))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Supervisor:
    def __init__(self, paths: Paths, settings: Settings) -> None:
        self.paths = paths
        self.settings = settings
        self.store = RecordStore(paths)
        self._records: dict[str, VmRecord] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._create_lock = asyncio.Lock()
        self._watches: dict[str, _Watch] = {}
        self._stopping: dict[str, str] = {}  # VMs being stopped on request -> how it went
        self._subscribers: list[Callable[[VmEvent], None]] = []
        self._lock_fd: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._children: dict[int, subprocess.Popen] = {}  # keepers this process started
        self._launcher = KeeperLauncher(spare=settings.spare_keeper)

    # -- opening and closing ---------------------------------------------------------------
    @classmethod
    async def open(cls, home: Path | None = None) -> Supervisor:
        """Take the home's supervisor lock, load every record and adopt live keepers."""
        paths = Paths(home or glidex_home())
        paths.ensure()
        supervisor = cls(paths, load_settings(paths))
        supervisor._acquire_lock()
        for record in supervisor.store.load_all():
            supervisor._records[record.id] = record
            if record.is_live:
                supervisor._adopt(record)
        supervisor._launcher.refill()  # so even the first start finds a keeper waiting
        return supervisor

    def _acquire_lock(self) -> None:
        fd = os.open(self.paths.supervisor_lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SupervisorBusyError(
                f"another Glidex supervisor already manages {self.paths.home} "
                "(a glidex-control-plane or glidex); use it, or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    async def close(self) -> None:
        """Stop watching and release the lock. Running VMs keep running."""
        loop = asyncio.get_running_loop()
        for watch in self._watches.values():
            loop.remove_reader(watch.pidfd)
            os.close(watch.pidfd)
        self._watches.clear()
        self._launcher.close()
        for task in list(self._tasks):
            task.cancel()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- queries ---------------------------------------------------------------------------
    def list(self) -> list[VmRecord]:
        return sorted(self._records.values(), key=lambda r: r.created_at)

    def get(self, ref: str) -> VmRecord:
        """A VM by id or by its unique name."""
        record = self._records.get(ref)
        if record is None:
            record = next((r for r in self._records.values() if r.name == ref), None)
        if record is None:
            raise NotFoundError(ref)
        return record

    def console_info(self, ref: str) -> ConsoleInfo:
        record = self.get(ref)
        socket_path = self.paths.console_socket(record.id)
        available = record.is_live and socket_path.exists()
        keeper = _read_json(self.paths.keeper_pid_file(record.id)) if available else None
        return ConsoleInfo(
            vm_id=record.id,
            console_socket_path=socket_path,
            log_path=self.paths.console_log(record.id),
            available=available,
            clients=(keeper or {}).get("clients", 0),
            log_error=(keeper or {}).get("log_error"),
        )

    def open_console(self, ref: str) -> ConsoleInfo:
        """The console, ready to attach to (the keeper serves it already)."""
        return self.console_info(ref)

    def backend(self, record: VmRecord) -> VmmBackend:
        return backend_for(record.hypervisor, self.paths, self.settings)

    # -- events ----------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[VmEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _emit(self, kind: str, record: VmRecord, reason: str | None = None) -> None:
        event = VmEvent(kind, VmRecord(**asdict(record)), reason)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not break the lifecycle
                log.exception("event subscriber failed")

    def _save(self, record: VmRecord, *, reason: str | None = None, emit: bool = True) -> None:
        record.updated_at = time.time()
        self.store.save(record)
        self._records[record.id] = record
        if emit:
            self._emit("state", record, reason)

    def _lock(self, vm_id: str) -> asyncio.Lock:
        return self._locks.setdefault(vm_id, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def _locked(self, ref: str):
        """The VM, with its lock held; re-checked after waiting, since a concurrent delete may
        have removed it meanwhile."""
        record = self.get(ref)
        async with self._lock(record.id):
            if self._records.get(record.id) is not record:
                raise NotFoundError(ref)
            yield record

    # -- create and delete -----------------------------------------------------------------
    async def create(self, spec: VmSpec) -> VmRecord:
        spec.validated(max_mem_mib=max_mem_mib(self.settings))
        check_image_roots(spec, self.settings)
        hypervisor = spec.hypervisor or default_hypervisor(self.settings)
        async with self._create_lock:
            if any(r.name == spec.name for r in self._records.values()):
                raise ConflictError(f"a VM named {spec.name!r} already exists")
            record = VmRecord.from_spec(spec, hypervisor)
            taken = {self.paths.console_socket(r) for r in self._records}
            while self.paths.console_socket(record.id) in taken:  # short-id clash: new id
                record = VmRecord.from_spec(spec, hypervisor)
            self._save(record, emit=False)
        self._emit("created", record)
        return record

    async def delete(self, ref: str) -> None:
        """Delete a VM, stopping it first if it runs; decided under its lock, so a start or
        stop in progress is waited for rather than raced."""
        async with self._locked(ref) as record:
            if record.is_live:
                await self._stop_locked(record, force=False, timeout=None)
            self._remove_runtime_files(record)
            self.backend(record).forget(record)
            self.store.delete(record.id)
            self._records.pop(record.id, None)
        self._locks.pop(record.id, None)
        self._emit("deleted", record)

    # -- start -----------------------------------------------------------------------------
    async def start(self, ref: str) -> VmRecord:
        """Start a VM; on a paused VM this resumes it, as the original Glidex did."""
        if self.get(ref).state == VmState.PAUSED:
            return await self.resume(ref)
        async with self._locked(ref) as record:
            if record.state == VmState.PAUSED:  # paused while we waited for the lock
                raise InvalidStateError(record.state, Operation.START)
            next_state(record.state, Operation.START)
            backend = self.backend(record)
            check_image_roots(record, self.settings)
            backend.check_files(record)
            self._check_disk_not_in_use(record)
            self._remove_runtime_files(record)
            self.paths.exit_file(record.id).unlink(missing_ok=True)
            vmm_log_start = _size(self.paths.vmm_log(record.id))
            try:
                argv = await asyncio.to_thread(backend.command, record)
                watch = await self._spawn_keeper(record, argv, vmm_log_start)
            except HypervisorError as exc:
                self._settle(record, VmState.FAILED, str(exc))
                raise
            failure = await self._boot(record, backend, watch)
            if failure:
                # A VMM that exits while starting says why in its own log, and a socket error
                # on our side ("Connection reset by peer") is only the echo of that exit.
                vmm_exited = await _wait_event(watch.exited, EXIT_AFTER_FAILURE)
                await self._force_end(record.id, watch)
                detail = _tail_text(self.paths.vmm_log(record.id), since=vmm_log_start)
                message = (detail if vmm_exited else f"{failure}: {detail}") if detail \
                    else failure
                self._settle(record, VmState.FAILED, message)
                raise HypervisorError(message)
            record.state = VmState.RUNNING
            record.reason = None
            record.started_at = time.time()
            record.stopped_at = record.exit_code = record.exit_signal = None
            record.keeper_pid, record.vmm_pid = watch.keeper_pid, watch.vmm_pid
            self._save(record, reason="started")
            self._launcher.refill()
            return record

    def _check_disk_not_in_use(self, record: VmRecord) -> None:
        """Refuse a root disk that another live VM has open: two guests writing one file system
        corrupt it (Firecracker does not lock it; QEMU fails with a write-lock error)."""
        disk = os.path.realpath(record.rootfs_path)
        for other in self._records.values():
            if other.id != record.id and other.is_live \
                    and os.path.realpath(other.rootfs_path) == disk:
                copy = Path(disk).with_name(f"{Path(disk).stem}-{record.name}{Path(disk).suffix}")
                raise ConflictError(
                    f"rootfs {record.rootfs_path} is in use by VM {other.name!r} "
                    f"({other.state}): two VMs writing one disk corrupt it; give {record.name!r} "
                    f"a copy of its own (cp {disk} {copy}) and create it with that rootfs_path")

    async def _spawn_keeper(self, record: VmRecord, argv: list[str],
                            vmm_log_start: int = 0) -> _Watch:
        spec = KeeperSpec(
            vm_id=record.id,
            argv=argv,
            log_path=str(self.paths.console_log(record.id)),
            socket_path=str(self.paths.console_socket(record.id)),
            pid_file=str(self.paths.keeper_pid_file(record.id)),
            exit_file=str(self.paths.exit_file(record.id)),
            vmm_stderr_path=str(self.paths.vmm_log(record.id)),
            cwd=str(self.paths.vm_dir(record.id)),
            log_max_bytes=self.settings.log_max_bytes,
            log_keep=self.settings.log_keep,
        )
        keeper_log = self.paths.vm_dir(record.id) / "keeper.log"
        process = self._launcher.launch(spec, keeper_log)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline),
                                          KEEPER_READY_TIMEOUT)
        except TimeoutError:
            process.kill()
            raise HypervisorError("the console keeper did not start in time") from None
        finally:
            process.stdout.close()
        self._children[process.pid] = process  # reaped (polled) when its pidfd fires
        text = line.decode(errors="replace").strip()
        if not text.startswith("ready"):
            raise HypervisorError(
                f"console keeper failed: {text.removeprefix('error ') or _tail_text(keeper_log)}"
            )
        info = _read_json(self.paths.keeper_pid_file(record.id)) or {}
        watch = self._watch(record.id, info)
        if watch is None:  # the VMM was gone before we could even look
            raise HypervisorError(_tail_text(self.paths.vmm_log(record.id), since=vmm_log_start)
                                  or "VMM exited")
        return watch

    async def _boot(self, record: VmRecord, backend: VmmBackend, watch: _Watch) -> str | None:
        """Configure and start the guest; the reason it failed, or None."""
        boot = asyncio.ensure_future(backend.boot(record))
        exited = asyncio.ensure_future(watch.exited.wait())
        done, _ = await asyncio.wait({boot, exited}, timeout=BOOT_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if boot not in done:
            boot.cancel()
            return "the VMM exited while starting" if exited in done else "boot timed out"
        error = boot.exception()
        if error is None:
            return None
        if isinstance(error, TimeoutError):
            return "the VMM did not answer on its control socket in time"
        return str(error) or type(error).__name__

    # -- watching keepers ------------------------------------------------------------------
    def _watch(self, vm_id: str, info: dict) -> _Watch | None:
        """Follow a keeper through a pidfd, after proving the pid is still that keeper."""
        keeper_pid, vmm_pid = info.get("keeper_pid"), info.get("vmm_pid")
        if not (isinstance(keeper_pid, int) and keeper_pid > 0 and isinstance(vmm_pid, int)):
            return None  # junk or a torn write: not a keeper we can trust
        try:
            pidfd = os.pidfd_open(keeper_pid)
        except ProcessLookupError:
            return None
        # Checked after opening: the pidfd now pins this very process, so no reuse race.
        if not is_same_process(keeper_pid, info.get("keeper_start")):
            os.close(pidfd)
            return None
        watch = _Watch(keeper_pid, info.get("vmm_pid", 0), info.get("vmm_start"), pidfd)
        self._watches[vm_id] = watch
        asyncio.get_running_loop().add_reader(pidfd, self._keeper_exited, vm_id, watch)
        return watch

    def _keeper_exited(self, vm_id: str, watch: _Watch) -> None:
        asyncio.get_running_loop().remove_reader(watch.pidfd)
        child = self._children.pop(watch.keeper_pid, None)
        if child is not None:
            child.poll()  # our child: reap it, leave no zombie
        watch.exited.set()
        task = asyncio.ensure_future(self._settle_exit(vm_id, watch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_exit(self, vm_id: str, watch: _Watch) -> None:
        async with self._lock(vm_id):
            if self._watches.get(vm_id) is not watch:
                return  # a start or stop in progress owns this exit
            record = self._records.get(vm_id)
            if record is not None:
                self._finish(record, watch)

    def _unwatch(self, vm_id: str) -> None:
        watch = self._watches.pop(vm_id, None)
        if watch is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(watch.pidfd)
            with contextlib.suppress(OSError):
                os.close(watch.pidfd)

    def _adopt(self, record: VmRecord) -> None:
        info = _read_json(self.paths.keeper_pid_file(record.id)) or {}
        if self._watch(record.id, info) is None:
            # Gone while no supervisor watched (a host reboot, or killed): nothing says it
            # crashed, and whatever now has its pid is not ours and is never signalled.
            self._finish(record, None, keeper_gone=(
                VmState.STOPPED, "its console keeper was gone when the supervisor started"))

    def _finish(self, record: VmRecord, watch: _Watch | None, *,
                keeper_gone: tuple[VmState, str] = (VmState.CRASHED,
                                                    "the console keeper died")) -> None:
        """Settle a VM whose keeper has ended: stopped if asked or clean, crashed otherwise."""
        how = self._stopping.pop(record.id, None)
        requested = how is not None
        self._unwatch(record.id)
        if watch is not None:
            self._kill_vmm(watch.vmm_pid, watch.vmm_start, signal.SIGKILL)
        status = _read_json(self.paths.exit_file(record.id))
        if status is None:
            record.exit_code = record.exit_signal = None
            state, reason = keeper_gone
            if requested:
                state, reason = VmState.STOPPED, "stopped on request: its stuck console keeper " \
                    "had to be killed"
        else:
            record.exit_code, record.exit_signal = status.get("exit_code"), status.get("signal")
            reason = describe_exit(record.exit_code, record.exit_signal)
            panic = None if requested else self._guest_panic(record)
            if requested:
                state, reason = VmState.STOPPED, f"stopped on request: {how}, {reason}"
            elif panic:
                state, reason = VmState.CRASHED, f"guest kernel panic ({reason}): {panic}"
            elif record.exit_code == 0:
                state, reason = VmState.STOPPED, "the guest powered off"
            else:
                state = VmState.CRASHED
        self._settle(record, state, reason)

    def _guest_panic(self, record: VmRecord) -> str | None:
        """The panic line, if the guest's last words were a kernel panic (its VMM may still
        exit 0: a panicking guest reboots, and a reboot ends the VMM)."""
        tail = _tail_text(self.paths.console_log(record.id), 8192)
        at = tail.rfind("Kernel panic - not syncing")
        return tail[at:].splitlines()[0].strip() if at >= 0 else None

    def _settle(self, record: VmRecord, state: VmState, reason: str) -> None:
        self._unwatch(record.id)
        self._remove_runtime_files(record)
        record.state = state
        record.reason = reason
        record.stopped_at = time.time()
        record.keeper_pid = record.vmm_pid = None
        self._save(record, reason=reason)

    def _remove_runtime_files(self, record: VmRecord) -> None:
        files = [self.paths.console_socket(record.id), self.paths.keeper_pid_file(record.id)]
        files += self.backend(record).runtime_files(record)
        for path in files:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # junk in our private run dir must never block a start
            else:
                path.unlink(missing_ok=True)

    @staticmethod
    def _kill_vmm(pid: int, start: int | None, signum: int) -> None:
        """Signal the VMM only if the pid still is that VMM (pids are reused)."""
        if is_same_process(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # -- stop, pause, resume ---------------------------------------------------------------
    async def stop(
        self, ref: str, *, force: bool = False, timeout: float | None = None
    ) -> VmRecord:
        """Graceful power-off, then SIGTERM, then SIGKILL; force skips the graceful part."""
        async with self._locked(ref) as record:
            next_state(record.state, Operation.STOP)
            await self._stop_locked(record, force=force, timeout=timeout)
            return record

    async def _stop_locked(self, record: VmRecord, *, force: bool,
                           timeout: float | None) -> None:
        watch = self._watches.get(record.id)
        self._stopping[record.id] = "forced"
        if watch is None:
            self._finish(record, None)
            return
        timeout = self.settings.stop_timeout if timeout is None else timeout
        if not force and await self._graceful_stop(record, watch, timeout):
            self._stopping[record.id] = "the guest shut down"
        else:
            if not force:
                self._stopping[record.id] = f"forced after {timeout:g} s without a clean shutdown"
            await self._force_end(record.id, watch)
        self._finish(record, watch)

    async def _graceful_stop(self, record: VmRecord, watch: _Watch, timeout: float) -> bool:
        backend = self.backend(record)
        try:
            if record.state == VmState.PAUSED:
                await backend.resume(record)
            await asyncio.wait_for(backend.request_shutdown(record), timeout)
        except (GlidexError, OSError, TimeoutError) as exc:
            log.info("graceful stop of %s failed: %s", record.name, exc)
            return False
        return await _wait_event(watch.exited, timeout)

    async def _force_end(self, vm_id: str, watch: _Watch) -> None:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            self._kill_vmm(watch.vmm_pid, watch.vmm_start, signum)
            if await _wait_event(watch.exited, SIGNAL_GRACE):
                return
        # The VMM is gone or unkillable and the keeper still lingers: end the keeper too.
        with contextlib.suppress(ProcessLookupError):
            if start_ticks(watch.keeper_pid) is not None:
                os.kill(watch.keeper_pid, signal.SIGKILL)
        await _wait_event(watch.exited, SIGNAL_GRACE)

    async def pause(self, ref: str) -> VmRecord:
        return await self._transition(ref, Operation.PAUSE)

    async def resume(self, ref: str) -> VmRecord:
        return await self._transition(ref, Operation.RESUME)

    async def _transition(self, ref: str, operation: Operation) -> VmRecord:
        async with self._locked(ref) as record:
            target = next_state(record.state, operation)
            backend = self.backend(record)
            action = backend.pause if operation == Operation.PAUSE else backend.resume
            try:
                await action(record)
            except GlidexError:
                raise
            except Exception as exc:
                raise HypervisorError(f"{operation} failed: {exc}") from exc
            record.state = target
            self._save(record, reason=f"{operation}d")
            return record

    async def restart(self, ref: str) -> VmRecord:
        record = self.get(ref)
        if record.is_live:
            await self.stop(record.id)
        return await self.start(record.id)


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


__all__ = [
    "ConsoleInfo",
    "InvalidStateError",
    "Supervisor",
    "SupervisorBusyError",
    "VmEvent",
]
