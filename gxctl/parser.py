"""The command line grammar, shared by one-shot use (``gxctl start web``) and the shell."""

from __future__ import annotations

import argparse

from gxctl.escape import DEFAULT_ESCAPE

VM_COMMANDS = ("get", "start", "stop", "pause", "resume", "restart", "delete", "log", "connect")
COMMAND_HELP = {
    "list": "list the VMs",
    "get": "show one VM",
    "create": "create a VM (asks for what is not given)",
    "start": "start a VM (resumes a paused one)",
    "stop": "stop a VM (--force to kill it at once)",
    "pause": "pause a running VM",
    "resume": "resume a paused VM",
    "restart": "stop and start a VM",
    "delete": "delete a VM (stops it first; asks y/N unless --yes)",
    "connect": "attach to a VM's console (Ctrl+] detaches)",
    "log": "print a VM's console log (--tail N bytes, --follow)",
    "health": "show the control plane's health",
    "events": "watch VM events as they happen (Ctrl-C stops)",
    "help": "show the commands",
}
SHELL_ONLY_HELP = {"exit": "leave the shell (or Ctrl-D)"}
ALIASES = {"ls": "list"}


class UsageError(Exception):
    """A command line the grammar refuses; the message is argparse's."""


class ParserExit(Exception):
    """argparse wanted to exit (after --help): the shell just carries on."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ShellArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, for use inside the shell."""

    def error(self, message: str):
        prog = self.prog.strip()
        raise UsageError(f"{prog}: {message}" if prog else message)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            self._print_message(message)
        raise ParserExit(status)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _add_commands(parser: argparse.ArgumentParser) -> None:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                           help="print the raw JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=COMMAND_HELP[name], description=COMMAND_HELP[name],
                              parents=[json_flag], **kwargs)

    def vm_command(name: str) -> argparse.ArgumentParser:
        p = command(name)
        p.add_argument("vm", nargs="?", help="VM name or id")
        return p

    command("list", aliases=list(ALIASES))
    vm_command("get")
    create = command("create")
    create.add_argument("--name", help="the VM's unique name (required)")
    create.add_argument("--vcpus", type=_positive, dest="vcpu_count", metavar="N",
                        help="virtual CPUs (default 1)")
    create.add_argument("--mem", type=_positive, dest="mem_size_mib", metavar="MIB",
                        help="memory in MiB (default 512)")
    create.add_argument("--kernel", dest="kernel_image_path", metavar="PATH",
                        help="kernel image (default $GLIDEX_HOME/vmlinux.bin if it exists, "
                             "else $GLIDEX_HOME/vmlinuz)")
    create.add_argument("--rootfs", dest="rootfs_path", metavar="PATH",
                        help="root filesystem image (default $GLIDEX_HOME/rootfs.ext4)")
    create.add_argument("--initrd", dest="initrd_path", metavar="PATH",
                        help="initial ramdisk (optional)")
    create.add_argument("--kernel-args", dest="kernel_args", metavar="ARGS",
                        help="kernel command line (optional)")
    create.add_argument("--hypervisor", choices=("firecracker", "qemu"),
                        help="default: the server's")
    for name in ("start", "pause", "resume", "restart"):
        vm_command(name)
    vm_command("stop").add_argument("--force", action="store_true",
                                    help="kill the VM at once instead of a graceful stop")
    vm_command("delete").add_argument("--yes", "-y", action="store_true",
                                      help="do not ask for confirmation")
    log = vm_command("log")
    log.add_argument("--tail", type=_positive, metavar="BYTES",
                     help="only the last BYTES bytes")
    log.add_argument("--follow", "-f", action="store_true", help="keep printing new output")
    connect = vm_command("connect")
    connect.add_argument("--escape", default=DEFAULT_ESCAPE,
                         help="detach key in caret notation (default: %(default)s)")
    connect.add_argument("--via", choices=("auto", "socket", "ws"), default="auto",
                         help="keeper socket (same host) or WebSocket (default: auto)")
    command("health")
    command("events")
    command("help").add_argument("topic", nargs="?")


def build_parser() -> argparse.ArgumentParser:
    """The one-shot grammar: global options, then a command (none starts the shell)."""
    parser = argparse.ArgumentParser(
        prog="gxctl",
        description="Command-line client of the Glidex REST API. "
                    "Without a command, starts an interactive shell.")
    parser.add_argument("--url", help="control plane URL (default: $GLIDEX_URL or "
                                      "http://127.0.0.1:8080)")
    parser.add_argument("--token", help="API token (default: $GLIDEX_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print raw JSON, for scripts")
    _add_commands(parser)
    return parser


def build_shell_parser() -> ShellArgumentParser:
    """The shell's grammar: the same commands, without the global options."""
    parser = ShellArgumentParser(prog="", add_help=False)
    _add_commands(parser)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The one-shot parser of one command (for ``help COMMAND``)."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse has no API
        if name in action.choices:
            return action.choices[name]
    raise KeyError(name)
