"""Questions asked of a person: values with defaults, numbers re-asked until valid, y/N.

``ask`` is any callable taking the prompt text and returning the answer (prompt_toolkit's prompt
in the shell, ``input`` elsewhere); it may raise EOFError or KeyboardInterrupt to cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from glidex_core.config import HYPERVISORS
from glidex_core.models import DEFAULT_MEM_MIB, DEFAULT_VCPUS, MAX_VCPUS, MIN_MEM_MIB

Ask = Callable[[str], str]
Say = Callable[[str], None]


def ask_text(ask: Ask, label: str, default: str | None = None, required: bool = False,
             say: Say = print) -> str | None:
    """A line of text; empty means ``default`` (or re-ask when required and there is none)."""
    suffix = f" [{default}]" if default else ""
    while True:
        answer = ask(f"{label}{suffix}: ").strip()
        if answer:
            return answer
        if default:
            return default
        if not required:
            return None
        say(f"{label} is required.")


def ask_int(ask: Ask, label: str, default: int, low: int = 1, high: int | None = None,
            say: Say = print) -> int:
    """A whole number in [low, high]; anything else is explained and asked again."""
    while True:
        answer = ask(f"{label} [{default}]: ").strip()
        if not answer:
            return default
        try:
            value = int(answer)
        except ValueError:
            say(f"{answer!r} is not a whole number; try again.")
            continue
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            say(f"{label} must be {bounds}; try again.")
            continue
        return value


def ask_choice(ask: Ask, label: str, choices: tuple[str, ...], say: Say = print) -> str | None:
    """One of ``choices``, or None for an empty answer (the server's default)."""
    while True:
        answer = ask(f"{label} ({'/'.join(choices)}, empty = server default): ").strip()
        if not answer:
            return None
        if answer in choices:
            return answer
        say(f"{answer!r} is not one of {', '.join(choices)}; try again.")


def confirm(ask: Ask, question: str) -> bool:
    """y/N: only an explicit yes says yes."""
    return ask(f"{question} [y/N]: ").strip().lower() in ("y", "yes")


def ask_create(ask: Ask, given: dict, default_kernel: Path, default_rootfs: Path,
               say: Say = print) -> dict:
    """The create body, asking for each field not already in ``given`` (the original defaults)."""
    body = dict(given)
    if not body.get("name"):
        body["name"] = ask_text(ask, "Name", required=True, say=say)
    if body.get("vcpu_count") is None:
        body["vcpu_count"] = ask_int(ask, "vCPUs", DEFAULT_VCPUS, 1, MAX_VCPUS, say=say)
    if body.get("mem_size_mib") is None:
        body["mem_size_mib"] = ask_int(ask, "Memory (MiB)", DEFAULT_MEM_MIB, MIN_MEM_MIB, say=say)
    if not body.get("kernel_image_path"):
        body["kernel_image_path"] = ask_text(ask, "Kernel image", str(default_kernel),
                                             required=True, say=say)
    if not body.get("rootfs_path"):
        body["rootfs_path"] = ask_text(ask, "Root filesystem", str(default_rootfs),
                                       required=True, say=say)
    if "kernel_args" not in body:
        body["kernel_args"] = ask_text(ask, "Kernel args (optional)", say=say)
    if "hypervisor" not in body:
        body["hypervisor"] = ask_choice(ask, "Hypervisor", HYPERVISORS, say=say)
    return {k: v for k, v in body.items() if v is not None}
