"""The console pane: a live guest serial console inside the dashboard, with its whole history.

Byte flow: keeper socket -> reader (owned by the pane) -> pending buffer -> feeder ->
``TerminalEmulator.feed`` -> dirty rows -> one coalesced repaint per frame (<= 60 Hz) ->
``render_line`` -> ``render_row``. Keys, pastes and answerback go the other way, written straight
to the socket.

Why it is built this way:

- The keeper (a separate process) owns the PTY and the log; pyte runs only here, so a slow
  dashboard can never stall the guest. The keeper drops clients that fall far behind, so the
  reader never waits for pyte: it appends to a pending buffer and a separate feeder task parses
  it in 4 KiB slices, yielding to the event loop between slices (keys stay responsive).
- **Fast-forward**: pyte parses well under 1 MB/s. When more than ``FAST_FORWARD_AT`` bytes are
  pending (``seq 1 2000000``), the pane skips what nobody could read: it keeps the lasting state
  of the skipped bytes (modes, colours, charsets) and feeds only the tail from a point where the
  screen is rebuilt anyway (see ``TerminalEmulator.fast_forward``). The log keeps everything and
  the history view shows it. A hidden pane fast-forwards much earlier.
- Feeding only marks rows dirty; a single timer per frame refreshes just those rows, so bursty
  output costs one repaint per frame, not one per read. Non-cursor rows are cached as Strips.
  A pane that is not shown refreshes nothing.
- The guest size is fixed (80x24 by default; serial consoles have no resize signal). A smaller pane
  crops columns on the right and follows the cursor vertically. ``action_stty_size`` types
  ``stty rows R cols C`` for the pane's size into the guest and resizes the screen to match.
- On mount the pane connects first, then replays the last 64 KiB of the console log (without
  answering old queries), so earlier output shows and nothing printed in between is lost.

**History** (scrollback): the pane is a ``ScrollView`` with two faces.

- *Live* (following): the pyte screen, as above; no scrollbar.
- *History*: the console log itself (``console.log.N`` .. ``console.log``), one log line per row,
  indexed lazily from the end by a thread worker (``terminal.history``), read on demand with
  ``os.pread`` and rendered through a one-row terminal (colours, CR overwrites) into an LRU of
  Strips. The bottom row is a status line. Opening a pane on a 1 GiB log costs the same as on a
  small one; the index of the whole log is ready within about a second and holds ~200 KiB.

Scrolling up (mouse wheel, shift+pageup, or the app calling :meth:`scroll_history_up`) leaves
live mode; scrolling down past the end, Escape, :meth:`jump_to_live`, or typing anything that goes
to the guest returns to it. :meth:`search` finds the nearest older match (then
:meth:`search_next` goes further back, :meth:`search_previous` forward) and highlights matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from pathlib import Path
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.worker import get_current_worker

from glidex_tui.terminal import guest_size
from glidex_tui.terminal.emulator import TerminalEmulator, plan_fast_forward
from glidex_tui.terminal.history import ConsoleLog, LineIndex, SearchPattern, scan_backwards, search
from glidex_tui.terminal.keys import key_to_bytes, paste_to_bytes
from glidex_tui.terminal.logtail import DEFAULT_TAIL_BYTES, overlap, read_console_tail
from glidex_tui.terminal.render import LineRenderer, render_row

log = logging.getLogger(__name__)

READ_CHUNK = 65536
FEED_SLICE = 2048  # bytes per pyte call (~3 ms)
FRAME = 1 / 60
FLOOD_FRAME = 1 / 15  # a pane being fast-forwarded (a flood nobody can read) paints this often,
# unless focused: a full-pane repaint at 60 Hz took most of the loop from the other panes
FLOOD_MEMORY = 1.0  # seconds after its last fast-forward that a pane still counts as flooded
FEED_BUDGET = 0.004  # seconds of parsing per frame, for all panes together: the rest of each
# frame is for keys and painting, even while a guest floods its console


class _FrameBudget:
    """Parsing time already spent in the current frame, shared by every console pane."""

    frame = 0
    used = 0.0


_FRAME_BUDGET = _FrameBudget()
FAST_FORWARD_AT = 32 * 1024  # pending bytes beyond which unreadable output is skipped (~50 ms)
MIN_KEEP = 16 * 1024  # at least this much of the newest output is always parsed
CLOSED_BANNER = "[console closed]"
HISTORY_POLL_SECONDS = 0.5  # how often the history view looks for new log lines
LIVE_POLL_TICKS = 4  # while live, index new log lines every 4th tick (2 s), to stay near-current
HISTORY_EXTEND_LIMIT = 8 * 1024 * 1024  # newly logged bytes indexed per poll, at most
WHEEL_LINES = 3


class ConsolePane(ScrollView, can_focus=True, inherit_bindings=False):
    """A focusable guest console (pyte screen + keeper socket) that scrolls back through its log.

    Focused, the pane sends every key to the guest, ctrl+c, ctrl+d, ctrl+z, tab and esc included,
    except its own bindings (remappable with ``App.set_keymap`` by id):

    - ``ctrl+]`` (``console.leave``) posts :class:`LeaveRequested`, like ``virsh console``.
    - ``shift+pageup`` / ``shift+pagedown`` (``console.history_page_up`` / ``_down``) page through
      the history, as in xterm and the Linux console (those keys never reach the guest there
      either).
    - In history mode only, Escape returns to live instead of going to the guest.

    Public actions for the app to bind behind its prefix key (all safe to call any time):
    ``scroll_history_up(page)``, ``scroll_history_down(page)``, ``scroll_history_top``,
    ``jump_to_live``, ``search_prompt`` (asks for text, then ``search``), ``search_next``,
    ``search_previous``, ``stty_size``. Methods: :meth:`search`, :meth:`stty_size_command`,
    :meth:`resize_guest`. Messages: :class:`LeaveRequested`, :class:`Disconnected`,
    :class:`FollowChanged`, :class:`SearchResult`.

    What the app must do (Textual 8.2.8):

    - Priority bindings run *before* the focused widget: the App's ``ctrl+q`` (quit) and
      ``ctrl+p`` (command palette, ``App.COMMAND_PALETTE_BINDING``) and any ``priority=True``
      binding the app adds. A guest shell needs ctrl+p (history) and ctrl+q (XON), so while a
      console has focus the app must disable them in ``check_action``::

          def check_action(self, action, parameters):
              captured = getattr(self.focused, "captures_input", False)
              # False = disabled: the key falls through to the focused console
              return not (captured and action in ("quit", "command_palette"))

      (Also call ``self.refresh_bindings()`` when focus changes if the footer shows them.)
    - Non-priority bindings (App ``ctrl+c`` help_quit, Screen ``ctrl+c`` copy, tab focus
      switching) need nothing: the pane stops the key event before they are checked.
    - Handle ``ConsolePane.LeaveRequested`` (e.g. focus the VM table), and keep a non-ctrl way to
      quit visible elsewhere, since ctrl+q reaches the guest while a console is focused.
    - If a console can be maximized, set ``ESCAPE_TO_MINIMIZE = False`` on the App or Screen,
      otherwise Esc minimizes instead of reaching the guest.
    - For guest colours to pass through untouched, run with ``App(ansi_color=True)`` or an
      ``ansi`` theme; otherwise the 16 ANSI colours follow Textual's ANSI theme.
    """

    DEFAULT_CSS = """
    ConsolePane {
        width: 1fr;
        height: 1fr;
        background: $background;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    ConsolePane > .console-pane--status {
        background: $primary;
        color: $text;
    }
    ConsolePane > .console-pane--match {
        background: $warning 50%;
    }
    ConsolePane > .console-pane--current-match {
        background: $accent;
        color: $text;
        text-style: bold;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "console-pane--status",
        "console-pane--match",
        "console-pane--current-match",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+right_square_bracket",
            "leave_console",
            "Leave console",
            key_display="^]",
            id="console.leave",
        ),
        Binding(
            "shift+pageup",
            "scroll_history_up(True)",
            "History",
            show=False,
            id="console.history_page_up",
        ),
        Binding(
            "shift+pagedown",
            "scroll_history_down(True)",
            "History down",
            show=False,
            id="console.history_page_down",
        ),
    ]

    captures_input: ClassVar[bool] = True
    """Marker for the app's ``check_action``: while focused, priority bindings must stand down."""

    class LeaveRequested(Message):
        """The user pressed the leave key (ctrl+]); the app should move focus away."""

        def __init__(self, pane: ConsolePane) -> None:
            super().__init__()
            self.pane = pane

        @property
        def control(self) -> ConsolePane:
            return self.pane

    class Disconnected(Message):
        """The console connection ended (guest stopped, keeper gone, or never reachable)."""

        def __init__(self, pane: ConsolePane, reason: str) -> None:
            super().__init__()
            self.pane = pane
            self.reason = reason

        @property
        def control(self) -> ConsolePane:
            return self.pane

    class FollowChanged(Message):
        """The pane switched between live (``following``) and the history view.

        The app may show it in a footer or title, e.g. "history - Esc returns to live".
        """

        def __init__(self, pane: ConsolePane, following: bool) -> None:
            super().__init__()
            self.pane = pane
            self.following = following

        @property
        def control(self) -> ConsolePane:
            return self.pane

    class SearchResult(Message):
        """A history search finished: ``line`` is the matching line's number, or None."""

        def __init__(self, pane: ConsolePane, query: str, line: int | None) -> None:
            super().__init__()
            self.pane = pane
            self.query = query
            self.line = line

        @property
        def found(self) -> bool:
            return self.line is not None

        @property
        def control(self) -> ConsolePane:
            return self.pane

    class _ScanBatch(Message):
        def __init__(self, index: LineIndex, first_block: int, counts: array) -> None:
            super().__init__()
            self.index = index
            self.first_block = first_block
            self.counts = counts

    class _SearchDone(Message):
        def __init__(
            self,
            generation: int,
            pattern: SearchPattern,
            found: tuple[int, int] | None,
            wrapped: bool,
        ) -> None:
            super().__init__()
            self.generation = generation
            self.pattern = pattern
            self.found = found
            self.wrapped = wrapped

    def __init__(
        self,
        console_socket: Path,
        log_path: Path,
        *,
        title: str = "",
        id: str | None = None,
        columns: int = 80,
        lines: int = 24,
        tail_bytes: int = DEFAULT_TAIL_BYTES,
        backspace: bytes = b"\x7f",
        function_keys: str = "xterm",
        name: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create a pane; it attaches when mounted.

        Args:
            console_socket: The keeper's Unix socket (``Paths.console_socket(vm_id)``).
            log_path: The VM's console log (rotated parts ``.1``, ``.2``... are read too); its
                last ``tail_bytes`` are replayed on mount, and all of it is the history.
            title: Shown as the border title (visible when the pane has a border in CSS).
            columns: Guest terminal width; must match the guest's ``stty`` size.
            lines: Guest terminal height.
            backspace: What backspace sends (``b"\\x7f"``, or ``b"\\x08"`` for some loaders).
            function_keys: ``"xterm"``, or ``"linux"`` for a guest with TERM=linux (F1-F5).
        """
        super().__init__(name=name, id=id, classes=classes)
        self.console_socket = Path(console_socket)
        self.log_path = Path(log_path)
        self.tail_bytes = tail_bytes
        self.backspace = backspace.decode("latin-1")
        self.function_keys = function_keys
        if title:
            self.border_title = title
        self.emulator = TerminalEmulator(columns, lines, reply=self._write)
        self._writer: asyncio.StreamWriter | None = None
        self._console_closed = False
        self._top = max(0, lines - 1)  # first guest row shown; clamped once the size is known
        self._dirty_rows: set[int] = set()
        self._frame_scheduled = False
        self._last_paint = 0.0
        self._flooded_at = -FLOOD_MEMORY  # when output was last fast-forwarded
        self._strips: dict[int, Strip] = {}
        self._shown = False
        self._render_errors = 0
        # live output waiting for pyte
        self._pending = bytearray()
        self._pending_event: asyncio.Event | None = None
        # history
        self._log: ConsoleLog | None = None
        self._index: LineIndex | None = None
        self._following = True
        self._stick_top = False
        self._poll_timer: Timer | None = None
        self._ticks = 0
        self._line_renderer = LineRenderer()
        self._history_strips: LRUCache[tuple, Strip] = LRUCache(1024)
        self._search: SearchPattern | None = None
        self._search_generation = 0
        self._search_state = ""
        self._match_span: tuple[int, int] | None = None  # offsets of the current match's line
        self._pending_match: tuple[int, int] | None = None  # found, not indexed yet
        self._wrapped = False

    # -- public API ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the keeper socket is open."""
        return self._writer is not None

    @property
    def closed(self) -> bool:
        """True once the connection has ended (or could not be made)."""
        return self._console_closed

    @property
    def following(self) -> bool:
        """True when the live screen shows; False in the history view."""
        return self._following

    @property
    def history_index(self) -> LineIndex | None:
        """The line index of the console log (None before mount)."""
        return self._index

    @property
    def history_top(self) -> int:
        """Number of the first history line on screen (0 = oldest indexed line)."""
        return round(self.scroll_y) if not self._following else 0

    async def send(self, data: bytes) -> bool:
        """Send bytes to the guest and wait for the socket to drain; False if not connected."""
        writer = self._writer
        if not self._write(data) or writer is None:
            return False
        try:
            await writer.drain()
        except (OSError, RuntimeError):
            return False
        return True

    def screen_lines(self) -> list[str]:
        """The guest screen as plain text rows (trailing blanks stripped), e.g. for tests."""
        return self.emulator.text_lines()

    def history_text(self, line: int) -> str:
        """A history line as plain text (as rendered, escape sequences interpreted)."""
        assert self._index is not None
        return self._line_renderer.text(self._index.read_line(line), 1000).rstrip()

    def stty_size_command(self) -> bytes:
        """The command that tells the guest the pane's size: ``b"stty rows R cols C\\r"``."""
        columns, lines = self._pane_size()
        return f"stty rows {lines} cols {columns}\r".encode()

    def resize_guest(self, columns: int, lines: int) -> None:
        """Resize the guest screen (after the guest was told, e.g. with ``stty``)."""
        self.emulator.resize(max(2, columns), max(1, lines))
        self._strips.clear()
        self._follow_cursor()
        self.refresh(layout=True)

    def jump_to_live(self) -> None:
        """Leave the history view and follow the live screen again."""
        if self._following:
            if self._search_state in ("searching...", "indexing..."):
                self._abandon_search()  # typed while searching: the result must not pull back
            return
        self._abandon_search()
        self._following = True
        self._stick_top = False
        self.virtual_size = Size(0, 0)
        self.scroll_to(y=0, animate=False, force=True, immediate=True)
        self._strips.clear()
        self._follow_cursor()
        self.refresh()
        self.post_message(self.FollowChanged(self, True))

    def _abandon_search(self) -> None:
        """Ignore a search still running (its result would move the view)."""
        if self._search_state in ("searching...", "indexing..."):
            self._search_generation += 1
            self._search_state = ""
        self._pending_match = None

    def scroll_history_up(self, page: bool = False, lines: int | None = None) -> None:
        """Scroll back by a line, a page or ``lines``; enters the history view from live."""
        if self._following and not self._enter_history():
            self.app.bell()
            return
        self._stick_top = False
        step = lines if lines is not None else (self._page() if page else 1)
        self._scroll_history_to(self.scroll_y - step)

    def scroll_history_down(self, page: bool = False, lines: int | None = None) -> None:
        """Scroll forward; already at the newest line, return to live."""
        if self._following:
            return
        self._stick_top = False
        if round(self.scroll_y) >= self.max_scroll_y:
            self.jump_to_live()
            return
        step = lines if lines is not None else (self._page() if page else 1)
        self._scroll_history_to(self.scroll_y + step)

    def scroll_history_top(self) -> None:
        """Show the oldest line; while the log is still being indexed, keep showing the oldest."""
        if self._following and not self._enter_history():
            return
        self._stick_top = True
        self._scroll_history_to(0)

    def search(self, text: str) -> None:
        """Find ``text`` in the history: the nearest match above the view (or the live end).

        Smart case (case-insensitive unless ``text`` has capitals). Matches are highlighted and
        the view jumps to the match (entering the history view). Posts :class:`SearchResult`.
        An empty ``text`` clears the search.
        """
        self._search_generation += 1
        self._match_span = None
        self._pending_match = None
        self._history_strips.clear()
        if not text:
            self._search = None
            self._search_state = ""
            self._refresh_status()
            return
        self._search = SearchPattern.compile(text)
        self._start_search(self._view_end(), backwards=True)

    def search_next(self) -> None:
        """The next match further back in time (repeats the last search)."""
        if self._search is None:
            return
        start = self._match_span[0] if self._match_span is not None else self._view_end()
        self._search_generation += 1
        self._start_search(start, backwards=True)

    def search_previous(self) -> None:
        """The next match forward in time."""
        if self._search is None:
            return
        span = self._match_span
        start = span[1] + 1 if span is not None else self._view_start()
        self._search_generation += 1
        self._start_search(start, backwards=False)

    # -- actions (bindable) ---------------------------------------------------------------------
    def action_leave_console(self) -> None:
        """Bound to ctrl+]: ask the app to move focus elsewhere."""
        self.post_message(self.LeaveRequested(self))

    def action_scroll_history_up(self, page: bool = False) -> None:
        self.scroll_history_up(page)

    def action_scroll_history_down(self, page: bool = False) -> None:
        self.scroll_history_down(page)

    def action_scroll_history_top(self) -> None:
        self.scroll_history_top()

    def action_jump_to_live(self) -> None:
        self.jump_to_live()

    def action_search(self, text: str) -> None:
        self.search(text)

    def action_search_prompt(self) -> None:
        """Ask for a query in a one-line prompt, then :meth:`search` for it."""
        from glidex_tui.widgets.history_search import HistorySearchPrompt

        def searched(text: str | None) -> None:
            if text is not None:
                self.search(text)

        query = self._search.query if self._search is not None else ""
        self.app.push_screen(HistorySearchPrompt(query), searched)

    def action_search_next(self) -> None:
        self.search_next()

    def action_search_previous(self) -> None:
        self.search_previous()

    def action_stty_size(self) -> None:
        """Type ``stty rows R cols C`` for the pane's size into the guest and resize to match.

        The key usually comes through the app's prefix; its overlay lies on a layer of its own
        over the panes, so the size measured here is the pane's whole size."""
        command = self.stty_size_command()
        if not self._write(command):
            self.app.bell()
            return
        columns, lines = self._pane_size()
        self.resize_guest(columns, lines)
        guest_size.remember(self.log_path, self.console_socket, columns, lines)

    def action_stty(self) -> None:
        """Alias of :meth:`action_stty_size`."""
        self.action_stty_size()

    # -- lifecycle -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.run_worker(
            self._console_worker(),
            name=f"console {self.console_socket.name}",
            group="console",
            exclusive=True,
            exit_on_error=False,
        )

    def on_unmount(self) -> None:
        if self._log is not None:
            self._log.close()

    def on_show(self) -> None:
        self._shown = True
        self._strips.clear()
        self._dirty_rows.clear()
        self._follow_cursor()
        self.refresh()

    def on_hide(self) -> None:
        self._shown = False

    async def _console_worker(self) -> None:
        """The reader worker: whatever goes wrong, the pane ends up showing it is closed."""
        try:
            reason = await self._run_console()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug here must not take the dashboard down
            log.exception("console pane reader failed")
            reason = f"console error: {exc!r}"
        self._show_closed(reason)

    async def _run_console(self) -> str:
        """Connect, replay the log tail, feed live output until the keeper hangs up; say why."""
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        reason = "connection closed"
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.console_socket))
        except OSError as exc:
            reason = f"cannot connect to {self.console_socket}: {exc.strerror or exc}"
        if reader is not None and (told := guest_size.recall(self.log_path, self.console_socket)):
            self.resize_guest(*told)  # the size the guest believes (stty, earlier)
        self._log = await asyncio.to_thread(ConsoleLog, self.log_path)
        size_at_connect = self._log.size
        tail, tail_end = await asyncio.to_thread(read_console_tail, self._log, self.tail_bytes)
        await self._replay(tail)
        self._open_history()
        if reader is None or writer is None:
            return reason
        self._writer = writer
        may_repeat = max(0, tail_end - size_at_connect)
        self._pending_event = asyncio.Event()
        feeder = asyncio.create_task(self._feeder())
        try:
            while chunk := await reader.read(READ_CHUNK):
                if may_repeat:
                    chunk = chunk[overlap(tail, chunk, may_repeat) :]
                    may_repeat = 0
                self._queue_output(chunk)
        except OSError as exc:
            reason = f"connection lost: {exc}"
        finally:
            self._writer = None
            writer.close()
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        await self._drain()
        return reason

    async def _replay(self, data: bytes) -> None:
        """Feed old output (no answerback), in slices, fast-forwarding if it is long."""
        cut = plan_fast_forward(data, max(FAST_FORWARD_AT, self._keep_bytes()))
        if cut:
            self._mark_dirty(self.emulator.fast_forward(data[:cut]))
            data = data[cut:]
        for start in range(0, len(data), FEED_SLICE):
            self._mark_dirty(self.emulator.feed(data[start : start + FEED_SLICE], answer=False))
            if len(data) > FEED_SLICE:
                await asyncio.sleep(0)

    # -- live output: reader -> pending -> feeder ---------------------------------------------
    def _keep_bytes(self) -> int:
        return max(self.emulator.lines * self.emulator.columns * 4, MIN_KEEP)

    def _queue_output(self, chunk: bytes) -> None:
        """Queue guest output for pyte; skip what nobody could read if too much is queued."""
        pending = self._pending
        pending += chunk
        keep = self._keep_bytes()
        limit = max(FAST_FORWARD_AT, 2 * keep) if self._shown else keep
        if len(pending) > limit:
            cut = plan_fast_forward(pending, self._keep_bytes())
            if cut:
                skipped = bytes(pending[:cut])
                del pending[:cut]
                self._flooded_at = time.monotonic()
                self._mark_dirty(self.emulator.fast_forward(skipped))
        if self._pending_event is not None:
            self._pending_event.set()

    async def _feeder(self) -> None:
        """Parse pending output within a budget per frame shared by every pane, then sleep to
        the next frame: yielding for a single loop turn left the loop busy all the time, and a
        keystroke's echo crosses about ten turns (bench/RESULTS.md, F). What piles up meanwhile
        is fast-forwarded; the log and the history keep every byte."""
        assert self._pending_event is not None
        clock = time.perf_counter
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            while self._pending:
                frame = int(clock() / FRAME)
                if frame != _FRAME_BUDGET.frame:
                    _FRAME_BUDGET.frame, _FRAME_BUDGET.used = frame, 0.0
                started = clock()
                deadline = started + FEED_BUDGET - _FRAME_BUDGET.used
                if len(self._pending) <= FEED_SLICE:
                    # A keystroke's echo, a prompt: a fraction of a millisecond, never made to
                    # wait behind a flooding pane that took this frame's budget first.
                    self._feed_slice()
                while self._pending and clock() < deadline:
                    self._feed_slice()
                _FRAME_BUDGET.used += clock() - started
                if self._pending:
                    await asyncio.sleep(max(0.0, (frame + 1) * FRAME - clock()))

    def _feed_slice(self) -> None:
        data = bytes(self._pending[:FEED_SLICE])
        del self._pending[:FEED_SLICE]
        self._mark_dirty(self.emulator.feed(data))

    async def _drain(self) -> None:
        """Parse what is still pending after the connection ended."""
        while self._pending:
            self._feed_slice()
            await asyncio.sleep(0)

    def _show_closed(self, reason: str) -> None:
        """Show the closed banner as a line in the terminal and tell the app."""
        self._console_closed = True
        prefix = "\r\n" if self.emulator.cursor_x else ""
        banner = f"{prefix}\x1b[0;7m{CLOSED_BANNER}\x1b[0m\r\n\x1b[?25l"
        self._mark_dirty(self.emulator.feed(banner.encode(), answer=False))
        self.post_message(self.Disconnected(self, reason))

    def _write(self, data: bytes) -> bool:
        """Queue bytes for the guest without waiting (keys, pastes and answerback)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        try:
            writer.write(data)
        except (OSError, RuntimeError):
            return False
        return True

    # -- input ---------------------------------------------------------------------------------
    def on_key(self, event: events.Key) -> None:
        if event.key in self._bindings.key_to_bindings:
            return  # our own binding (leave, history keys): let Textual run it
        if not self._following and event.key == "escape":
            event.stop()
            event.prevent_default()
            self.jump_to_live()
            return
        data = key_to_bytes(
            event.key,
            event.character,
            self.emulator.application_cursor,
            backspace=self.backspace,
            function_keys=self.function_keys,
        )
        if data is None:
            return  # nothing a terminal would send: let the app see it
        event.stop()
        event.prevent_default()
        self.jump_to_live()  # typing goes back to live, like any terminal
        if not self._write(data):
            self.app.bell()

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        if event.text:
            self.jump_to_live()
            self._write(paste_to_bytes(event.text, self.emulator.bracketed_paste))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        event.prevent_default()
        self.scroll_history_up(lines=WHEEL_LINES)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        event.prevent_default()
        if not self._following:
            self.scroll_history_down(lines=WHEEL_LINES)

    def on_focus(self) -> None:
        self._mark_dirty({self.emulator.cursor_y})

    def on_blur(self) -> None:
        self._mark_dirty({self.emulator.cursor_y})

    # -- history: index, view, search ------------------------------------------------------------
    def _open_history(self) -> None:
        """Index the log's last MiB now, and the rest backwards in a thread."""
        if self._log is None:
            return
        try:
            self._index = LineIndex(self._log)
        except OSError as exc:
            log.warning("console history unavailable: %s", exc)
            return
        self._scan_history(self._index)
        if self._poll_timer is None:
            self._poll_timer = self.set_interval(HISTORY_POLL_SECONDS, self._tick)

    def _tick(self) -> None:
        """Keep the index near the end of the log: every tick in history, every few when live."""
        self._ticks += 1
        if not self._following or self._ticks % LIVE_POLL_TICKS == 0:
            self._poll_log()

    @work(thread=True, exclusive=True, group="console-history-scan", exit_on_error=False)
    def _scan_history(self, index: LineIndex) -> None:
        worker = get_current_worker()
        for first_block, counts in scan_backwards(
            index.log,
            index.first_block,
            block_size=index.block_size,
            cancelled=lambda: worker.is_cancelled,
        ):
            self.post_message(self._ScanBatch(index, first_block, counts))

    def on_console_pane__scan_batch(self, message: _ScanBatch) -> None:
        message.stop()
        index = self._index
        if message.index is not index or index is None:
            return
        added = index.prepend(message.first_block, message.counts)
        if not added:
            return
        if not self._following:
            self.virtual_size = Size(0, index.line_count + 1)
            if not self._stick_top:
                self.scroll_to(y=self.scroll_y + added, animate=False, force=True, immediate=True)
            self.refresh()
        self._resolve_pending_match()

    def _poll_log(self) -> None:
        """Index what the log gained (or rebuild after truncation); keep the view where it is."""
        log_ = self._log
        index = self._index
        if log_ is None or index is None:
            return
        log_.refresh()
        if log_.generation != index.generation:
            self._open_history()
            self.jump_to_live()
            return
        if index.extend(limit=HISTORY_EXTEND_LIMIT) and not self._following:
            self.virtual_size = Size(0, index.line_count + 1)
            self._refresh_status()

    def _enter_history(self) -> bool:
        """Switch to the history view at its newest line; False if there is no history."""
        self._poll_log()
        index = self._index
        if index is None or index.line_count == 0:
            return False
        self._following = False
        self.virtual_size = Size(0, index.line_count + 1)
        self.scroll_to(y=self.max_scroll_y, animate=False, force=True, immediate=True)
        self.refresh()
        self.post_message(self.FollowChanged(self, False))
        return True

    def _scroll_history_to(self, y: float) -> None:
        self.scroll_to(
            y=max(0, min(round(y), self.max_scroll_y)), animate=False, force=True, immediate=True
        )
        self.refresh()

    def _page(self) -> int:
        return max(1, self._history_height() - 1)

    def _view_end(self) -> int:
        """Log offset just past the last line on screen (the live end when following)."""
        index = self._index
        if index is None or self._log is None:
            return 0
        self._log.refresh()
        if self._following or index.line_count == 0:
            return self._log.size
        last = min(index.line_count - 1, round(self.scroll_y) + self._history_height() - 1)
        return index.span(last)[1] + 1

    def _view_start(self) -> int:
        index = self._index
        if index is None or self._following or index.line_count == 0:
            return self._log.size if self._log is not None else 0
        return index.span(min(index.line_count - 1, round(self.scroll_y)))[0]

    def _start_search(self, start: int, *, backwards: bool) -> None:
        if self._search is None or self._log is None:
            return
        self._search_state = "searching..."
        self._refresh_status()
        self._search_worker(self._log, self._search, start, backwards, self._search_generation)

    @work(thread=True, exclusive=True, group="console-history-search", exit_on_error=False)
    def _search_worker(
        self, log_: ConsoleLog, pattern: SearchPattern, start: int, backwards: bool, generation: int
    ) -> None:
        worker = get_current_worker()

        def cancelled() -> bool:
            return worker.is_cancelled

        found = search(log_, pattern, start, backwards=backwards, cancelled=cancelled)
        wrapped = False
        if found is None and not cancelled():  # wrap around, like a pager
            wrapped = True
            if backwards:
                found = search(log_, pattern, log_.size, backwards=True, floor=start,
                               cancelled=cancelled)
            else:
                found = search(log_, pattern, 0, backwards=False, end=start, cancelled=cancelled)
        if not cancelled():
            self.post_message(self._SearchDone(generation, pattern, found, wrapped))

    def on_console_pane__search_done(self, message: _SearchDone) -> None:
        message.stop()
        if message.generation != self._search_generation or message.pattern is not self._search:
            return
        if message.found is None:
            self._search_state = "not found"
            self._refresh_status()
            self.post_message(self.SearchResult(self, message.pattern.query, None))
            return
        self._pending_match = message.found
        self._search_state = "indexing..."
        self._wrapped = message.wrapped
        self._resolve_pending_match()

    def _resolve_pending_match(self) -> None:
        index = self._index
        found = self._pending_match
        if found is None or index is None or self._search is None:
            return
        index.extend(found[1])
        line = index.line_at(found[0])
        if line is None:
            self._refresh_status()
            return  # older than what is indexed so far: resolved by a later scan batch
        self._pending_match = None
        self._match_span = index.span(line)
        self._search_state = "(wrapped)" if self._wrapped else ""
        self._history_strips.clear()
        if self._following:
            self._enter_history()
        else:
            self.virtual_size = Size(0, index.line_count + 1)
        self._stick_top = False
        height = self._history_height()
        top = round(self.scroll_y)
        if not top <= line < top + height:
            self._scroll_history_to(line - height // 2)
        self.refresh()
        self.post_message(self.SearchResult(self, self._search.query, line))

    def _refresh_status(self) -> None:
        if not self._following and self.size.height:
            self.refresh(Region(0, self.size.height - 1, self.size.width, 1))

    def _history_height(self) -> int:
        """Rows of history lines on screen (the last row is the status line)."""
        return max(1, self.scrollable_content_region.height - 1)

    def _status_text(self) -> str:
        index = self._index
        if index is None:
            return ""
        total = index.line_count
        height = self._history_height()
        first = min(total, round(self.scroll_y) + 1)
        last = min(total, round(self.scroll_y) + height)
        more = "" if index.complete else "+ (indexing)"
        text = f" HISTORY {first:,}-{last:,} of {total:,}{more}"
        if self._search is not None:
            text += f" | /{self._search.query}"
            if self._search_state:
                text += f" {self._search_state}"
        return text + " | Esc: live "

    # -- painting ------------------------------------------------------------------------------
    def _mark_dirty(self, rows: set[int]) -> None:
        """Forget cached strips for ``rows`` and schedule one repaint for this frame."""
        if not rows:
            return
        for y in rows:
            self._strips.pop(y, None)
        self._dirty_rows |= rows
        if not self._frame_scheduled and self.is_mounted:
            self._frame_scheduled = True
            # Paint on the leading edge: at once if the last frame is a frame old, else at the
            # next frame (waiting a whole frame every time was most of an idle echo's latency).
            now = time.monotonic()
            flooded = now - self._flooded_at < FLOOD_MEMORY and not self.has_focus
            delay = self._last_paint + (FLOOD_FRAME if flooded else FRAME) - now
            if delay > 0.001:
                self.set_timer(delay, self._paint)
            else:
                self.call_later(self._paint)

    def _paint(self) -> None:
        self._frame_scheduled = False
        self._last_paint = time.monotonic()
        if not self._following or not self._shown:
            return  # rows stay invalidated in the strip cache; painted when shown
        rows, self._dirty_rows = self._dirty_rows, set()
        if self._follow_cursor():
            self.refresh()
            return
        width, height = self.size
        for y in rows:
            if 0 <= y - self._top < height:
                self.refresh(Region(0, y - self._top, width, 1))

    def _follow_cursor(self) -> bool:
        """Keep the cursor row visible when the pane is shorter than the guest; True if moved."""
        lines = self.emulator.lines
        height = self.size.height
        top = self._top
        if height >= lines or height <= 0:
            top = 0
        else:
            cursor_y = self.emulator.cursor_y
            if cursor_y < top:
                top = cursor_y
            elif cursor_y >= top + height:
                top = cursor_y - height + 1
            top = max(0, min(top, lines - height))
        moved = top != self._top
        self._top = top
        return moved

    def _pane_size(self) -> tuple[int, int]:
        """The pane's cells (columns, rows) for the guest, without the history scrollbar."""
        width, height = self.container_size
        return max(2, width), max(1, height)

    def on_resize(self) -> None:
        self._strips.clear()
        self._follow_cursor()
        # Repaint whole: the compositor may keep the lines it had at this size before (found
        # by a new user: a pane shrunk by a split kept showing the top of the guest screen).
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme or CSS changed: cached strips carry the old base style
        self._history_strips.clear()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.emulator.columns

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.emulator.lines

    def render_line(self, y: int) -> Strip:
        try:
            if not self._following:
                return self._render_history_line(y)
            return self._render_live_line(y)
        except Exception:  # noqa: BLE001 - painting must never take the dashboard down
            self._render_errors += 1
            if self._render_errors == 1:
                log.exception("console pane: cannot render row %d", y)
            return Strip.blank(self.size.width, self.rich_style)

    def _render_live_line(self, y: int) -> Strip:
        width = self.size.width
        row = y + self._top
        base: Style = self.rich_style
        if row >= self.emulator.lines:
            return Strip.blank(width, base)
        emulator = self.emulator
        if row == emulator.cursor_y and self.has_focus and not emulator.cursor_hidden:
            return render_row(emulator.screen, row, width, emulator.cursor_x, base_style=base)
        strip = self._strips.get(row)
        if strip is None or strip.cell_length != width:
            strip = render_row(emulator.screen, row, width, base_style=base)
            self._strips[row] = strip
        return strip

    def _render_history_line(self, y: int) -> Strip:
        width, height = self.scrollable_content_region.size
        base: Style = self.rich_style
        if y == height - 1:
            return self._status_strip(width, base + self.get_component_rich_style(
                "console-pane--status"
            ))
        index = self._index
        line = round(self.scroll_y) + y
        if index is None or not 0 <= line < index.line_count:
            return Strip.blank(width, base)
        start, end = index.span(line)
        current = self._match_span == (start, end)
        key = (start, end, width, self._search_generation, current)
        strip = self._history_strips.get(key)
        if strip is None:
            raw = index.read_line(line)
            strip = self._render_raw_line(raw, width, base, current)
            self._history_strips[key] = strip
        return strip

    def _render_raw_line(self, raw: bytes, width: int, base: Style, current: bool) -> Strip:
        search_ = self._search
        if search_ is None:
            return self._line_renderer.render(raw, width, base)
        name = "console-pane--current-match" if current else "console-pane--match"
        return self._line_renderer.render(
            raw,
            width,
            base,
            highlight=search_.text,
            highlight_style=self.get_component_rich_style(name),
        )

    def _status_strip(self, width: int, style: Style) -> Strip:
        text = self._status_text()[:width]
        return Strip([Segment(text, style)]).adjust_cell_length(width, style)


__all__ = ["ConsolePane"]
