"""The control plane with the PROPOSED FIXES applied in memory, to measure them before they land.

``python -m bench.patched FIX[,FIX...] -- <glidex-control-plane arguments>``. Bench-only: the
product files are not changed; each fix below is the monkeypatch equivalent of the diff proposed
in bench/RESULTS.md, so "before" and "after" can be measured side by side in the same run.

- ``nodelay``: set TCP_NODELAY on the API's listening socket (accepted sockets inherit it).
  ``bind()`` creates the socket with proto 0, so asyncio's own TCP_NODELAY (only set when
  ``sock.proto == IPPROTO_TCP``) never applies, and every keep-alive response whose headers and
  body go out in two writes waits for the client's delayed ACK (~40 ms).
- ``keeper-S``: start the console keeper with ``python -S`` (no site-packages scan: the keeper
  is stdlib only and finds glidex_core through the PYTHONPATH the supervisor already sets).
- ``fast-list``: ``GET /vms`` answers with JSON built from plain dicts (``vm_dict``) and
  ``json.dumps``, returned as a ``Response`` so FastAPI does not validate and re-serialise 1000
  pydantic models; paths are joined as strings from ``run_dir``/``vms_dir`` computed once per
  request. Same bytes out (checked by the benchmark), about half the work.
"""

from __future__ import annotations

import socket
import sys


def apply_nodelay() -> None:
    import glidex_core.api.server as server

    original = server.bind

    def bind(host: str, port: int) -> socket.socket:
        sock = original(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    server.bind = bind


def _keeper_argv(args):
    if isinstance(args, (list, tuple)) and len(args) > 2 and args[0] == sys.executable \
            and tuple(args[1:3]) == ("-m", "glidex_core.console.keeper"):
        return [args[0], "-S", *args[1:]]
    return args


def apply_keeper_s() -> None:
    import asyncio
    import subprocess

    original_exec = asyncio.create_subprocess_exec

    async def create_subprocess_exec(program, *args, **kwargs):
        argv = _keeper_argv([program, *args])
        return await original_exec(*argv, **kwargs)

    class Popen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            super().__init__(_keeper_argv(args), *rest, **kwargs)

    asyncio.create_subprocess_exec = create_subprocess_exec
    subprocess.Popen = Popen  # whichever way the supervisor spawns its keepers


def vm_dict(record, run_dir: str, vms_dir: str) -> dict:
    """What ``VmResponse.of`` produces, without pydantic or pathlib per record."""
    from glidex_core.api.schemas import iso
    from glidex_core.config import short_id

    return {
        "id": record.id, "name": record.name, "state": str(record.state),
        "reason": record.reason, "vcpu_count": record.vcpu_count,
        "mem_size_mib": record.mem_size_mib, "kernel_image_path": record.kernel_image_path,
        "rootfs_path": record.rootfs_path, "kernel_args": record.kernel_args,
        "initrd_path": record.initrd_path, "hypervisor": record.hypervisor,
        "console_socket_path": f"{run_dir}/{short_id(record.id)}.console.sock",
        "log_path": f"{vms_dir}/{record.id}/console.log",
        "created_at": iso(record.created_at), "updated_at": iso(record.updated_at),
        "started_at": iso(record.started_at), "stopped_at": iso(record.stopped_at),
        "uptime_seconds": record.uptime, "exit_code": record.exit_code,
        "exit_signal": record.exit_signal, "pid": record.vmm_pid,
    }


def apply_fast_list() -> None:
    import json

    from fastapi import Response
    from fastapi.routing import APIRoute

    import glidex_core.api.server as server

    original = server.create_app

    def create_app(supervisor, **kwargs):
        app = original(supervisor, **kwargs)

        async def list_vms() -> Response:
            run_dir, vms_dir = str(supervisor.paths.run_dir), str(supervisor.paths.vms_dir)
            body = json.dumps([vm_dict(r, run_dir, vms_dir) for r in supervisor.list()],
                              separators=(",", ":"))
            return Response(body, media_type="application/json")

        # Matched before the original GET /vms route; middleware (auth, limits) still applies.
        app.router.routes.insert(0, APIRoute("/vms", list_vms, methods=["GET"],
                                             include_in_schema=False))
        return app

    server.create_app = create_app


FIXES = {"nodelay": apply_nodelay, "keeper-S": apply_keeper_s, "fast-list": apply_fast_list}
ALL_FIXES = ("nodelay", "keeper-S", "fast-list")


def main(argv: list[str]) -> int:
    names, rest = argv[0], argv[argv.index("--") + 1 :]
    for name in filter(None, names.split(",")):
        FIXES[name]()
    from glidex_core.control_plane import main as control_plane_main

    return control_plane_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
