"""The REST API over a Supervisor: the original Glidex contract, plus events and consoles."""

from glidex_core.api.app import create_app

__all__ = ["create_app"]
