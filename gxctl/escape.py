"""The detach key of ``gxctl connect``: parsing ``--escape`` and filtering the typed bytes.

One escape byte detaches once no second one follows within a short pause; two in a row send a
single escape byte to the guest. Any other byte after the escape also detaches (the escape said
"leave"; what follows is not sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ESCAPE = "^]"
ESCAPE_WAIT = 0.4  # seconds to wait for a second escape before detaching


def parse_escape(spec: str) -> int:
    """``^]`` / ``^a`` / ``^?`` (caret notation) or a single character -> the byte it sends."""
    if len(spec) == 2 and spec[0] == "^":
        char = spec[1]
        if char == "?":
            return 0x7F
        code = ord(char.upper())
        if 0x40 <= code <= 0x5F:
            return code ^ 0x40
    elif len(spec) == 1 and ord(spec) < 0x80:
        return ord(spec)
    raise ValueError(f"not an escape key: {spec!r} (use caret notation like '^]' or '^a')")


def describe_escape(byte: int) -> str:
    """How to type it: Ctrl+] for 0x1d, Ctrl+A for 0x01, or the character itself."""
    if byte == 0x7F:
        return "Ctrl+?"
    if byte < 0x20:
        return f"Ctrl+{chr(byte ^ 0x40)}"
    return chr(byte)


@dataclass
class EscapeFilter:
    """Feed typed bytes; get back what to send to the guest and whether to detach."""

    escape: int
    pending: bool = False  # an escape was typed and we wait to see whether a second follows
    detached: bool = field(default=False, init=False)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self.detached:
                break
            if self.pending:
                self.pending = False
                if byte == self.escape:
                    out.append(byte)
                else:
                    self.detached = True
            elif byte == self.escape:
                self.pending = True
            else:
                out.append(byte)
        return bytes(out)

    def timeout(self) -> None:
        """No second escape arrived in time: detach."""
        if self.pending:
            self.pending = False
            self.detached = True
