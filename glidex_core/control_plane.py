"""``glidex-control-plane``: the supervisor without a screen.

It adopts running VMs, follows their lifecycle and logs every transition. The REST API is served
from here once it exists; until then this is the headless owner of a Glidex home.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from glidex_core.models import GlidexError
from glidex_core.supervisor import Supervisor, VmEvent

log = logging.getLogger("glidex.control_plane")


def _log_event(event: VmEvent) -> None:
    reason = f" ({event.reason})" if event.reason else ""
    log.info("%s %s %s%s", event.vm.name, event.kind, event.vm.state, reason)


async def serve(home: Path | None) -> None:
    supervisor = await Supervisor.open(home)
    supervisor.subscribe(_log_event)
    live = sum(1 for r in supervisor.list() if r.is_live)
    log.info("managing %s (%d VMs, %d running)", supervisor.paths.home,
             len(supervisor.list()), live)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await supervisor.close()
        log.info("stopped; running VMs keep running")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glidex-control-plane")
    parser.add_argument("--home", type=Path,
                        help="Glidex home (default: $GLIDEX_HOME or ~/.glidex)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.home))
    except (GlidexError, ValueError, OSError) as exc:
        print(f"glidex-control-plane: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
