"""The interactive shell: ``gxctl`` with no command.

prompt_toolkit gives line editing, history kept in ``$GLIDEX_HOME/gxctl_history`` across runs,
and Tab completion of command names and of VM names (asked of the server, cached briefly).
Ctrl-C drops the current line (or cancels the command's questions); Ctrl-D on an empty line exits.
When stdin is not a terminal the shell reads commands line by line with no prompt (scripts).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Iterable

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from glidex_core.config import make_private_dir
from gxctl.client import GxctlError
from gxctl.commands import Context, help_text, run
from gxctl.parser import (
    ALIASES,
    COMMAND_HELP,
    SHELL_ONLY_HELP,
    VM_COMMANDS,
    ParserExit,
    UsageError,
    build_shell_parser,
)

PROMPT = "gxctl> "
EXIT_WORDS = ("exit", "quit")
COMMAND_NAMES = sorted([*COMMAND_HELP, *SHELL_ONLY_HELP])
NAME_CACHE_SECONDS = 3.0


class GxctlCompleter(Completer):
    """Command names first; then, after a command that takes a VM, the server's VM names."""

    def __init__(self, fetch_names: Callable[[], list[str]],
                 ttl: float = NAME_CACHE_SECONDS) -> None:
        self.fetch_names = fetch_names
        self.ttl = ttl
        self._names: list[str] = []
        self._fetched = float("-inf")

    def vm_names(self) -> list[str]:
        if time.monotonic() - self._fetched > self.ttl:
            try:
                self._names = self.fetch_names()
            except GxctlError:
                self._names = []
            self._fetched = time.monotonic()
        return self._names

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        words = text.split()
        if text.endswith(" ") or not words:
            words.append("")
        word = words[-1]
        if len(words) == 1:
            candidates: list[str] = COMMAND_NAMES
        elif len(words) == 2 and words[0] in VM_COMMANDS and not word.startswith("-"):
            candidates = self.vm_names()
        elif len(words) == 2 and words[0] == "help":
            candidates = list(COMMAND_HELP)
        else:
            return
        for candidate in candidates:
            if candidate.startswith(word):
                # A trailing space, as shells do: the next word can be typed at once.
                yield Completion(candidate + " ", start_position=-len(word),
                                 display=candidate)


def open_history(ctx: Context) -> History:
    try:
        make_private_dir(ctx.settings.home)
        path = ctx.settings.history_file
        path.touch(mode=0o600, exist_ok=True)
        return FileHistory(str(path))
    except OSError as exc:
        print(f"gxctl: history will not be saved ({exc})", file=sys.stderr)
        return InMemoryHistory()


def _vm_names(ctx: Context) -> list[str]:
    return [vm["name"] for vm in ctx.client.list_vms() if vm.get("name")]


OK, FAILED, EXIT = "ok", "failed", "exit"


def execute(ctx: Context, line: str) -> str:
    """Run one shell line: OK, FAILED (the error was printed) or EXIT."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        return _fail(ctx, str(exc))
    if not argv:
        return OK
    if argv[0] in EXIT_WORDS:
        return EXIT
    if argv[0] not in COMMAND_HELP and argv[0] not in ALIASES and not argv[0].startswith("-"):
        return _fail(ctx, f"unknown command {argv[0]!r}; type 'help' for the commands")
    try:
        args = build_shell_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(ctx, str(exc))
    except ParserExit as exc:  # --help was shown
        return OK if exc.status == 0 else FAILED
    if args.command is None:
        ctx.say(help_text(shell=True))
        return OK
    try:
        status = run(ctx, args)
    except GxctlError as exc:
        return _fail(ctx, exc.message)
    except (KeyboardInterrupt, EOFError):
        return _fail(ctx, "cancelled")
    return OK if status == 0 else FAILED


def _fail(ctx: Context, message: str) -> str:
    ctx.err.write(f"Error: {message}\n")
    ctx.err.flush()
    return FAILED


def _greeting(ctx: Context) -> str:
    try:
        health = ctx.client.health()
    except GxctlError as exc:
        return f"gxctl: {exc.message}\nType 'help' for the commands, 'exit' or Ctrl-D to leave."
    vms = health.get("vms", {})
    total = vms.get("total", "?") if isinstance(vms, dict) else "?"
    version = f" {health['version']}" if health.get("version") else ""
    return (f"Connected to Glidex{version} at {ctx.client.url} "
            f"({total} VM{'' if total == 1 else 's'}). "
            "Type 'help' for the commands, 'exit' or Ctrl-D to leave.")


def run_shell(ctx: Context) -> int:
    if not sys.stdin.isatty():
        return _run_script(ctx)
    session: PromptSession[str] = PromptSession(
        history=open_history(ctx),
        completer=GxctlCompleter(lambda: _vm_names(ctx)),
        complete_while_typing=False,
    )
    questions: PromptSession[str] = PromptSession()  # create's questions stay out of history
    ctx.interactive = True
    ctx.ask = lambda text: questions.prompt(text)
    ctx.say(_greeting(ctx))
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if execute(ctx, line) == EXIT:
            break
    return 0


def _run_script(ctx: Context) -> int:
    """Commands from a pipe, one per line, no prompt; exit status 1 if any failed."""
    status = 0
    for line in sys.stdin:
        outcome = execute(ctx, line)
        if outcome == EXIT:
            break
        if outcome == FAILED:
            status = 1
    return status
