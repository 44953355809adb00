"""gxctl: the command-line client of the Glidex REST API (one-shot commands and a shell)."""
