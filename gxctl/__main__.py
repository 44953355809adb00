"""``gxctl``: one-shot commands (``gxctl start web``) or, with no command, the interactive shell.

Exit status: 0 on success, 1 on any error (printed as ``gxctl: <message>`` on stderr, the
server's own words for API errors), 2 for a command line gxctl does not understand, 130 after
Ctrl-C.
"""

from __future__ import annotations

import sys

from gxctl.client import Client, GxctlError
from gxctl.commands import Context, run
from gxctl.parser import build_parser
from gxctl.settings import resolve


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = resolve(args.url, args.token)
    try:
        with Client(settings.url, settings.token) as client:
            ctx = Context(client=client, settings=settings, json=args.json)
            if args.command is None:
                from gxctl.shell import run_shell  # prompt_toolkit only when it is needed

                return run_shell(ctx)
            return run(ctx, args)
    except GxctlError as exc:
        print(f"gxctl: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gxctl log web | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
