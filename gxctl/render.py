"""How gxctl shows things: aligned tables and key/value blocks for people, raw JSON for scripts."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TextIO

VM_COLUMNS = (("NAME", "name"), ("ID", "id"), ("STATE", "state"), ("VCPUS", "vcpu_count"),
              ("MEM", "mem_size_mib"), ("HYPERVISOR", "hypervisor"), ("UPTIME", "uptime_seconds"))
VM_FIELDS = ("id", "name", "state", "reason", "hypervisor", "vcpu_count", "mem_size_mib",
             "kernel_image_path", "rootfs_path", "initrd_path", "kernel_args",
             "console_socket_path", "log_path", "pid", "created_at", "started_at",
             "uptime_seconds", "exit_code", "exit_signal")


def print_json(data: object, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2) + "\n")


def duration(seconds: object) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def timestamp(value: object) -> str:
    """Epoch seconds or an ISO 8601 string, shown in local time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value).timestamp()
        except ValueError:
            return value
    if not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _cell(key: str, vm: dict) -> str:
    value = vm.get(key)
    if key == "uptime_seconds":
        return duration(value)
    if key == "mem_size_mib" and value is not None:
        return f"{value} MiB"
    if key == "id" and isinstance(value, str):
        return value[:8]
    return "-" if value is None else str(value)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in [headers, *rows]]
    return "\n".join(lines)


def vm_table(vms: list[dict]) -> str:
    if not vms:
        return "No VMs. Create one with: gxctl create"
    headers = [h for h, _ in VM_COLUMNS]
    rows = [[_cell(key, vm) for _, key in VM_COLUMNS] for vm in vms]
    return table(headers, rows)


def vm_detail(vm: dict) -> str:
    keys = [k for k in VM_FIELDS if k in vm] + sorted(k for k in vm if k not in VM_FIELDS)
    width = max((len(k) for k in keys), default=0)
    lines = []
    for key in keys:
        value = vm[key]
        if key.endswith("_at"):
            shown = timestamp(value)
        elif key == "uptime_seconds":
            shown = duration(value)
        else:
            shown = "-" if value is None else str(value)
        lines.append(f"{key.ljust(width)}  {shown}")
    return "\n".join(lines)


def vm_line(vm: dict) -> str:
    """One line after an action: ``web: running`` (with the reason when there is one)."""
    reason = f" ({vm['reason']})" if vm.get("reason") else ""
    return f"{vm.get('name', vm.get('id', '?'))}: {vm.get('state', '?')}{reason}"


def health(data: dict) -> str:
    lines = [f"status   {data.get('status', '?')}"]
    if "version" in data:
        lines.append(f"version  {data['version']}")
    if "uptime_seconds" in data:
        lines.append(f"uptime   {duration(data['uptime_seconds'])}")
    vms = data.get("vms")
    if isinstance(vms, dict):
        counts = ", ".join(f"{v} {k}" for k, v in vms.items() if k != "total" and v)
        total = vms.get("total", "?")
        lines.append(f"vms      {total}" + (f" ({counts})" if counts else ""))
    return "\n".join(lines)


def event_line(event: dict) -> str:
    vm = event.get("vm") or {}
    reason = f" ({event['reason']})" if event.get("reason") else ""
    when = timestamp(event.get("at")) if event.get("at") is not None else ""
    return f"{when} {event.get('type', '?')} {vm.get('name', '?')} {vm.get('state', '')}{reason}"\
        .strip()
