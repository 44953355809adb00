"""The terminal layer without Textual or a VM: emulator, key table, style mapping, log tail."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.color import Color
from rich.style import Style

from glidex_tui.terminal.emulator import TerminalEmulator, plan_fast_forward
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


# -- fidelity: colours ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sgr", "attr", "expected"),
    [
        (b"31", "color", "red"),
        (b"33", "color", "yellow"),  # pyte's "brown"
        (b"97", "color", "bright_white"),
        (b"44", "bgcolor", "blue"),
        (b"103", "bgcolor", "bright_yellow"),
        (b"38;5;1", "color", "red"),  # 256-colour 0-15 are the ANSI colours (follow the theme)
        (b"38;5;9", "color", "bright_red"),
        (b"48;5;4", "bgcolor", "blue"),
        (b"38;5;208", "color", "#ff8700"),
        (b"48;5;232", "bgcolor", "#080808"),
        (b"38;2;255;128;0", "color", "#ff8000"),
        (b"48;2;1;2;3", "bgcolor", "#010203"),
        (b"1;38;5;1;48;2;9;8;7", "bgcolor", "#090807"),  # mixed with other attributes
    ],
)
def test_sgr_colours(sgr: bytes, attr: str, expected: str) -> None:
    emulator = fed(b"\x1b[" + sgr + b"mX\x1b[0mY")
    assert getattr(style_at(emulator, 0, 0), attr) == Color.parse(expected)
    assert style_at(emulator, 0, 1) == Style()


def test_bold_reverse_underline_reach_the_strip() -> None:
    emulator = fed(b"\x1b[1mB\x1b[0m\x1b[7mR\x1b[0m\x1b[4mU\x1b[0m")
    segments = list(render_row(emulator.screen, 0, 3))
    assert [(s.text, s.style.bold, s.style.reverse, s.style.underline) for s in segments] == [
        ("B", True, None, None),
        ("R", None, True, None),
        ("U", None, None, True),
    ]


# -- fidelity: wide and combining characters ------------------------------------------------------
def row_string(emulator: TerminalEmulator, y: int = 0, width: int = 80) -> str:
    strip = render_row(emulator.screen, y, width)
    assert strip.cell_length == width
    return "".join(segment.text for segment in strip)


@pytest.mark.parametrize(
    ("overwrite", "expected"),
    [
        (b"\x1b[1;2Hx", "ax 文b"),  # right half of 中 overwritten: its left half blanks
        (b"\x1b[1;3Hx", "a x文b"),  # left half of 中: the right half blanks
        (b"\x1b[1;3H\xe5\xad\x97", "a 字 b"),  # a wide char over the halves of two wide chars
        (b"\x1b[1;2H\xe5\xad\x97", "a字文b"),  # exactly over one: nothing else changes
    ],
)
def test_wide_character_overwritten_in_half(overwrite: bytes, expected: str) -> None:
    emulator = fed("a中文b".encode(), overwrite)
    assert emulator.text_lines()[0] == expected
    assert row_string(emulator, width=10) == expected + " " * (10 - cell_len(expected))


def test_wide_character_in_the_last_column_wraps() -> None:
    emulator = fed(b"x" * 79 + "中".encode())
    assert emulator.text_lines()[:2] == ["x" * 79, "中"]
    assert row_string(emulator, 0) == "x" * 79 + " "


def test_wide_character_cut_by_the_pane_edge_keeps_the_row_width() -> None:
    emulator = fed("ab中".encode())
    assert row_string(emulator, width=3) == "ab "  # half a glyph cannot be drawn: a blank
    assert row_string(emulator, width=4) == "ab中"


def test_combining_and_zero_width_characters() -> None:
    emulator = fed("e\u0301 中\u0301x a\u2764\ufe0fb \u200dz".encode())
    line = emulator.text_lines()[0]
    assert line.startswith("\u00e9 中\u0301x a\u2764b")  # NFC-composed, mark on the glyph
    assert line.endswith("z")  # pyte used to stop drawing at the first VS16/ZWJ
    assert row_string(emulator).startswith("\u00e9 中\u0301x")


def test_emoji_and_cjk_rows_are_exactly_as_wide_as_the_screen() -> None:
    emulator = fed("日本語 😀 ok 👍🏽 한국어 ".encode() * 5)
    for y in range(3):
        assert render_row(emulator.screen, y, 80).cell_length == 80


# -- fidelity: alternate screen -------------------------------------------------------------------
SHELL = b"\x1b[1;32muser\x1b[0m:~$ ls\r\n\x1b[34mbin\x1b[0m  etc  \xe4\xb8\xadtext\r\nuser:~$ vi"


@pytest.mark.parametrize("mode", [b"1049", b"1047", b"47"])
def test_alternate_screen_round_trip(mode: bytes) -> None:
    emulator = fed(SHELL)
    before = snapshot(emulator)
    emulator.feed(b"\x1b[?" + mode + b"h")
    assert emulator.alternate_screen
    assert emulator.text_lines() == [""] * 24 or mode != b"1049"
    emulator.feed(b"\x1b[2J\x1b[H\x1b[7m~ vi junk everywhere\x1b[0m\x1b[3;5r\x1b[24;1H:q")
    emulator.feed(b"\x1b[r\x1b[?" + mode + b"l")
    assert not emulator.alternate_screen
    after = snapshot(emulator)
    assert after[0] == before[0]  # every cell of the shell screen, attributes included
    if mode == b"1049":
        assert after[1] == before[1]  # 1049 also restores the cursor (as DECSC/DECRC)


def test_alternate_screen_vi_session_leaves_no_debris(capture: bytes) -> None:
    emulator = fed(capture)
    before = snapshot(emulator)
    vi = (
        b"\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=\x1b[H\x1b[2J\x1b[?25l"
        + b"".join(b"\x1b[%d;1H~" % row for row in range(2, 24))
        + b"\x1b[1;1Hhello \xe4\xb8\xad\x1b[24;1H\"x\" [New]\x1b[1;1H\x1b[?25h"
        + b"\x1b[24;1H\x1b[K:q\r\x1b[?25l\x1b[?1l\x1b>\x1b[?1049l\x1b[23;0;0t\x1b[?25h"
    )
    replies: list[bytes] = []
    emulator.reply = replies.append
    emulator.feed(vi)
    assert snapshot(emulator) == before
    assert not emulator.application_cursor


def test_mode_47_keeps_the_alternate_content_and_1047_clears_it() -> None:
    emulator = fed(b"main")
    emulator.feed(b"\x1b[?47h\x1b[Halt\x1b[?47l\x1b[?47h")
    assert emulator.text_lines()[0] == "alt"
    emulator.feed(b"\x1b[?47l\x1b[?1047h\x1b[Hx\x1b[?1047l\x1b[?1047h")
    assert emulator.text_lines()[0] == ""
    emulator.feed(b"\x1b[?1047l")
    assert emulator.text_lines()[0] == "main"


# -- fidelity: charsets, UTF-8, queries, keys -----------------------------------------------------
def test_dec_line_drawing() -> None:
    emulator = fed(b"\x1b(0lqqk\x1b(B lqk\r\n\x1b(0x  x\r\nmqqj\x1b(B")
    assert emulator.text_lines()[:3] == ["┌──┐ lqk", "│  │", "└──┘"]
    full = fed(b"\x1b(0jklmnqtuvwx`a~\x1b(B")
    assert full.text_lines()[0] == "┘┐┌└┼─├┤┴┬│◆▒·"


def test_dec_line_drawing_through_g1_and_shift_out() -> None:
    emulator = fed(b"\x1b)0a\x0elqk\x0fb")
    assert emulator.text_lines()[0] == "a┌─┐b"
    stray = fed(b"plain \x0etext")  # G1 is ASCII until designated (as in xterm)
    assert stray.text_lines()[0] == "plain text"


def test_utf8_split_at_every_byte() -> None:
    data = "ab中文 😀 e\u0301 ┌─┐ ok".encode()
    whole = fed(data)
    for cut in range(1, len(data)):
        assert snapshot(fed(data[:cut], data[cut:])) == snapshot(whole), cut
    assert whole.text_lines()[0] == "ab中文 😀 \u00e9 ┌─┐ ok"


def test_latin1_mode_switch() -> None:
    emulator = fed(b"\x1b%@caf\xe9 \x1b%Gcaf\xc3\xa9")
    assert emulator.text_lines()[0] == "café café"


def test_cursor_position_and_attribute_queries() -> None:
    replies: list[bytes] = []
    emulator = fed(b"hello\r\n\x1b[6n", reply=replies.append)
    emulator.feed(b"\x1b[10;20H\x1b[6n\x1b[c\x1b[5n")
    assert replies == [b"\x1b[2;1R", b"\x1b[10;20R\x1b[?6c\x1b[0n"]


def test_application_cursor_keys_follow_the_guest() -> None:
    emulator = TerminalEmulator()
    keys = ("up", "down", "right", "left", "home", "end")

    def sent() -> list[bytes | None]:
        return [key_to_bytes(key, None, emulator.application_cursor) for key in keys]

    assert sent() == [b"\x1b[A", b"\x1b[B", b"\x1b[C", b"\x1b[D", b"\x1b[H", b"\x1b[F"]
    emulator.feed(b"\x1b[?1h")
    assert sent() == [b"\x1bOA", b"\x1bOB", b"\x1bOC", b"\x1bOD", b"\x1bOH", b"\x1bOF"]
    emulator.feed(b"\x1b[?1l")
    assert sent()[0] == b"\x1b[A"


def test_deccolm_is_ignored_and_resize_keeps_the_cursor_row() -> None:
    emulator = fed(b"\x1b[?3h" + b"".join(b"line %d\r\n" % i for i in range(30)) + b"$ ")
    assert emulator.columns == 80
    emulator.resize(40, 10)
    assert (emulator.columns, emulator.lines) == (40, 10)
    assert emulator.text_lines()[-1] == "$" and emulator.cursor_y == 9
    assert emulator.text_lines()[-2] == "line 29"
    emulator.feed(b"y" * 45)
    assert emulator.text_lines()[-2:] == ["$ " + "y" * 38, "y" * 7]  # wraps at the new width


# -- robustness -----------------------------------------------------------------------------------
def test_fuzz_one_mebibyte_in_random_chunks() -> None:
    """≥ 1 MiB of random and escape-heavy bytes, random chunk sizes: never an exception."""
    rng = random.Random(20240501)
    alphabet = (
        b"\x1b[]()#%;?0123456789;:mHJKABCDEFGnhlrsuPX@`dcq\x07\x08\r\n\t\x0e\x0f\x18\x1a"
        b"\xe4\xb8\xad\xf0\x9f\x98\x80\xcc\x81\xff\x9b\xc2\x9b P%12;1049h>=78"
    )
    emulator = TerminalEmulator(reply=lambda data: None)
    total = 0
    while total < (1 << 20) + 1:
        n = rng.choice((1, 2, 3, rng.randint(1, 64), rng.randint(1, 4096)))
        if rng.random() < 0.5:
            chunk = rng.randbytes(n)
        else:
            chunk = bytes(rng.choice(alphabet) for _ in range(n))
        total += n
        dirty = emulator.feed(chunk)
        assert all(0 <= y < 24 for y in dirty)
        for y in list(dirty)[:3]:
            assert render_row(emulator.screen, y, 80, emulator.cursor_x).cell_length == 80
    assert total > 1 << 20
    for y in range(24):
        assert render_row(emulator.screen, y, 80, emulator.cursor_x).cell_length == 80
        assert render_row(emulator.screen, y, 33).cell_length == 33
    emulator.text_lines()
    emulator.feed(b"\x18\x1bc\x1b%Gstill alive")  # cancel any sequence, reset: it works
    assert emulator.text_lines()[0] == "still alive"


# -- fast-forward ---------------------------------------------------------------------------------
def test_fast_forward_over_a_flood_ends_on_the_same_screen() -> None:
    flood = b"\x1b[?2004h\x1b[?1h" + b"".join(b"%d\r\n" % i for i in range(1, 60001))
    flood += b"\x1b[1;31m/ # \x1b[0m"
    full = fed(flood)
    fast = TerminalEmulator()
    cut = plan_fast_forward(flood, 16 * 1024)
    assert cut > len(flood) - 17 * 1024
    fast.fast_forward(flood[:cut])
    fast.feed(flood[cut:])
    assert fast.text_lines() == full.text_lines()
    assert fast.text_lines()[-2:] == ["60000", "/ #"]
    assert snapshot(fast) == snapshot(full)
    assert fast.bracketed_paste and fast.application_cursor  # modes from the skipped part
    assert fast.skipped_bytes == cut


def test_fast_forward_resumes_at_a_clear_screen_and_keeps_colours_and_alt_screen() -> None:
    data = b"".join(b"old %d\r\n" % i for i in range(5000))
    data += b"\x1b[?1049h\x1b[44m" + b"x" * 10 + b"\x1b[H\x1b[2Jtop - load 0.1\r\n" + b"y" * 20
    cut = plan_fast_forward(data, 64)
    assert data[cut:].startswith(b"\x1b[H\x1b[2J")
    fast = TerminalEmulator()
    fast.fast_forward(data[:cut])
    fast.feed(data[cut:])
    full = fed(data)
    assert snapshot(fast) == snapshot(full)
    assert fast.alternate_screen
    fast.feed(b"\x1b[?1049l")  # the main screen behind it is blank, not broken
    assert not fast.alternate_screen


def test_fast_forward_never_starts_inside_a_sequence() -> None:
    data = b"\x1b[31m" + b"\x1b[38;5;208mX" * 5000  # no newline anywhere
    cut = plan_fast_forward(data, 100)
    assert data[cut : cut + 1] == b"\x1b"


# -- more keys ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("f13", b"\x1b[1;2P"),  # Textual's name for shift+F1
        ("f17", b"\x1b[15;2~"),  # shift+F5
        ("f24", b"\x1b[24;2~"),  # shift+F12
        ("ctrl+f13", b"\x1b[1;6P"),  # ctrl+shift+F1
        ("ctrl-at", b"\x00"),  # Textual's name for ctrl+space
        ("ctrl+1", b"1"),
        ("ctrl+8", b"\x7f"),
        ("ctrl+right_square_bracket", b"\x1d"),
        ("ctrl+circumflex_accent", b"\x1e"),
        ("ctrl+underscore", b"\x1f"),
        ("ctrl+j", b"\n"),
        ("ctrl+backspace", b"\x08"),
        ("ctrl+shift+home", b"\x1b[1;6H"),
        ("shift+end", b"\x1b[1;2F"),
        ("ctrl+pageup", b"\x1b[5;5~"),
        ("shift+insert", b"\x1b[2;2~"),
        ("alt+shift+x", b"\x1bX"),
    ],
)
def test_more_keys(key: str, expected: bytes) -> None:
    assert key_to_bytes(key, None, False) == expected


def test_backspace_and_function_key_options() -> None:
    assert key_to_bytes("backspace", "\x7f", False, backspace="\x08") == b"\x08"
    assert key_to_bytes("ctrl+backspace", None, False, backspace="\x08") == b"\x7f"
    assert key_to_bytes("f1", None, False, function_keys="linux") == b"\x1b[[A"
    assert key_to_bytes("f5", None, False, function_keys="linux") == b"\x1b[[E"
    assert key_to_bytes("f6", None, False, function_keys="linux") == b"\x1b[17~"
    assert key_to_bytes("shift+f1", None, False, function_keys="linux") == b"\x1b[1;2P"


def test_erase_fills_with_the_background_colour() -> None:
    emulator = fed(b"\x1b[44m\x1b[2J\x1b[0mx\x1b[41m\x1b[K")
    assert style_at(emulator, 10, 40).bgcolor == Color.parse("blue")  # BCE, as mc and top need
    assert style_at(emulator, 0, 0) == Style() and style_at(emulator, 0, 1).bgcolor == Color.parse(
        "red"
    )
