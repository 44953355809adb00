"""Console history: the log index, search and line rendering (pure), and a pane scrolling it."""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from pathlib import Path

import pytest
from rich.color import Color
from rich.style import Style
from textual import events
from textual.app import App, ComposeResult

from glidex_tui.terminal import history
from glidex_tui.terminal.history import (
    ConsoleLog,
    LineIndex,
    SearchPattern,
    scan_backwards,
    search,
)
from glidex_tui.terminal.logtail import read_console_tail
from glidex_tui.terminal.render import LineRenderer
from glidex_tui.widgets import console_pane as console_pane_module
from glidex_tui.widgets.console_pane import ConsolePane
from tests.test_console_pane import FakeKeeper


def reference_lines(data: bytes) -> list[bytes]:
    """What the index must find: lines without their newline, a trailing partial line kept."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def full_index(log: ConsoleLog, **kwargs) -> LineIndex:
    index = LineIndex(log, **kwargs)
    for first, counts in scan_backwards(log, index.first_block, block_size=index.block_size):
        index.prepend(first, counts)
    return index


def random_log(rng: random.Random, n: int) -> bytes:
    parts = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.1:
            parts.append(b"\n")  # empty line
        elif kind < 0.15:
            parts.append(b"x" * rng.randint(100, 400) + b"\r\n")  # longer than a block
        else:
            parts.append(b"\x1b[32mline\x1b[0m %d\r\n" % rng.randint(0, 10**6))
    return b"".join(parts)


# -- ConsoleLog and LineIndex -------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_index_matches_splitlines(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = random_log(rng, rng.randint(0, 400))
    if seed % 2:
        data += b"/ # "  # a prompt without a newline is the last line
    path = tmp_path / "console.log"
    path.write_bytes(data)
    block = rng.choice((1, 7, 64, 256))
    log = ConsoleLog(path)
    index = LineIndex(log, block_size=block, initial_bytes=rng.choice((0, 50, 500)))
    expected = reference_lines(data)
    assert index.line_count <= len(expected)
    if not index.complete:  # only the last lines so far, numbered from the oldest known
        known = index.line_count
        assert [index.read_line(i) for i in range(known)] == expected[len(expected) - known :]
    for first, counts in scan_backwards(log, index.first_block, block_size=block, batch_bytes=300):
        index.prepend(first, counts)
    assert index.complete
    assert index.line_count == len(expected)
    assert [index.read_line(i) for i in range(index.line_count)] == expected
    for line in rng.sample(range(len(expected)), min(20, len(expected))):
        start, end = index.span(line)
        for offset in (start, end, (start + end) // 2):
            assert index.line_at(offset) == line


def test_index_grows_with_the_log(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"one\r\ntwo\r\n/ # ")
    log = ConsoleLog(path)
    index = LineIndex(log, block_size=4)
    assert [index.read_line(i) for i in range(index.line_count)] == [b"one\r", b"two\r", b"/ # "]
    with path.open("ab") as f:
        f.write(b"ls\r\nbin\r\n/ # ")
    assert log.refresh()
    assert index.extend() == 2  # the prompt line became "/ # ls" and two lines followed
    lines = [index.read_line(i) for i in range(index.line_count)]
    assert lines == [b"one\r", b"two\r", b"/ # ls\r", b"bin\r", b"/ # "]
    assert not log.refresh() and index.extend() == 0


def test_rotated_parts_read_as_one_log(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    (tmp_path / "console.log.2").write_bytes(b"boot 1\r\nboot 2\r\n")
    (tmp_path / "console.log.1").write_bytes(b"middle 1\r\nmidd")  # rotated mid-line
    (tmp_path / "console.log.x").write_bytes(b"not a part\n")
    path.write_bytes(b"le 2\r\nlive\r\n")
    log = ConsoleLog(path)
    assert [p.path.name for p in log.parts] == ["console.log.2", "console.log.1", "console.log"]
    assert log.read(10, 12) == b"ot 2\r\nmiddle"
    index = full_index(log, block_size=5)
    lines = [index.read_line(i) for i in range(index.line_count)]
    assert lines == [b"boot 1\r", b"boot 2\r", b"middle 1\r", b"middle 2\r", b"live\r"]
    assert read_console_tail(log, 12) == (b"live\r\n", log.size)


def test_rotation_and_truncation_while_open(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"a\nb\n")
    log = ConsoleLog(path)
    index = LineIndex(log, block_size=2)
    os.rename(path, tmp_path / "console.log.1")  # the keeper rotates...
    path.write_bytes(b"c\n")  # ...and starts a new log
    assert log.refresh()
    index.extend()
    assert [index.read_line(i) for i in range(index.line_count)] == [b"a", b"b", b"c"]
    generation = log.generation
    path.write_bytes(b"")  # truncated in place: offsets are void
    assert log.refresh() and log.generation == generation + 1
    log.close()


def test_missing_log_is_empty_then_appears(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    log = ConsoleLog(path)
    index = LineIndex(log)
    assert log.size == 0 and index.line_count == 0 and index.complete
    path.write_bytes(b"hello\n")
    assert log.refresh()
    index.extend()
    assert index.line_count == 1 and index.read_line(0) == b"hello"


def test_index_memory_is_bounded_by_blocks_not_lines(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"".join(b"%d\r\n" % i for i in range(1_000_000)))  # 6.9 MB, 1M lines
    index = full_index(ConsoleLog(path))
    assert index.line_count == 1_000_000
    for line in range(0, 1_000_000, 9_973):
        assert index.read_line(line) == b"%d\r" % line
    assert index.memory_bytes() < 600_000  # (an offset per line would be 8 MB)
    assert len(index._counts) * index.block_size >= path.stat().st_size


# -- search ---------------------------------------------------------------------------------------
@pytest.fixture
def searchable(tmp_path: Path) -> ConsoleLog:
    path = tmp_path / "console.log"
    lines = [b"line %d" % i for i in range(3000)]
    lines[100] = b"a Needle here"
    lines[1500] = b"\x1b[1mnee\x1b[31mdle\x1b[0m coloured halfway"
    lines[2900] = b"needle again"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return ConsoleLog(path)


def test_search_backwards_forwards_and_smart_case(
    searchable: ConsoleLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "SEARCH_WINDOW", 1000)  # many windows, matches straddling them
    index = full_index(searchable)
    pattern = SearchPattern.compile("needle")
    found = []
    start = searchable.size
    while (match := search(searchable, pattern, start, backwards=True)) is not None:
        found.append(index.line_at(match[0]))
        start = match[0]
    assert found == [2900, 1500, 100]
    forward = []
    start = 0
    while (match := search(searchable, pattern, start, backwards=False)) is not None:
        forward.append(index.line_at(match[0]))
        start = match[1]
    assert forward == [100, 1500, 2900]
    capital = SearchPattern.compile("Needle")  # a capital letter: case-sensitive
    match = search(searchable, capital, searchable.size, backwards=True)
    assert match is not None and index.line_at(match[0]) == 100
    assert search(searchable, SearchPattern.compile("nothere"), 10**9, backwards=True) is None
    floor = index.span(2901)[0]
    assert search(searchable, pattern, searchable.size, backwards=True, floor=floor) is None


def test_search_text_pattern_highlights_what_the_bytes_pattern_found() -> None:
    pattern = SearchPattern.compile("nee")
    assert pattern.text.findall("NEEDLE needle") == ["NEE", "nee"]


# -- rendering raw log lines ----------------------------------------------------------------------
def test_line_renderer() -> None:
    renderer = LineRenderer()

    def text(raw: bytes, width: int = 20) -> str:
        strip = renderer.render(raw, width)
        assert strip.cell_length == width
        return "".join(segment.text for segment in strip)

    assert text(b"plain") == "plain" + " " * 15
    assert text(b"\x1b[31mred\x1b[0m ok\r") == "red ok" + " " * 14
    assert text(b"10%\r100%") == "100%" + " " * 16  # CR overwrites, like on the screen
    assert text("中文\x1b[Kok".encode()) == "中文ok" + " " * 14
    assert text(b"\x1b[2J\x1b[5;3Hmoved\x0b\x0c") == "  moved" + " " * 13  # stays on the row
    assert text(b"x" * 30, 10) == "x" * 10
    assert text(b"\x1b(0lqk\x1b(B") == "┌─┐" + " " * 17
    assert text(b"\x1b[?1049hstill here") == "still here" + " " * 10
    red = [s for s in renderer.render(b"\x1b[31mred", 5) if s.text.strip()]
    assert red[0].style.color == Color.parse("red")
    assert renderer.render(b"\x1b[31mred", 5) is not None  # state does not leak between lines
    plain = renderer.render(b"next", 5)
    assert all(s.style is None or s.style.color is None for s in plain)


def test_line_renderer_highlights_matches_by_column() -> None:
    renderer = LineRenderer()
    mark = Style(bgcolor="yellow")
    strip = renderer.render(
        "中 needle \x1b[32mNEEDLE\x1b[0m".encode(),
        30,
        highlight=re.compile("needle", re.I),
        highlight_style=mark,
    )
    assert strip.cell_length == 30
    marked = [(s.text, s.style.color) for s in strip if s.style and s.style.bgcolor]
    assert marked == [("needle", None), ("NEEDLE", Color.parse("green"))]


# -- the pane -------------------------------------------------------------------------------------
class HistoryApp(App[None]):
    def __init__(self, log_path: Path, socket_path: Path | None = None) -> None:
        super().__init__()
        self.log_path = log_path
        self.socket_path = socket_path or log_path.with_name("no-keeper.sock")
        self.messages: list[object] = []

    def compose(self) -> ComposeResult:
        yield ConsolePane(self.socket_path, self.log_path, id="pane")

    def on_mount(self) -> None:
        self.query_one(ConsolePane).focus()

    def on_console_pane_follow_changed(self, message: ConsolePane.FollowChanged) -> None:
        self.messages.append(("follow", message.following))

    def on_console_pane_search_result(self, message: ConsolePane.SearchResult) -> None:
        self.messages.append(("search", message.query, message.line))


async def until(pilot, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.01)


def rows(pane: ConsolePane) -> list[str]:
    return ["".join(s.text for s in pane.render_line(y)).rstrip() for y in range(pane.size.height)]


LINES = 200_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "console.log"
    body = [b"[%9.3f] \x1b[32mok\x1b[0m boot line %d" % (i / 1000, i) for i in range(LINES)]
    body[123_456] = b"here is the needle, in line 123456"
    path.write_bytes(b"\r\n".join(body) + b"\r\n/ # ")
    return path


async def test_scrollback_through_200k_lines(big_log: Path) -> None:
    app = HistoryApp(big_log)
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.closed)  # no keeper: the log alone
        assert pane.screen_lines()[-4:-2] == [
            "[  199.999] ok boot line 199999",
            "/ #",
        ]
        await until(pilot, lambda: pane.history_index is not None and pane.history_index.complete)
        index = pane.history_index
        assert index.line_count == LINES + 1
        assert index.memory_bytes() < 300_000  # offsets for 200k lines would be 1.6 MB

        await pilot.press("shift+pageup")
        assert not pane.following and app.messages == [("follow", False)]
        await pilot.pause()
        shown = rows(pane)
        assert shown[-1].startswith(" HISTORY")
        assert shown[-2].endswith("boot line 199982")  # one page (18 of 19 rows) above the end
        pane.scroll_history_top()
        await pilot.pause()
        shown = rows(pane)
        assert shown[0] == "[    0.000] ok boot line 0"  # the first line is reachable
        assert shown[1] == "[    0.001] ok boot line 1"
        assert "HISTORY 1-19 of 200,001" in shown[-1]
        green = [s for s in pane.render_line(0) if s.text == "ok"]
        assert green and green[0].style.color == Color.parse("green")
        pane.scroll_history_down(page=True)
        await pilot.pause()
        assert rows(pane)[0] == "[    0.018] ok boot line 18"

        pane.jump_to_live()
        await pilot.pause()
        assert pane.following and app.messages[-1] == ("follow", True)
        assert "/ #" in rows(pane)


async def test_history_is_usable_while_a_big_log_is_still_indexed(
    big_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of older lines arrive while the user reads: the view stays on the same lines."""
    monkeypatch.setattr(history, "INITIAL_BYTES", 64 * 1024)
    monkeypatch.setattr(history, "SCAN_BATCH", 256 * 1024)
    real_scan = history.scan_backwards
    stops = {3: (threading.Event(), threading.Event()), 6: (threading.Event(), threading.Event())}

    def gated_scan(*args, **kwargs):  # the scan thread pauses twice, as if the log were huge
        for number, batch in enumerate(real_scan(*args, **kwargs)):
            if number in stops:
                reached, go_on = stops[number]
                reached.set()
                go_on.wait(10)
            yield batch

    async def scan_reaches(number: int) -> None:
        await until(pilot, stops[number][0].is_set)
        await pilot.pause(0.05)  # let the batches before it be applied

    monkeypatch.setattr(console_pane_module, "scan_backwards", gated_scan)
    app = HistoryApp(big_log)
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.history_index is not None)
        index = pane.history_index
        await scan_reaches(3)
        assert not index.complete and 0 < index.line_count < LINES
        pane.scroll_history_up(page=True)
        await pilot.pause()
        top_text = rows(pane)[0]
        known = index.line_count
        stops[3][1].set()
        await scan_reaches(6)
        assert index.line_count > known
        assert rows(pane)[0] == top_text  # renumbered underneath, same lines on screen
        pane.scroll_history_top()
        await pilot.pause()
        assert rows(pane)[0] != "[    0.000] ok boot line 0"  # the oldest line known so far
        stops[6][1].set()
        await until(pilot, lambda: index.complete)
        await pilot.pause()
        assert rows(pane)[0] == "[    0.000] ok boot line 0"  # kept at the top meanwhile
        assert pane.history_top == 0


async def test_search_jumps_highlights_and_steps(big_log: Path) -> None:
    app = HistoryApp(big_log)
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.history_index is not None and pane.history_index.complete)
        pane.search("NEEDLE")  # capitals: case-sensitive, not in the log
        await until(pilot, lambda: any(m[0] == "search" for m in app.messages))
        assert app.messages[-1] == ("search", "NEEDLE", None)
        assert pane.following

        pane.search("needle")
        await until(pilot, lambda: app.messages[-1] == ("search", "needle", 123_456))
        assert not pane.following
        await pilot.pause()
        shown = rows(pane)
        y = next(i for i, row in enumerate(shown) if "needle" in row)
        assert shown[y] == "here is the needle, in line 123456"
        assert pane.history_top + y == 123_456
        current = pane.get_component_rich_style("console-pane--current-match")
        marked = [s for s in pane.render_line(y) if s.text == "needle"]
        assert marked and marked[0].style.bgcolor == current.bgcolor
        assert "/needle" in shown[-1]

        # Several matches: the search goes back from the last line on screen (like ? in less).
        bottom = pane.history_top + 18
        pane.search("boot line 1234")
        await until(pilot, lambda: app.messages[-1][:2] == ("search", "boot line 1234"))
        first = app.messages[-1][2]
        assert first == bottom
        pane.search_next()
        await until(pilot, lambda: app.messages[-1][2] != first)
        assert app.messages[-1][2] == bottom - 1
        pane.search_previous()
        await until(pilot, lambda: app.messages[-1][2] == first)
        await pilot.press("escape")
        assert pane.following


async def test_search_prompt_and_mouse_wheel(big_log: Path) -> None:
    app = HistoryApp(big_log)
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.history_index is not None and pane.history_index.complete)
        wheel = events.MouseScrollUp(pane, 1, 1, 0, -1, 0, False, False, False)
        pane.post_message(wheel)
        await until(pilot, lambda: not pane.following)
        bottom = pane.max_scroll_y
        assert pane.history_top == bottom - 3
        pane.post_message(events.MouseScrollDown(pane, 1, 1, 0, 1, 0, False, False, False))
        await until(pilot, lambda: pane.history_top == bottom)
        pane.post_message(events.MouseScrollDown(pane, 1, 1, 0, 1, 0, False, False, False))
        await until(pilot, lambda: pane.following)  # past the end: live again

        pane.action_search_prompt()
        await pilot.pause()
        await pilot.press(*"line 42,", "enter")
        await until(pilot, lambda: any(m[0] == "search" for m in app.messages))
        assert app.messages[-1] == ("search", "line 42,", None)  # no comma in the log
        pane.action_search_prompt()
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"boot line 42", "enter")
        await until(pilot, lambda: app.messages[-1][:2] == ("search", "boot line 42"))
        assert app.focused is pane


async def test_new_output_while_reading_history_does_not_move_the_view(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"".join(b"old %d\r\n" % i for i in range(100)))
    keeper = FakeKeeper()
    socket_path = Path(f"/tmp/gx-scrollback-{os.getpid()}.sock")
    await keeper.start(socket_path)
    try:
        app = HistoryApp(path, socket_path)
        async with app.run_test(size=(80, 20)) as pilot:
            pane = app.query_one(ConsolePane)
            await until(pilot, lambda: pane.connected and keeper.writers)
            pane.scroll_history_up(page=True)
            await pilot.pause()
            before = rows(pane)[:-1]
            total = pane.history_index.line_count
            more = b"".join(b"new %d\r\n" % i for i in range(50))
            with path.open("ab") as f:  # what the keeper does: log it, then send it
                f.write(more)
            await keeper.send(more)
            await until(pilot, lambda: pane.history_index.line_count == total + 50)
            await pilot.pause()
            assert rows(pane)[:-1] == before
            await pilot.press("shift+pagedown", "shift+pagedown", "shift+pagedown")
            await pilot.press("shift+pagedown", "shift+pagedown")
            assert pane.following
            await until(pilot, lambda: pane.screen_lines()[-2] == "new 49")
    finally:
        await keeper.stop()
        socket_path.unlink(missing_ok=True)


async def test_open_a_big_log_shows_the_screen_at_once(tmp_path: Path) -> None:
    """Time to first screen does not depend on the log size (only its last 64 KiB is parsed)."""
    path = tmp_path / "console.log"
    line = b"[ 1234.567890] \x1b[32mok\x1b[0m a kernel message that fills the log nicely\r\n"
    with path.open("wb") as f:
        chunk = line * 16384
        for _ in range(64 * 1024 * 1024 // len(chunk)):  # 64 MiB in the test suite
            f.write(chunk)
        f.write(b"/ # ")
    app = HistoryApp(path)
    started = time.monotonic()
    async with app.run_test(size=(80, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: "/ #" in pane.screen_lines())
        assert time.monotonic() - started < 3  # (app start included; typically ~0.1 s)
        await until(pilot, lambda: pane.history_index is not None and pane.history_index.complete,
                    timeout=10)
        pane.scroll_history_top()
        await pilot.pause()
        assert rows(pane)[0].endswith("fills the log nicely")
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    "raw",
    [
        b"plain",
        b"\x1b[32mok\x1b[0m done\r",
        b"\x1b[1;31mbold red\x1b[22m not bold\x1b[m plain",
        b"\x1b[38;5;208m256\x1b[48;5;3m on yellow\x1b[0m",
        b"\x1b[38;2;1;2;3mtrue\x1b[7mreverse\x1b[27m\x1b[4munder",
        b"\x1b[;31mempty param\x1b[99999mhuge",
        b"x" * 100 + b"\x1b[31mcut off",
    ],
)
def test_line_renderer_fast_path_matches_the_terminal(raw: bytes) -> None:
    from glidex_tui.terminal.render import render_row

    renderer = LineRenderer()
    base = Style(color="white", bgcolor="black")

    def cells(strip) -> list[tuple[str, Style | None]]:
        return [(char, segment.style) for segment in strip for char in segment.text]

    fast = renderer.render(raw, 40, base)
    slow = render_row(renderer.screen_row(raw, 40), 0, 40, base_style=base)
    assert cells(fast) == cells(slow)
