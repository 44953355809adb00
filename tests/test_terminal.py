"""The terminal layer without Textual or a VM: emulator, key table, style mapping, log tail."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from rich.color import Color
from rich.style import Style

from glidex_tui.terminal.emulator import TerminalEmulator
from glidex_tui.terminal.keys import key_to_bytes, paste_to_bytes
from glidex_tui.terminal.logtail import overlap, read_log_tail
from glidex_tui.terminal.render import char_style, map_colour, render_row

CAPTURE = Path("/work/shared/guest/boot-capture.bin")


@pytest.fixture(scope="module")
def capture() -> bytes:
    if not CAPTURE.exists():
        pytest.skip("boot capture not available")
    return CAPTURE.read_bytes()


def snapshot(emulator: TerminalEmulator) -> tuple:
    """Everything visible: every cell with its attributes, plus the cursor."""
    screen = emulator.screen
    cells = tuple(tuple(screen.buffer[y][x] for x in range(screen.columns)) for y in range(24))
    return cells, (screen.cursor.x, screen.cursor.y, screen.cursor.hidden)


def fed(*chunks: bytes, **kwargs) -> TerminalEmulator:
    emulator = TerminalEmulator(**kwargs)
    for chunk in chunks:
        emulator.feed(chunk)
    return emulator


# -- emulator -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_capture_in_random_chunks_equals_whole(capture: bytes, seed: int) -> None:
    whole = fed(capture)
    rng = random.Random(seed)
    pieces = TerminalEmulator()
    i = 0
    while i < len(capture):
        n = rng.randint(1, 97)
        pieces.feed(capture[i : i + n])
        i += n
    assert snapshot(pieces) == snapshot(whole)
    assert pieces.errors == whole.errors == 0


def test_capture_text(capture: bytes) -> None:
    lines = fed(capture).text_lines()
    assert any(line.startswith("Linux glidex-guest 6.1.0") for line in lines)
    assert "/ # uname -a" in lines
    assert "/ # poweroff -f" in lines
    assert any(line.startswith("bin ") and "lost+found" not in line for line in lines)
    assert lines[-2].endswith("reboot: Power down")


def test_capture_answers_every_prompt_query(capture: bytes) -> None:
    replies: list[bytes] = []
    fed(capture, reply=replies.append)
    # Four prompts, each "/ # " then ESC[6n on the bottom row: row 24, column 5.
    assert b"".join(replies) == b"\x1b[24;5R" * 4


def test_cpr_reports_one_based_position() -> None:
    replies: list[bytes] = []
    emulator = TerminalEmulator(reply=replies.append)
    emulator.feed(b"\x1b[6n")
    emulator.feed(b"\x1b[5;10Habc\x1b[6n")
    assert replies == [b"\x1b[1;1R", b"\x1b[5;13R"]


def test_cpr_at_right_margin_is_clamped() -> None:
    replies: list[bytes] = []
    fed(b"x" * 80 + b"\x1b[6n", reply=replies.append)
    assert replies == [b"\x1b[1;80R"]  # pyte's pending-wrap x == 80 must not leak out as 81


def test_dsr_and_da_replies() -> None:
    replies: list[bytes] = []
    fed(b"\x1b[5n\x1b[c\x1b[?6n", reply=replies.append)
    assert b"".join(replies) == b"\x1b[0n\x1b[?6c\x1b[1;1R"


def test_replay_does_not_answer() -> None:
    replies: list[bytes] = []
    emulator = TerminalEmulator(reply=replies.append)
    emulator.feed(b"/ # \x1b[6n", answer=False)
    assert replies == []
    emulator.feed(b"\x1b[6n")
    assert replies == [b"\x1b[1;5R"]


def test_feed_returns_dirty_rows_including_cursor_moves() -> None:
    emulator = TerminalEmulator()
    assert emulator.feed(b"hello") == {0}
    assert emulator.feed(b"\r\n\r\n") >= {0, 2}
    assert emulator.feed(b"") == set()


def test_modes() -> None:
    emulator = TerminalEmulator()
    assert not emulator.application_cursor and not emulator.bracketed_paste
    emulator.feed(b"\x1b[?1h\x1b[?2004h\x1b[?25l")
    assert emulator.application_cursor and emulator.bracketed_paste and emulator.cursor_hidden
    emulator.feed(b"\x1b[?1l\x1b[?2004l\x1b[?25h")
    assert not emulator.application_cursor and not emulator.bracketed_paste
    assert not emulator.cursor_hidden


def test_bad_sequence_is_contained_and_parsing_goes_on(caplog) -> None:
    replies: list[bytes] = []
    emulator = TerminalEmulator(reply=replies.append)
    with caplog.at_level(logging.DEBUG, logger="glidex_tui.terminal.emulator"):
        emulator.feed(b"\x1b[1;2;3Hok\x1b[6n")  # pyte: cursor_position() takes 3 args -> TypeError
        emulator.feed(b"\x1b[1;2;3H")
    assert emulator.errors == 2
    assert emulator.text_lines()[0] == "ok"  # the rest of the chunk was still parsed
    assert replies == [b"\x1b[1;3R"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # logged once


def test_fuzz_never_raises() -> None:
    rng = random.Random(1234)
    alphabet = b"\x1b[];?0123456789;mHJKABCDnhlr\x07\x08\r\n\t\xe4\xb8\xad\xff\x9b P%()#"
    emulator = TerminalEmulator(reply=lambda data: None)
    for _ in range(2000):
        n = rng.randint(1, 64)
        if rng.random() < 0.5:
            chunk = bytes(rng.getrandbits(8) for _ in range(n))
        else:
            chunk = bytes(rng.choice(alphabet) for _ in range(n))
        dirty = emulator.feed(chunk)
        assert all(0 <= y < 24 for y in dirty)
        for y in dirty:
            assert render_row(emulator.screen, y, 80, emulator.cursor_x).cell_length == 80


def test_split_utf8_renders_one_character() -> None:
    emulator = fed(b"\xe4", b"\xb8\xad")
    assert emulator.text_lines()[0] == "中"
    assert "".join(s.text for s in render_row(emulator.screen, 0, 80)).startswith("中 ")


def test_wide_character_takes_two_cells() -> None:
    emulator = fed("a中b".encode())
    row = emulator.screen.buffer[0]
    assert [row[x].data for x in range(4)] == ["a", "中", "", "b"]
    assert emulator.cursor_x == 4
    for width in (80, 40, 3, 2):
        strip = render_row(emulator.screen, 0, width, cursor_x=2)
        assert strip.cell_length == width
    text = "".join(segment.text for segment in render_row(emulator.screen, 0, 10))
    assert text == "a中b      "


# -- styles ---------------------------------------------------------------------------------------
def style_at(emulator: TerminalEmulator, y: int, x: int) -> Style:
    return char_style(emulator.screen.buffer[y][x])


def test_capture_colours(capture: bytes) -> None:
    emulator = fed(capture)
    lines = emulator.text_lines()
    y = lines.index("red green-bg")
    red = style_at(emulator, y, 0)
    assert red.bold and red.color == Color.parse("red") and red.bgcolor is None
    space = style_at(emulator, y, 3)
    assert space == Style()
    green_bg = style_at(emulator, y, 4)
    assert green_bg.bgcolor == Color.parse("green") and green_bg.color is None
    assert not green_bg.bold
    segments = list(render_row(emulator.screen, y, 80))
    assert [s.text for s in segments[:3]] == ["red", " ", "green-bg"]


def test_colour_names() -> None:
    assert map_colour("default") is None
    assert map_colour("brown") == Color.parse("yellow")
    assert map_colour("brightbrown") == Color.parse("bright_yellow")
    assert map_colour("brightblack") == Color.parse("bright_black")
    assert map_colour("ff8700") == Color.parse("#ff8700")
    assert map_colour("nonsense") is None


def test_256_and_truecolour_map_to_hex() -> None:
    emulator = fed(b"\x1b[38;5;208mA\x1b[0m\x1b[48;2;1;2;3mB\x1b[0m\x1b[33mC\x1b[0m")
    assert style_at(emulator, 0, 0).color == Color.parse("#ff8700")
    assert style_at(emulator, 0, 1).bgcolor == Color.parse("#010203")
    assert style_at(emulator, 0, 2).color == Color.parse("yellow")


def test_attributes_map_to_style_flags() -> None:
    emulator = fed(b"\x1b[1;3;4;5;7;9mX\x1b[0mY")
    style = style_at(emulator, 0, 0)
    assert style.bold and style.italic and style.underline and style.blink
    assert style.reverse and style.strike
    assert style.color is None and style.bgcolor is None  # reverse is a flag, not a swap
    assert style_at(emulator, 0, 1) == Style()


def test_styles_are_memoised() -> None:
    emulator = fed(b"\x1b[31mab\x1b[0m\r\n\x1b[31mc")
    assert style_at(emulator, 0, 0) is style_at(emulator, 1, 0)


def test_render_merges_runs_and_overlays_cursor() -> None:
    emulator = fed(b"ab\x1b[32mcd\x1b[0m")
    plain = list(render_row(emulator.screen, 0, 8))
    assert [s.text for s in plain] == ["ab", "cd", "    "]
    with_cursor = list(render_row(emulator.screen, 0, 8, cursor_x=1))
    assert [s.text for s in with_cursor] == ["a", "b", "cd", "    "]
    assert with_cursor[1].style.reverse
    assert not any(s.style and s.style.reverse for s in plain)
    reversed_cell = fed(b"\x1b[7mX")
    cursor_on_reverse = list(render_row(reversed_cell.screen, 0, 4, cursor_x=0))[0]
    assert not cursor_on_reverse.style.reverse  # the cursor flips, so it stays visible


def test_render_pads_and_crops_with_base_style() -> None:
    emulator = fed(b"x" * 80)
    base = Style(color="white", bgcolor="black")
    assert render_row(emulator.screen, 0, 100, base_style=base).cell_length == 100
    assert render_row(emulator.screen, 0, 30, base_style=base).cell_length == 30
    blank = render_row(emulator.screen, 5, 10, base_style=base)
    assert blank.cell_length == 10
    assert all(segment.style.bgcolor == Color.parse("black") for segment in blank)


# -- keys -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "character", "app_mode", "expected"),
    [
        ("a", "a", False, b"a"),
        ("A", "A", False, b"A"),
        ("space", " ", False, b" "),
        ("eacute", "é", False, "é".encode()),
        ("enter", "\r", False, b"\r"),
        ("enter", None, False, b"\r"),
        ("backspace", "\x7f", False, b"\x7f"),
        ("tab", "\t", False, b"\t"),
        ("shift+tab", None, False, b"\x1b[Z"),
        ("escape", "\x1b", False, b"\x1b"),
        ("ctrl+c", None, False, b"\x03"),
        ("ctrl+c", "\x03", False, b"\x03"),
        ("ctrl+d", None, False, b"\x04"),
        ("ctrl+z", None, False, b"\x1a"),
        ("ctrl+q", None, False, b"\x11"),
        ("ctrl+p", None, False, b"\x10"),
        ("ctrl+space", None, False, b"\x00"),
        ("ctrl+@", None, False, b"\x00"),
        ("ctrl+backslash", None, False, b"\x1c"),
        ("up", None, False, b"\x1b[A"),
        ("up", None, True, b"\x1bOA"),
        ("down", None, False, b"\x1b[B"),
        ("right", None, True, b"\x1bOC"),
        ("left", None, False, b"\x1b[D"),
        ("home", None, False, b"\x1b[H"),
        ("end", None, True, b"\x1bOF"),
        ("insert", None, False, b"\x1b[2~"),
        ("delete", None, False, b"\x1b[3~"),
        ("pageup", None, False, b"\x1b[5~"),
        ("pagedown", None, False, b"\x1b[6~"),
        ("f1", None, False, b"\x1bOP"),
        ("f4", None, False, b"\x1bOS"),
        ("f5", None, False, b"\x1b[15~"),
        ("f6", None, False, b"\x1b[17~"),
        ("f12", None, False, b"\x1b[24~"),
        ("ctrl+up", None, False, b"\x1b[1;5A"),
        ("ctrl+up", None, True, b"\x1b[1;5A"),
        ("shift+left", None, False, b"\x1b[1;2D"),
        ("alt+right", None, False, b"\x1b[1;3C"),
        ("ctrl+shift+down", None, False, b"\x1b[1;6B"),
        ("shift+f5", None, False, b"\x1b[15;2~"),
        ("ctrl+f1", None, False, b"\x1b[1;5P"),
        ("ctrl+delete", None, False, b"\x1b[3;5~"),
        ("alt+x", None, False, b"\x1bx"),
        ("alt+x", "x", False, b"\x1bx"),
        ("alt+enter", None, False, b"\x1b\r"),
        ("alt+backspace", None, False, b"\x1b\x7f"),
        ("ctrl+alt+c", None, False, b"\x1b\x03"),
    ],
)
def test_key_to_bytes(key: str, character: str | None, app_mode: bool, expected: bytes) -> None:
    assert key_to_bytes(key, character, app_mode) == expected


def test_keys_without_meaning_return_none() -> None:
    assert key_to_bytes("ctrl+f20x", None, False) is None
    assert key_to_bytes("ctrl+comma", None, False) is None


def test_paste() -> None:
    assert paste_to_bytes("ls\necho hi\r\n", bracketed=False) == b"ls\recho hi\r"
    assert paste_to_bytes("ls\n", bracketed=True) == b"\x1b[200~ls\r\x1b[201~"
    injected = paste_to_bytes("a\x1b[201~rm -rf /\n", bracketed=True)
    assert injected == b"\x1b[200~arm -rf /\r\x1b[201~"


# -- log tail -------------------------------------------------------------------------------------
def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    assert read_log_tail(log, 16) == (b"", 0)
    log.write_bytes(b"short\r\n")
    assert read_log_tail(log, 16) == (b"short\r\n", 7)
    log.write_bytes(b"line one\r\nline two\r\nline three\r\n")
    data, end = read_log_tail(log, 16)
    assert end == 32 and data == b"line three\r\n"  # starts after the first newline in the window


def test_overlap() -> None:
    assert overlap(b"abc/ # ", b"/ # ls", 0) == 0  # log did not grow: nothing can repeat
    assert overlap(b"abc/ # ", b"/ # ls", 10) == 4
    assert overlap(b"abc/ # ", b"/ # ls", 2) == 0
    assert overlap(b"abc", b"xyz", 3) == 0
