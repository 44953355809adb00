"""Textual key events and pastes -> the bytes a VT220/xterm-style terminal sends to the guest.

Pure functions so the table is tested without an app. Textual names keys like ``ctrl+up`` or
``alt+x``; its xterm driver fills ``character`` for printable keys and for C0 controls (ctrl+c
arrives as key ``ctrl+c`` with character ``"\\x03"``), but Pilot and the kitty keyboard protocol may
leave ``character`` empty, so control keys are derived from the key *name*, not the character.

Conventions (xterm, also what the Linux console accepts for the keys a serial shell uses):

- enter ``\\r`` (a serial line wants CR), backspace ``\\x7f`` (VT220 DEL), tab, shift+tab ``CSI Z``.
- Cursor keys ``CSI A..D``; ``SS3 A..D`` once the guest set DECCKM (application cursor mode).
- Modified cursor/F-keys ``CSI 1;m X`` or ``CSI n;m ~`` with m = 1 + shift + 2*alt + 4*ctrl.
- ctrl+letter ``code & 0x1f``, ctrl+space/ctrl+@ NUL, alt+key = ESC prefix (meta sends escape).
- Textual reports shift+F1..F12 as ``f13``..``f24`` and ctrl+shift+F-keys as ``ctrl+f13``.., so
  those are turned back into the modified F-key sequences the user actually typed.
- Per console options: ``backspace`` (DEL by default; some bootloaders want BS, and ctrl+backspace
  then sends the other one) and ``function_keys="linux"`` for the Linux console's F1-F5
  (``ESC [ [ A..E``), for guests that run with TERM=linux.

Textual itself folds a few keys before we see them (nothing to do about these here): alt+b/alt+f
arrive as ctrl+left/ctrl+right, alt+backspace as ctrl+w, ctrl+h as backspace, and alt+arrows as
escape followed by the arrow (which is also what a meta-sends-escape terminal sends).
"""

from __future__ import annotations

CSI = "\x1b["
SS3 = "\x1bO"

# Cursor-like keys with a final letter: normal mode sends CSI, application mode SS3.
_LETTER_KEYS = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
# Keys that always use SS3 unmodified (F1-F4, as xterm and VT100 send them).
_SS3_KEYS = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
# Keys sent as CSI n ~.
_TILDE_KEYS = {
    "insert": 2, "delete": 3, "pageup": 5, "pagedown": 6,
    "f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24,
}  # fmt: skip
# Control keys that are not ctrl+letter.
_CTRL_SYMBOLS = {
    "@": 0, "at": 0, "space": 0, "2": 0,
    "left_square_bracket": 0x1B, "left_square_brace": 0x1B, "3": 0x1B,
    "backslash": 0x1C, "4": 0x1C,
    "right_square_bracket": 0x1D, "5": 0x1D,
    "circumflex_accent": 0x1E, "6": 0x1E,
    "underscore": 0x1F, "minus": 0x1F, "7": 0x1F, "slash": 0x1F,
    "question_mark": 0x7F, "8": 0x7F,
}  # fmt: skip
_PLAIN = {
    "enter": "\r",
    "return": "\r",
    "tab": "\t",
    "backspace": "\x7f",
    "escape": "\x1b",
    "space": " ",
}
_MODIFIERS = ("shift", "alt", "meta", "ctrl")
_LINUX_F_KEYS = {"f1": "A", "f2": "B", "f3": "C", "f4": "D", "f5": "E"}  # ESC [ [ A..E


def _split(key: str) -> tuple[set[str], str]:
    """``"ctrl+shift+up"`` -> ({"ctrl", "shift"}, "up"). Textual spells '+' as 'plus'."""
    if key == "ctrl-at":  # Textual's name for ctrl+space (Keys.ControlSpace)
        return {"ctrl"}, "space"
    *mods, base = key.split("+")
    found = {m for m in mods if m in _MODIFIERS}
    if base.startswith("f") and base[1:].isdigit() and 13 <= int(base[1:]) <= 24:
        found.add("shift")  # xterm's shift+F1 (CSI 1;2P) is "f13" to Textual
        base = f"f{int(base[1:]) - 12}"
    return found, base


def _modifier_param(mods: set[str]) -> int:
    alt = "alt" in mods or "meta" in mods
    return 1 + ("shift" in mods) + 2 * alt + 4 * ("ctrl" in mods)


def _special(base: str, mods: set[str], application_cursor: bool) -> str | None:
    """Cursor, editing and function keys, which carry modifiers inside the sequence."""
    m = _modifier_param(mods)
    if base in _LETTER_KEYS:
        final = _LETTER_KEYS[base]
        if m > 1:
            return f"{CSI}1;{m}{final}"
        return (SS3 if application_cursor else CSI) + final
    if base in _SS3_KEYS:
        final = _SS3_KEYS[base]
        return f"{CSI}1;{m}{final}" if m > 1 else SS3 + final
    if base in _TILDE_KEYS:
        number = _TILDE_KEYS[base]
        return f"{CSI}{number};{m}~" if m > 1 else f"{CSI}{number}~"
    return None


def _control(base: str) -> str | None:
    """ctrl+<base> as a C0 control character, or None if ctrl has no meaning for ``base``."""
    if len(base) == 1 and base.isascii() and base.isalpha():
        return chr(ord(base.lower()) & 0x1F)
    code = _CTRL_SYMBOLS.get(base)
    return None if code is None else chr(code)


def key_to_bytes(
    key: str,
    character: str | None,
    application_cursor: bool,
    *,
    backspace: str = "\x7f",
    function_keys: str = "xterm",
) -> bytes | None:
    """Bytes to send for a Textual key event, or None if the key means nothing to a terminal.

    Args:
        key: Textual key name (``event.key``), e.g. ``"a"``, ``"enter"``, ``"ctrl+c"``.
        character: ``event.character`` (may be None, e.g. from Pilot or for modified keys).
        application_cursor: The guest's DECCKM state (``TerminalEmulator.application_cursor``).
        backspace: What backspace sends: ``"\x7f"`` (DEL, VT220/xterm) or ``"\x08"`` (BS).
        function_keys: ``"xterm"``, or ``"linux"`` for the Linux console's F1-F5.
    """
    mods, base = _split(key)
    if function_keys == "linux" and base in _LINUX_F_KEYS and not mods:
        return (CSI + "[" + _LINUX_F_KEYS[base]).encode()
    special = _special(base, mods, application_cursor)
    if special is not None:
        return special.encode()
    alt = "alt" in mods or "meta" in mods
    prefix = "\x1b" if alt else ""
    if base == "tab" and "shift" in mods:
        return (prefix + CSI + "Z").encode()
    if base == "backspace":
        other = "\x08" if backspace == "\x7f" else "\x7f"
        return (prefix + (other if "ctrl" in mods else backspace)).encode()
    if "ctrl" in mods:
        if base in ("enter", "return", "tab", "escape"):
            return (prefix + _PLAIN[base]).encode()
        ctrl = _control(base)
        if ctrl is not None:
            return (prefix + ctrl).encode()
        if base.isdigit() and "shift" not in mods:
            return (prefix + base).encode()  # ctrl+1, ctrl+9, ctrl+0: xterm sends the digit
        return None  # ctrl+<punctuation> with no C0 meaning: do not guess
    if base in _PLAIN:
        return (prefix + _PLAIN[base]).encode()
    if character and character.isprintable():
        return (prefix + character).encode("utf-8")
    if alt and len(base) == 1:  # alt+x from Pilot or kitty: character may be missing
        return (prefix + (base.upper() if "shift" in mods else base)).encode("utf-8")
    if len(key) == 1 and key.isprintable():
        return key.encode("utf-8")
    if character and len(character) == 1 and ord(character) < 0x20:
        return character.encode()  # a C0 control Textual named in a way we do not know
    return None


_PASTE_START = "\x1b[200~"
_PASTE_END = "\x1b[201~"


def paste_to_bytes(text: str, bracketed: bool) -> bytes:
    """Bytes for pasted text: newlines become CR (what Enter sends on a serial line).

    With bracketed paste the text is wrapped in ``ESC[200~ ... ESC[201~`` and any end marker inside
    the text is removed, so pasted content cannot end the paste early and inject keystrokes.
    """
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if not bracketed:
        return text.encode("utf-8")
    text = text.replace(_PASTE_END, "")
    return (_PASTE_START + text + _PASTE_END).encode("utf-8")
