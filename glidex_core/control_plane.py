"""``glidex-control-plane``: the supervisor and its REST API, without a screen.

One supervisor per Glidex home (a lock enforces it): a second control plane on the same home
exits with a clear message, and ``glidex`` started meanwhile attaches to this one as a client.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from glidex_core.config import Paths, glidex_home, load_settings
from glidex_core.models import GlidexError
from glidex_core.supervisor import Supervisor, VmEvent

log = logging.getLogger("glidex.control_plane")


def _log_event(event: VmEvent) -> None:
    reason = f" ({event.reason})" if event.reason else ""
    log.info("%s %s %s%s", event.vm.name, event.kind, event.vm.state, reason)


async def serve(home: Path, host: str, port: int, token: str | None) -> None:
    from glidex_core.api.server import ApiServer

    supervisor = await Supervisor.open(home)
    try:
        supervisor.subscribe(_log_event)
        server = ApiServer(supervisor, host, port, token)
        live = sum(1 for r in supervisor.list() if r.is_live)
        log.info("managing %s (%d VMs, %d running)", supervisor.paths.home,
                 len(supervisor.list()), live)
        log.info("API on %s%s", server.url,
                 " (bearer token required; see api-token in the Glidex home)"
                 if server.token and not token else "")
        await server.serve()
    finally:
        await supervisor.close()
        log.info("stopped; running VMs keep running")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="glidex-control-plane",
        description="Run the Glidex supervisor and its REST API (VMs outlive it).",
    )
    parser.add_argument("--home", type=Path,
                        help="Glidex home (default: $GLIDEX_HOME or ~/.glidex)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; any other "
                        "address requires a bearer token)")
    parser.add_argument("--port", type=int, help="port (default 8080)")
    parser.add_argument("--token", help="bearer token clients must send (default: $GLIDEX_TOKEN)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    home = args.home or glidex_home()
    try:
        settings = load_settings(Paths(home))
        host = args.host or settings.api_host
        port = settings.api_port if args.port is None else args.port
        asyncio.run(serve(home, host, port, args.token or os.environ.get("GLIDEX_TOKEN")))
    except (GlidexError, ValueError, OSError) as exc:
        print(f"glidex-control-plane: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
