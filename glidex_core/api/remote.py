"""A Supervisor look-alike that drives a running control plane over its REST API.

The dashboard uses it when another process (``glidex-control-plane``) already owns the Glidex
home: the VM list is mirrored from ``GET /vms`` and kept current by ``GET /events``, and the
operations are the API's. Consoles are reached through the keeper socket the API names (same
host), so the dashboard's console panes need no change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from glidex_core.api.console_bridge import ConsoleBridge
from glidex_core.config import Paths, Settings, load_settings, make_private_dir, short_id
from glidex_core.models import (
    ConflictError,
    GlidexError,
    HypervisorError,
    NotFoundError,
    ValidationError,
    VmRecord,
    VmSpec,
    VmState,
)
from glidex_core.supervisor import ConsoleInfo, VmEvent

log = logging.getLogger(__name__)

BRIDGE_TAIL = 256 << 10  # console history fetched when a remote console is opened


class ControlPlaneUnreachable(GlidexError):
    """The control plane did not answer (it stopped, or the network is down)."""

    code = "unreachable"

    def __init__(self, url: str, exc: Exception) -> None:
        why = str(exc) or type(exc).__name__
        super().__init__(f"the control plane at {url} does not answer ({why}); start "
                         "glidex-control-plane again, or check --url")


class RemoteError(GlidexError):
    """An API error whose code has no closer local type; ``code`` is the server's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _timestamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def record_from_api(data: dict) -> VmRecord:
    return VmRecord(
        id=data["id"], name=data["name"], vcpu_count=data["vcpu_count"],
        mem_size_mib=data["mem_size_mib"], kernel_image_path=data["kernel_image_path"],
        rootfs_path=data["rootfs_path"], hypervisor=data["hypervisor"],
        kernel_args=data.get("kernel_args"), initrd_path=data.get("initrd_path"),
        state=VmState(data["state"]), reason=data.get("reason"),
        created_at=_timestamp(data["created_at"]) or 0.0,
        updated_at=_timestamp(data.get("updated_at")) or 0.0,
        started_at=_timestamp(data.get("started_at")),
        stopped_at=_timestamp(data.get("stopped_at")),
        exit_code=data.get("exit_code"), exit_signal=data.get("exit_signal"),
        vmm_pid=data.get("pid"),
    )


def raise_for_api_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        payload = response.json()
        code, message = payload["error"], payload["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "error", f"HTTP {response.status_code}: {response.text[:200]}"
    if code == "not_found":
        raise NotFoundError(message.removeprefix("VM not found: "))
    if code == "validation_error":
        field, _, detail = message.partition(": ")
        raise ValidationError(field, detail or message)
    if code == "conflict":
        raise ConflictError(message)
    if code == "hypervisor_error":
        raise HypervisorError(message)
    raise RemoteError(code, message)  # invalid_state and the rest keep the server's code


class RemoteSupervisor:
    """Same surface as Supervisor for what the dashboard needs."""

    def __init__(self, url: str, token: str | None, paths: Paths, *,
                 bridge_consoles: bool = False) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self.paths = paths
        self._headers = headers
        # A control plane on another host: consoles go through local bridges (WebSocket).
        self._bridges: dict[str, ConsoleBridge] | None = {} if bridge_consoles else None
        self.settings: Settings = load_settings(paths)
        self._http = httpx.AsyncClient(base_url=url, headers=headers,
                                       timeout=httpx.Timeout(120, connect=5))
        self._records: dict[str, VmRecord] = {}
        self._subscribers: list[Callable[[VmEvent], None]] = []
        self._follower: asyncio.Task | None = None
        self.reachable = True  # False while the event stream is down (the dashboard says so)

    @classmethod
    async def open(cls, url: str, token: str | None, home: Path, *,
                   bridge_consoles: bool = False) -> RemoteSupervisor:
        remote = cls(url, token, Paths(home), bridge_consoles=bridge_consoles)
        await remote.refresh()
        remote._follower = asyncio.ensure_future(remote._follow_events())
        return remote

    async def close(self) -> None:
        for bridge in (self._bridges or {}).values():
            bridge.close()
        if self._follower:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._follower
        await self._http.aclose()

    async def refresh(self) -> None:
        response = await self._request("GET", "/vms")
        raise_for_api_error(response)
        self._records = {r.id: r for r in map(record_from_api, response.json())}

    async def _follow_events(self) -> None:
        """Mirror every change; reconnect (and resynchronise) if the stream drops."""
        while True:
            try:
                async with self._http.stream("GET", "/events", timeout=None) as stream:
                    await self.refresh()
                    self.reachable = True
                    kind = None
                    async for line in stream.aiter_lines():
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: ") and kind in ("created", "state",
                                                                     "deleted"):
                            self._apply(kind, json.loads(line[6:]))
            except (httpx.HTTPError, GlidexError) as exc:
                log.info("event stream from %s dropped: %s", self.url, exc)
            self.reachable = False
            await asyncio.sleep(1.0)

    def _apply(self, kind: str, payload: dict) -> None:
        record = record_from_api(payload["vm"])
        if kind == "deleted":
            self._records.pop(record.id, None)
        else:
            self._records[record.id] = record
        event = VmEvent(kind, record, payload.get("reason"))
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber failed")

    # -- the Supervisor surface ------------------------------------------------------------
    def subscribe(self, callback: Callable[[VmEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def list(self) -> list[VmRecord]:
        return sorted(self._records.values(), key=lambda r: r.created_at)

    def get(self, ref: str) -> VmRecord:
        record = self._records.get(ref) or next(
            (r for r in self._records.values() if r.name == ref), None)
        if record is None:
            raise NotFoundError(ref)
        return record

    def console_info(self, ref: str) -> ConsoleInfo:
        record = self.get(ref)
        if self._bridges is not None:
            socket_path, log_path = self._bridge_paths(record.id)
            bridge = self._bridges.get(record.id)
            return ConsoleInfo(record.id, socket_path, log_path,
                               available=record.is_live and bridge is not None and bridge.alive)
        socket_path = self.paths.console_socket(record.id)
        return ConsoleInfo(record.id, socket_path, self.paths.console_log(record.id),
                           available=record.is_live and socket_path.exists())

    def open_console(self, ref: str) -> ConsoleInfo:
        """The console of a VM, ready to attach to; for a remote control plane this opens a
        local bridge over its WebSocket (fetching the log's tail first, so history shows)."""
        record = self.get(ref)
        if self._bridges is None or not record.is_live:
            return self.console_info(ref)
        bridge = self._bridges.get(record.id)
        if bridge is None or not bridge.alive:
            socket_path, log_path = self._bridge_paths(record.id)
            try:
                with httpx.Client(base_url=self.url, headers=self._headers, timeout=5) as http:
                    tail = http.get(f"/vms/{record.id}/log", params={"tail_bytes": BRIDGE_TAIL})
            except httpx.TransportError as exc:
                raise ControlPlaneUnreachable(self.url, exc) from None
            raise_for_api_error(tail)
            ws_url = self.url.replace("http", "ws", 1) + f"/vms/{record.id}/console/ws"
            self._bridges[record.id] = ConsoleBridge(ws_url, self._headers, socket_path,
                                                     log_path, tail.content)
        return self.console_info(ref)

    def _bridge_paths(self, vm_id: str) -> tuple[Path, Path]:
        """Beside this home's own sockets (the run dir is short enough for socket paths)."""
        folder = make_private_dir(self.paths.run_dir)
        return (folder / f"{short_id(vm_id)}.remote.sock",
                folder / f"{short_id(vm_id)}.mirror.log")

    async def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ControlPlaneUnreachable(self.url, exc) from None

    async def _call(self, method: str, path: str, **kwargs) -> VmRecord | None:
        response = await self._request(method, path, **kwargs)
        raise_for_api_error(response)
        if response.status_code == 204:
            return None
        record = record_from_api(response.json())
        self._records[record.id] = record
        return record

    async def create(self, spec: VmSpec) -> VmRecord:
        body = {k: v for k, v in vars(spec).items() if v is not None}
        return await self._call("POST", "/vms", json=body)

    async def start(self, ref: str) -> VmRecord:
        return await self._call("POST", f"/vms/{ref}/start")

    async def stop(self, ref: str, *, force: bool = False, timeout: float | None = None):
        return await self._call("POST", f"/vms/{ref}/stop", params={"force": str(force).lower()})

    async def pause(self, ref: str) -> VmRecord:
        return await self._call("POST", f"/vms/{ref}/pause")

    async def resume(self, ref: str) -> VmRecord:
        return await self._call("POST", f"/vms/{ref}/resume")

    async def restart(self, ref: str) -> VmRecord:
        return await self._call("POST", f"/vms/{ref}/restart")

    async def delete(self, ref: str) -> None:
        record = self.get(ref)
        await self._call("DELETE", f"/vms/{record.id}")
        self._records.pop(record.id, None)

