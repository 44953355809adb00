"""``glidex``: the dashboard; ``glidex images ...``: the sample guest."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["images"]:
        from glidex_core.cli_images import main as images_main

        return images_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="glidex",
        description="Glidex dashboard. Also: 'glidex images sample' builds the sample guest.",
    )
    parser.add_argument("--home", type=Path,
                        help="Glidex home (default: $GLIDEX_HOME or ~/.glidex)")
    parser.add_argument("--api", action="store_true",
                        help="also serve the REST API (host and port from config.toml)")
    parser.add_argument("--url", default=os.environ.get("GLIDEX_URL"),
                        help="drive the control plane at this URL (e.g. http://host:8080) "
                        "instead of this machine's (default: $GLIDEX_URL)")
    parser.add_argument("--token", default=os.environ.get("GLIDEX_TOKEN"),
                        help="bearer token for --url (default: $GLIDEX_TOKEN)")
    args = parser.parse_args(argv)

    from glidex_tui.app import GlidexApp

    app = GlidexApp(home=args.home, serve_api=args.api, url=args.url, token=args.token)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
