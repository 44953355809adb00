"""What each gxctl command does, given parsed arguments; shared by one-shot use and the shell."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from gxctl import render
from gxctl.client import Client, GxctlError, LogChunk
from gxctl.connect import CLOSED, connect
from gxctl.escape import parse_escape
from gxctl.parser import ALIASES, COMMAND_HELP, SHELL_ONLY_HELP, command_parser
from gxctl.prompts import Ask, ask_create, confirm
from gxctl.settings import Settings

LOG_PAGE = 256 << 10  # bytes per log request
FOLLOW_INTERVAL = 0.5  # seconds between polls of a followed log
PATH_FIELDS = ("kernel_image_path", "rootfs_path", "initrd_path")
CREATE_FIELDS = ("name", "vcpu_count", "mem_size_mib", "kernel_image_path", "rootfs_path",
                 "initrd_path", "kernel_args", "hypervisor")


@dataclass
class Context:
    client: Client
    settings: Settings
    json: bool = False
    interactive: bool = False  # the shell: ask for what is missing instead of refusing
    ask: Ask = input
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def write_bytes(self, data: bytes) -> None:
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:
            self.out.flush()
            buffer.write(data)
            buffer.flush()
        else:
            self.out.write(data.decode("utf-8", "replace"))
            self.out.flush()

    def emit(self, data: object, human: Callable[[], str] | str) -> None:
        if self.json:
            render.print_json(data, self.out)
            self.out.flush()
        else:
            self.say(human() if callable(human) else human)


def _vm_ref(ctx: Context, args: argparse.Namespace) -> str:
    if args.vm:
        return args.vm
    if not ctx.interactive:
        raise GxctlError(f"{args.command}: a VM name or id is required")
    ref = ctx.ask("VM name or id: ").strip()
    if not ref:
        raise GxctlError("no VM given")
    return ref


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    vms = ctx.client.list_vms()
    ctx.emit(vms, lambda: render.vm_table(vms))
    return 0


def cmd_get(ctx: Context, args: argparse.Namespace) -> int:
    vm = ctx.client.get_vm(_vm_ref(ctx, args))
    ctx.emit(vm, lambda: render.vm_detail(vm))
    return 0


def _absolute(path: str) -> str:
    """Paths as the user meant them: ~ expanded, relative to where gxctl runs."""
    return os.path.abspath(os.path.expanduser(path))


def create_body(ctx: Context, args: argparse.Namespace) -> dict:
    given = {k: getattr(args, k) for k in CREATE_FIELDS if getattr(args, k, None) is not None}
    if ctx.interactive:
        body = ask_create(ctx.ask, given, ctx.settings.default_kernel,
                          ctx.settings.default_rootfs, say=ctx.say)
    else:
        if not given.get("name"):
            raise GxctlError("create: --name is required")
        body = {"vcpu_count": 1, "mem_size_mib": 512,
                "kernel_image_path": str(ctx.settings.default_kernel),
                "rootfs_path": str(ctx.settings.default_rootfs), **given}
    for key in PATH_FIELDS:
        if body.get(key):
            body[key] = _absolute(body[key])
    return body


def shared_disk_note(ctx: Context, body: dict) -> str | None:
    """A warning when another VM already has this root disk: the server refuses to start two
    VMs on one disk (one guest's writes would corrupt the other's file system)."""
    disk = body.get("rootfs_path")
    users = [vm["name"] for vm in ctx.client.list_vms()
             if disk and os.path.realpath(vm.get("rootfs_path") or "") == os.path.realpath(disk)]
    if not users:
        return None
    stem, suffix = os.path.splitext(disk)
    copy = f"{stem}-{body.get('name', 'copy')}{suffix}"
    return (f"note: {', '.join(users)} already use{'s' if len(users) == 1 else ''} {disk}; "
            f"{body.get('name')} cannot run while {'it runs' if len(users) == 1 else 'they run'}"
            f". To give it a disk of its own: cp {disk} {copy}, then create it with "
            f"--rootfs {copy}")


def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    body = create_body(ctx, args)
    if note := shared_disk_note(ctx, body):
        ctx.err.write(note + "\n")  # stderr: --json output stays JSON
    vm = ctx.client.create_vm(body)
    ctx.emit(vm, lambda: f"Created {vm.get('name')} ({vm.get('id')})")
    return 0


def cmd_action(ctx: Context, args: argparse.Namespace) -> int:
    force = bool(getattr(args, "force", False))
    vm = ctx.client.action(_vm_ref(ctx, args), args.command, force=force)
    ctx.emit(vm, lambda: render.vm_line(vm))
    return 0


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    ref = _vm_ref(ctx, args)
    if not args.yes:
        if not ctx.interactive and not sys.stdin.isatty():
            raise GxctlError(f"not deleting {ref} without confirmation; pass --yes")
        vm = ctx.client.get_vm(ref)
        try:
            sure = confirm(ctx.ask, f"Delete VM {vm.get('name', ref)} ({vm.get('state')})?")
        except EOFError:
            sure = False
        if not sure:
            ctx.say("Not deleted.")
            return 0 if ctx.interactive else 1
    ctx.client.delete_vm(ref)
    ctx.emit({"deleted": ref}, f"Deleted {ref}")
    return 0


# Queries a guest sent to *its* terminal (cursor position, status, device attributes). Shown on
# ours they would make our terminal answer, and the answer would land in our input.
TERMINAL_QUERIES = re.compile(rb"\x1b\[[0-9;?>=]*[nc]")


def _show_log(ctx: Context, chunk: LogChunk) -> None:
    if ctx.json:
        ctx.out.write(json.dumps({"offset": chunk.offset, "size": chunk.size,
                                  "data": chunk.data.decode("utf-8", "replace")}) + "\n")
        ctx.out.flush()
    elif chunk.data:
        ctx.write_bytes(TERMINAL_QUERIES.sub(b"", chunk.data))


def _log_from(ctx: Context, ref: str, start: int) -> LogChunk:
    """The log from ``start`` to its current end, a page per request (the server caps a reply);
    shown page by page as it arrives, except the last, returned (all of it in one for --json)."""
    chunk = ctx.client.read_log(ref, offset=start, limit=LOG_PAGE)
    parts = [chunk]
    while chunk.data and chunk.end < chunk.size:
        if not ctx.json:
            _show_log(ctx, chunk)
            parts.clear()
        chunk = ctx.client.read_log(ref, offset=chunk.end, limit=LOG_PAGE)
        parts.append(chunk)
    return LogChunk(b"".join(p.data for p in parts), parts[0].offset, chunk.size)


def cmd_log(ctx: Context, args: argparse.Namespace) -> int:
    ref = _vm_ref(ctx, args)
    start = 0
    if args.tail is not None:
        size = ctx.client.read_log(ref, tail_bytes=0).size
        start = max(0, size - args.tail)
    chunk = _log_from(ctx, ref, start)
    _show_log(ctx, chunk)
    if not args.follow:
        return 0
    offset = chunk.end
    try:
        while True:
            chunk = ctx.client.read_log(ref, offset=offset, limit=LOG_PAGE)
            if chunk.size < offset:  # the log started over: follow it from its start
                offset = 0
                continue
            if chunk.data:
                _show_log(ctx, chunk)
                offset = chunk.end
            if len(chunk.data) < LOG_PAGE:
                time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        return 0


def cmd_health(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.client.health()
    ctx.emit(data, lambda: render.health(data))
    return 0


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    try:
        for event in ctx.client.events():
            if ctx.json:
                ctx.out.write(json.dumps(event) + "\n")
                ctx.out.flush()
            else:
                ctx.say(render.event_line(event))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_connect(ctx: Context, args: argparse.Namespace) -> int:
    try:
        escape = parse_escape(args.escape)
    except ValueError as exc:
        raise GxctlError(str(exc)) from None
    ref = _vm_ref(ctx, args)
    how = connect(ctx.client, ref, escape, via=args.via,
                  stdin_fd=sys.stdin.fileno(), stdout_fd=ctx.out.fileno(), say=ctx.say)
    return 1 if how == CLOSED and not ctx.interactive else 0


def help_text(shell: bool) -> str:
    entries = dict(COMMAND_HELP)
    if shell:
        entries.update(SHELL_ONLY_HELP)
    width = max(len(k) for k in entries)
    lines = ["Commands:"] + [f"  {k.ljust(width)}  {v}" for k, v in entries.items()]
    if shell:
        lines.append("Type 'COMMAND --help' for a command's options; Tab completes commands "
                     "and VM names.")
    else:
        lines.append("Run 'gxctl COMMAND --help' for a command's options; "
                     "'gxctl' alone starts the shell.")
    return "\n".join(lines)


def cmd_help(ctx: Context, args: argparse.Namespace) -> int:
    topic = ALIASES.get(args.topic, args.topic)
    if topic is None:
        ctx.say(help_text(ctx.interactive))
    elif topic in COMMAND_HELP:
        ctx.say(command_parser(topic).format_help().rstrip())
    else:
        raise GxctlError(f"no such command: {args.topic}")
    return 0


HANDLERS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "list": cmd_list,
    "get": cmd_get,
    "create": cmd_create,
    "start": cmd_action,
    "stop": cmd_action,
    "pause": cmd_action,
    "resume": cmd_action,
    "restart": cmd_action,
    "delete": cmd_delete,
    "log": cmd_log,
    "connect": cmd_connect,
    "health": cmd_health,
    "events": cmd_events,
    "help": cmd_help,
}


def run(ctx: Context, args: argparse.Namespace) -> int:
    """Run one parsed command; GxctlError propagates to the caller, which prints it."""
    args.command = ALIASES.get(args.command, args.command)
    if getattr(args, "json", False) and not ctx.json:
        ctx = dataclasses.replace(ctx, json=True)
    return HANDLERS[args.command](ctx, args)
