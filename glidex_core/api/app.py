"""The REST API: the original Glidex contract (paths, fields, status codes) and its extensions.

Handlers are thin: they translate HTTP to Supervisor calls. Errors are raised as GlidexError and
turned into ``{"error", "message"}`` bodies in one place (errors.py).
"""

from __future__ import annotations

import json
import os
import time
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI, Query, Response

from glidex_core.api.console_ws import install_console_websocket
from glidex_core.api.errors import install_error_handlers
from glidex_core.api.events import install_event_stream
from glidex_core.api.guards import BearerAuthMiddleware, BodyLimitMiddleware, require_json
from glidex_core.api.schemas import (
    ConsoleResponse,
    CreateVmRequest,
    ErrorResponse,
    HealthResponse,
    VmResponse,
    vm_dict,
)
from glidex_core.models import VmState
from glidex_core.supervisor import Supervisor

DEFAULT_LOG_CHUNK = 64 << 10
MAX_LOG_CHUNK = 4 << 20
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 415, 422, 500)}


def package_version() -> str:
    try:
        return version("glidex")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(supervisor: Supervisor, *, token: str | None = None) -> FastAPI:
    app = FastAPI(title="Glidex", version=package_version(), responses=ERRORS,
                  description="Control plane for Firecracker (and QEMU) microVMs.")
    app.state.supervisor = supervisor
    started = time.monotonic()
    install_error_handlers(app)
    app.add_middleware(BearerAuthMiddleware, token=token)
    app.add_middleware(BodyLimitMiddleware)
    paths = supervisor.paths

    def vm(record) -> VmResponse:
        return VmResponse.of(record, paths)

    glidex_version = package_version()  # importlib.metadata reads files: once, not per call

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        records = supervisor.list()
        counts = {"total": len(records), **dict.fromkeys(map(str, VmState), 0)}
        for record in records:
            counts[str(record.state)] += 1
        return HealthResponse(status="ok", version=glidex_version,
                              uptime_seconds=round(time.monotonic() - started, 3), vms=counts)

    @app.get("/vms", response_model=list[VmResponse])
    async def list_vms() -> Response:
        # Plain dicts straight to JSON: validating and re-serialising a model per VM doubled
        # the time of this call with 1000 VMs (bench/RESULTS.md, B).
        run_dir, vms_dir = str(paths.run_dir), str(paths.vms_dir)
        body = json.dumps([vm_dict(r, run_dir, vms_dir) for r in supervisor.list()])
        return Response(body, media_type="application/json")

    @app.post("/vms", status_code=201, response_model=VmResponse,
              dependencies=[Depends(require_json)])
    async def create_vm(body: CreateVmRequest) -> VmResponse:
        return vm(await supervisor.create(body.to_spec()))

    @app.get("/vms/{ref}", response_model=VmResponse)
    async def get_vm(ref: str) -> Response:
        # The most polled call: plain JSON, no response model to validate (RESULTS.md, H).
        body = json.dumps(vm_dict(supervisor.get(ref), str(paths.run_dir), str(paths.vms_dir)))
        return Response(body, media_type="application/json")

    @app.delete("/vms/{ref}", status_code=204, response_class=Response)
    async def delete_vm(ref: str) -> Response:
        await supervisor.delete(ref)
        return Response(status_code=204)

    @app.post("/vms/{ref}/start", response_model=VmResponse)
    async def start_vm(ref: str) -> VmResponse:
        """Start a VM; on a paused VM this resumes it, as the original Glidex did."""
        return vm(await supervisor.start(ref))

    @app.post("/vms/{ref}/stop", response_model=VmResponse)
    async def stop_vm(ref: str, force: bool = False) -> VmResponse:
        """Graceful power-off with a timeout, then forced; ``force=true`` forces at once."""
        return vm(await supervisor.stop(ref, force=force))

    @app.post("/vms/{ref}/pause", response_model=VmResponse)
    async def pause_vm(ref: str) -> VmResponse:
        return vm(await supervisor.pause(ref))

    @app.post("/vms/{ref}/resume", response_model=VmResponse)
    async def resume_vm(ref: str) -> VmResponse:
        return vm(await supervisor.resume(ref))

    @app.post("/vms/{ref}/restart", response_model=VmResponse)
    async def restart_vm(ref: str) -> VmResponse:
        return vm(await supervisor.restart(ref))

    @app.get("/vms/{ref}/console", response_model=ConsoleResponse)
    async def console(ref: str) -> ConsoleResponse:
        info = supervisor.console_info(ref)
        return ConsoleResponse(vm_id=info.vm_id, console_socket_path=str(info.console_socket_path),
                               log_path=str(info.log_path), available=info.available,
                               clients=info.clients, log_error=info.log_error)

    @app.get("/vms/{ref}/log", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}}})
    async def read_log(
        ref: str,
        tail_bytes: int | None = Query(None, ge=0, le=MAX_LOG_CHUNK),
        offset: int | None = Query(None, ge=0),
        limit: int = Query(DEFAULT_LOG_CHUNK, ge=1, le=MAX_LOG_CHUNK),
    ) -> Response:
        """Console log bytes, read by range (never the whole file into memory).

        ``X-Log-Offset`` is the offset of the first byte returned and ``X-Log-Size`` the size of
        the log now: follow a log by asking again from offset + length.
        """
        record = supervisor.get(ref)
        data, start, size = _read_range(paths.console_log(record.id), tail_bytes, offset, limit)
        return Response(data, media_type="application/octet-stream",
                        headers={"X-Log-Offset": str(start), "X-Log-Size": str(size)})

    install_event_stream(app, supervisor)
    install_console_websocket(app, supervisor, token)

    return app


def _read_range(path, tail_bytes: int | None, offset: int | None,
                limit: int) -> tuple[bytes, int, int]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b"", 0, 0
    try:
        size = os.fstat(fd).st_size
        if offset is None:
            start = max(0, size - (DEFAULT_LOG_CHUNK if tail_bytes is None else tail_bytes))
            length = size - start
        else:
            start = min(offset, size)
            length = min(limit, size - start)
        return os.pread(fd, length, start), start, size
    finally:
        os.close(fd)
