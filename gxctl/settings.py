"""Where gxctl finds the control plane, its token, and its own files (history, default images).

The URL comes from ``--url``, else GLIDEX_URL, else the discovery file a running control plane
writes in its Glidex home (``run/control-plane.json``: URL and token), else the default. The
token comes from ``--token``, else GLIDEX_TOKEN, else that discovery file when it names the same
URL (so a local control plane listening beyond loopback needs no extra typing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from glidex_core.config import Paths, glidex_home

DEFAULT_URL = "http://127.0.0.1:8080"
DISCOVERY_FILE = "control-plane.json"  # written by glidex_core.api.server (not imported: slow)


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    home: Path

    @property
    def history_file(self) -> Path:
        return self.home / "gxctl_history"

    @property
    def default_kernel(self) -> Path:
        return Paths(self.home).default_kernel

    @property
    def default_rootfs(self) -> Path:
        return Paths(self.home).default_rootfs


def _normalize(url: str) -> str:
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def read_discovery(home: Path) -> dict:
    """What a running local control plane says about itself; {} when there is none."""
    try:
        data = json.loads((Paths(home).run_dir / DISCOVERY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resolve(url: str | None = None, token: str | None = None) -> Settings:
    home = glidex_home()
    discovered = read_discovery(home)
    chosen = url or os.environ.get("GLIDEX_URL") or discovered.get("url") or DEFAULT_URL
    chosen = _normalize(chosen)
    token = token or os.environ.get("GLIDEX_TOKEN") or None
    if token is None and discovered.get("token") and discovered.get("url") \
            and _normalize(discovered["url"]) == chosen:
        token = discovered["token"]
    return Settings(url=chosen, token=token, home=home)
