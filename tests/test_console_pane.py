"""ConsolePane against a stand-in console keeper: a real Unix socket server, no VM."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.color import Color
from textual import events
from textual.app import App, ComposeResult

from glidex_tui.widgets.console_pane import CLOSED_BANNER, ConsolePane

CAPTURE = Path("/work/shared/guest/boot-capture.bin")
FIRST_PROMPT_END = b"/ # \x1b[6n"


@pytest.fixture(scope="module")
def capture() -> bytes:
    if not CAPTURE.exists():
        pytest.skip("boot capture not available")
    return CAPTURE.read_bytes()


@pytest.fixture
def short_dir(tmp_path: Path):
    """A Unix socket path must stay under ~107 bytes; fall back to /tmp if tmp_path is long."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="gx") as short:
        yield Path(short)


class FakeKeeper:
    """Plays the console keeper: streams bytes to attached clients and records what they send."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.arrivals: list[tuple[float, bytes]] = []  # (loop time, data) per read
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self, path: Path) -> FakeKeeper:
        self.server = await asyncio.start_unix_server(self._client, path=str(path))
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while data := await reader.read(4096):
            self.received += data
            self.arrivals.append((asyncio.get_running_loop().time(), data))

    async def send(self, data: bytes) -> None:
        for writer in self.writers:
            writer.write(data)
            await writer.drain()

    async def hang_up(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def stop(self) -> None:
        await self.hang_up()
        if self.server is not None:
            self.server.close()


class PaneApp(App[None]):
    """A tiny host app that follows ConsolePane's documented contract."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.log_path = log_path
        self.left: list[ConsolePane.LeaveRequested] = []
        self.disconnected: list[ConsolePane.Disconnected] = []

    def compose(self) -> ComposeResult:
        yield ConsolePane(self.socket_path, self.log_path, title="vm1", id="pane")

    def on_mount(self) -> None:
        self.query_one(ConsolePane).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Stand priority bindings down while the console has focus, as ConsolePane asks."""
        captured = getattr(self.focused, "captures_input", False)
        return not (captured and action in ("quit", "command_palette"))

    def on_console_pane_leave_requested(self, message: ConsolePane.LeaveRequested) -> None:
        self.left.append(message)

    def on_console_pane_disconnected(self, message: ConsolePane.Disconnected) -> None:
        self.disconnected.append(message)


async def until(pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.01)


def strip_text(pane: ConsolePane, y: int) -> str:
    return "".join(segment.text for segment in pane.render_line(y))


@pytest.fixture
async def keeper(short_dir: Path):
    fake = await FakeKeeper().start(short_dir / "c.sock")
    yield fake
    await fake.stop()


def paths(short_dir: Path) -> tuple[Path, Path]:
    return short_dir / "c.sock", short_dir / "console.log"


async def test_prompt_keys_and_answerback(keeper: FakeKeeper, short_dir: Path, capture: bytes):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        boot = capture[: capture.index(FIRST_PROMPT_END) + len(FIRST_PROMPT_END)]
        await keeper.send(boot)
        await until(pilot, lambda: "/ #" in pane.screen_lines())
        assert "Welcome to the glidex sample guest" in pane.screen_lines()
        await until(pilot, lambda: keeper.received == b"\x1b[24;5R")  # busybox's CPR, answered

        await pilot.press("e", "c", "h", "o", "enter")
        await until(pilot, lambda: keeper.received.endswith(b"echo\r"))
        assert keeper.received == b"\x1b[24;5Recho\r"

        await pilot.press("ctrl+c")
        await until(pilot, lambda: keeper.received.endswith(b"\x03"))
        await pilot.press("ctrl+p", "ctrl+q", "tab", "escape")  # the app stood its bindings down
        await until(pilot, lambda: keeper.received.endswith(b"\x10\x11\t\x1b"))
        assert app.is_running and app.focused is pane

        # What is painted: the prompt row carries the cursor (focused), others are cached.
        await pilot.pause(0.05)
        assert strip_text(pane, 23).startswith("/ # ")
        cursor_cells = [s for s in pane.render_line(23) if s.style and s.style.reverse]
        assert [s.text for s in cursor_cells] == [" "]
        assert pane.render_line(0).cell_length == pane.size.width


async def test_application_cursor_and_cpr_query(keeper: FakeKeeper, short_dir: Path):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        await keeper.send(b"\x1b[3;7H\x1b[6n")
        await until(pilot, lambda: keeper.received == b"\x1b[3;7R")
        await pilot.press("up")
        await keeper.send(b"\x1b[?1h")
        await until(pilot, lambda: pane.emulator.application_cursor)
        await pilot.press("up", "ctrl+up")
        await until(pilot, lambda: keeper.received.endswith(b"\x1bOA\x1b[1;5A"))
        assert keeper.received == b"\x1b[3;7R\x1b[A\x1bOA\x1b[1;5A"


async def test_leave_key_posts_message_and_sends_nothing(keeper: FakeKeeper, short_dir: Path):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: bool(app.left))
        assert app.left[0].pane is pane
        await pilot.press("x")
        await until(pilot, lambda: keeper.received == b"x")  # only the later key arrived


async def test_paste_plain_and_bracketed(keeper: FakeKeeper, short_dir: Path):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        app.post_message(events.Paste("ls\n"))
        await until(pilot, lambda: keeper.received == b"ls\r")
        await keeper.send(b"\x1b[?2004h")
        await until(pilot, lambda: pane.emulator.bracketed_paste)
        app.post_message(events.Paste("a\nb"))
        await until(pilot, lambda: keeper.received.endswith(b"\x1b[201~"))
        assert keeper.received == b"ls\r\x1b[200~a\rb\x1b[201~"


async def test_log_tail_is_replayed_without_answering(
    keeper: FakeKeeper, short_dir: Path, capture: bytes
):
    socket_path, log_path = paths(short_dir)
    log_path.write_bytes(capture)  # the whole boot, four CPR queries included
    app = PaneApp(socket_path, log_path)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected)
        assert "/ # poweroff -f" in pane.screen_lines()
        await until(pilot, lambda: bool(keeper.writers))
        await keeper.send(b"\x1b[6n")  # a live query is answered...
        await until(pilot, lambda: bool(keeper.received))
        assert keeper.received == b"\x1b[24;1R"  # ...the four old ones were not

        # Colours from the log reach the painted strips.
        y = pane.screen_lines().index("red green-bg")
        await pilot.pause(0.05)
        segments = [s for s in pane.render_line(y) if s.text.strip()]
        assert segments[0].text == "red" and segments[0].style.bold
        assert segments[0].style.color == Color.parse("red")
        assert segments[1].text == "green-bg"
        assert segments[1].style.bgcolor == Color.parse("green")


async def test_connection_end_shows_closed(keeper: FakeKeeper, short_dir: Path):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        await keeper.send(b"/ # ")
        await until(pilot, lambda: "/ #" in pane.screen_lines())
        await keeper.hang_up()
        await until(pilot, lambda: bool(app.disconnected))
        assert pane.closed and not pane.connected
        lines = pane.screen_lines()
        assert lines[:2] == ["/ #", CLOSED_BANNER]
        assert await pane.send(b"x") is False


async def test_no_keeper_still_shows_the_log(short_dir: Path):
    socket_path, log_path = paths(short_dir)
    log_path.write_bytes(b"old output\r\n/ # ")
    app = PaneApp(socket_path, log_path)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: bool(app.disconnected))
        assert "cannot connect" in app.disconnected[0].reason
        assert pane.screen_lines()[:3] == ["old output", "/ #", CLOSED_BANNER]


async def test_short_pane_follows_the_cursor(keeper: FakeKeeper, short_dir: Path, capture: bytes):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(60, 10)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        await keeper.send(capture)
        await until(pilot, lambda: "/ # poweroff -f" in pane.screen_lines())
        await pilot.pause(0.05)
        height = pane.size.height
        rows = [strip_text(pane, y) for y in range(height)]
        assert all(len(row) == pane.size.width for row in rows)  # cropped to the pane
        # The cursor sits on the blank bottom row, just below the last kernel line.
        assert rows[-2].startswith("[   14.481122] reboot: Power down")
        assert rows[-1].strip() == "" and pane.emulator.cursor_y == 23
        await keeper.send(b"\x1b[H\x1b[2Jtop")  # clear screen: the view follows the cursor up
        await until(pilot, lambda: pane.screen_lines()[0] == "top")
        await pilot.pause(0.05)
        assert strip_text(pane, 0).startswith("top")


# -- flood, stty, history keys ------------------------------------------------------------------
def finished_in(done: asyncio.Future, started: float) -> float:
    return done.result() - started


def seq_output(first: int, last: int) -> bytes:
    """What ``seq first last`` prints on a serial console (CR LF line ends)."""
    return b"".join(b"%d\r\n" % i for i in range(first, last + 1))


async def test_flood_keeps_keys_flowing_and_ends_on_the_right_screen(
    keeper: FakeKeeper, short_dir: Path
):
    """`seq 1 1800000` (~15 MB) as fast as the socket takes it, while the user types."""
    last = 1_800_000
    flood = seq_output(1, last) + b"/ # "
    assert len(flood) > 15_000_000
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        writer = keeper.writers[0]
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        async def pour() -> None:
            for i in range(0, len(flood), 65536):
                writer.write(flood[i : i + 65536])
                await writer.drain()
            done.set_result(loop.time())

        started = loop.time()
        sender = asyncio.create_task(pour())
        # Type like a person who does not wait for the screen: one key every 20 ms, straight
        # into the app's queue as the terminal driver would (Pilot.press waits for the app to
        # go idle, which it never does during a flood).
        sent: list[tuple[float, bytes]] = []
        letters = "abcdefghijklmnopqrstuvwxyz"
        while not done.done() or len(sent) < 10:
            char = letters[len(sent) % 26]
            app.post_message(events.Key(char, char))
            sent.append((loop.time(), char.encode()))
            await asyncio.sleep(0.02)
        during = sum(1 for t, _ in sent if t < done.result())
        assert during >= 10, f"only {during} keys typed during the flood"
        typed = b"".join(data for _, data in sent)
        await until(pilot, lambda: keeper.received == typed, timeout=5)  # every key, in order
        arrived_at: list[float] = []
        for t, data in keeper.arrivals:
            arrived_at += [t] * len(data)
        latency = max(a - s for (s, _), a in zip(sent, arrived_at, strict=True))
        assert latency < 1.0, f"a key took {latency:.2f}s to reach the guest"
        print(f"flood: {len(flood):,} bytes in {finished_in(done, started):.2f}s, "
              f"{during} keys typed meanwhile, worst key latency {latency * 1000:.0f} ms")

        await sender
        finished = done.result()
        expected = [str(n) for n in range(last - 22, last + 1)] + ["/ #"]
        await until(pilot, lambda: pane.screen_lines() == expected, timeout=2.0)
        assert loop.time() - finished < 2.0
        print(f"final screen {(loop.time() - finished) * 1000:.0f} ms after the flood")
        assert pane.emulator.skipped_bytes > 10_000_000  # it fast-forwarded
        await pilot.pause(0.05)
        assert strip_text(pane, 22).startswith(str(last))


async def test_stty_size_command_and_resize(keeper: FakeKeeper, short_dir: Path):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        width, height = pane.size
        assert pane.stty_size_command() == f"stty rows {height} cols {width}\r".encode()
        pane.action_stty_size()
        await until(pilot, lambda: keeper.received.endswith(b"\r"))
        assert keeper.received == f"stty rows {height} cols {width}\r".encode()
        assert (pane.emulator.columns, pane.emulator.lines) == (width, height)
        await keeper.send(b"x" * (width + 5))  # wraps at the new width
        await until(pilot, lambda: pane.screen_lines()[1] == "xxxxx")


async def test_typing_in_history_returns_to_live(keeper: FakeKeeper, short_dir: Path):
    socket_path, log_path = paths(short_dir)
    log_path.write_bytes(seq_output(1, 500) + b"/ # ")
    app = PaneApp(socket_path, log_path)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        await pilot.press("shift+pageup")  # the pane's own binding: nothing goes to the guest
        assert not pane.following
        top = pane.history_top
        await pilot.press("shift+pageup")
        assert pane.history_top < top
        await pilot.press("x")  # a key for the guest: back to live, and it is sent
        await until(pilot, lambda: keeper.received == b"x")
        assert pane.following
        await pilot.press("shift+pageup")
        await pilot.press("escape")  # in history, Esc only returns to live
        assert pane.following
        await pilot.pause(0.05)
        assert keeper.received == b"x"


async def test_random_bytes_never_break_the_pane(keeper: FakeKeeper, short_dir: Path):
    """Garbage on the console (live and in the log's history): the pane keeps working."""
    import random

    rng = random.Random(7)
    alphabet = b"\x1b[]();?0123456789mHJKhlr\x07\x08\r\n\t\x0e\x0f\xe4\xb8\xad\xff\x9b 1049"
    chunks = []
    for _ in range(400):
        n = rng.randint(1, 1500)
        if rng.random() < 0.5:
            chunks.append(rng.randbytes(n))
        else:
            chunks.append(bytes(rng.choice(alphabet) for _ in range(n)))
    garbage = b"".join(chunks)
    socket_path, log_path = paths(short_dir)
    log_path.write_bytes(garbage)
    app = PaneApp(socket_path, log_path)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        for chunk in chunks:
            await keeper.send(chunk)
        await keeper.send(b"\x18\x1bc\x1b%G\x1b[?1049l\x1b[Hstill alive")
        await until(pilot, lambda: pane.screen_lines()[0] == "still alive", timeout=10)
        for y in range(pane.size.height):
            assert pane.render_line(y).cell_length == pane.size.width
        pane.scroll_history_top()
        await pilot.pause()
        while True:  # every history line renders
            for y in range(pane.size.height):
                assert pane.render_line(y).cell_length <= pane.size.width
            if pane.history_top >= pane.max_scroll_y:
                break
            pane.scroll_history_down(page=True)
        pane.search("\x1b[")
        pane.search("中")
        await pilot.press("x")
        await until(pilot, lambda: keeper.received.endswith(b"x"))
        assert app.is_running and pane.following


async def test_cursor_only_when_focused_and_hidden_pane_fast_forwards(
    keeper: FakeKeeper, short_dir: Path
):
    app = PaneApp(*paths(short_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConsolePane)
        await until(pilot, lambda: pane.connected and keeper.writers)
        await keeper.send(b"/ # ")
        await until(pilot, lambda: pane.screen_lines()[0] == "/ #")
        await pilot.pause(0.05)

        def cursor_cells() -> list[str]:
            return [s.text for s in pane.render_line(0) if s.style and s.style.reverse]

        assert cursor_cells() == [" "]
        pane.blur()
        await pilot.pause(0.05)
        assert cursor_cells() == []  # an unfocused pane shows no cursor

        pane.display = False  # e.g. another pane is maximised
        await pilot.pause(0.05)
        output = seq_output(1, 5_000)  # 24 KB: parsed in full when shown, skipped when hidden
        assert 16 * 1024 < len(output) < 32 * 1024
        await keeper.send(output)
        pane.display = True
        expected = [str(n) for n in range(4_978, 5_001)] + [""]
        await until(pilot, lambda: pane.screen_lines() == expected)
        assert pane.emulator.skipped_bytes > 0
