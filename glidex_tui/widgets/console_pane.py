"""The console pane: a live guest serial console inside the dashboard.

Byte flow: keeper socket -> reader worker (owned by the pane) -> ``TerminalEmulator.feed`` ->
dirty rows -> one coalesced repaint per frame (<= 60 Hz) -> ``render_line`` -> ``render_row``.
Keys, pastes and answerback go the other way, written straight to the socket.

Why it is built this way:

- The keeper (a separate process) owns the PTY and the log; pyte runs only here, so a slow
  dashboard can never stall the guest. The keeper drops clients that fall far behind.
- Feeding only marks rows dirty; a single timer per frame refreshes just those rows, so bursty boot
  output costs one repaint per frame, not one per read. Non-cursor rows are cached as Strips.
- The guest size is fixed (80x24 by default; serial consoles have no resize signal). A smaller pane
  crops columns on the right and follows the cursor vertically.
- On mount the pane connects first, then replays the last 64 KiB of the console log (without
  answering old queries), so earlier output shows and nothing printed in between is lost.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import ClassVar

from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from glidex_tui.terminal.emulator import TerminalEmulator
from glidex_tui.terminal.keys import key_to_bytes, paste_to_bytes
from glidex_tui.terminal.logtail import DEFAULT_TAIL_BYTES, log_size, overlap, read_log_tail
from glidex_tui.terminal.render import render_row

log = logging.getLogger(__name__)

READ_CHUNK = 65536
FEED_SLICE = 4096  # bytes of pyte work per event-loop turn (~5 ms)
CLOSED_BANNER = "[console closed]"


class ConsolePane(Widget, can_focus=True):
    """A focusable guest console (pyte screen + keeper socket).

    Focused, the pane sends every key to the guest, ctrl+c, ctrl+d, ctrl+z, tab and esc included,
    except its own bindings: ``ctrl+]`` (Textual key ``ctrl+right_square_bracket``, binding id
    ``console.leave``, remappable with ``App.set_keymap``) posts :class:`LeaveRequested` and sends
    nothing to the guest, like ``virsh console``.

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
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+right_square_bracket",
            "leave_console",
            "Leave console",
            key_display="^]",
            id="console.leave",
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
        name: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create a pane; it attaches when mounted.

        Args:
            console_socket: The keeper's Unix socket (``Paths.console_socket(vm_id)``).
            log_path: The VM's console log; its last ``tail_bytes`` are replayed on mount.
            title: Shown as the border title (visible when the pane has a border in CSS).
            columns: Guest terminal width; must match the guest's ``stty`` size.
            lines: Guest terminal height.
        """
        super().__init__(name=name, id=id, classes=classes)
        self.console_socket = Path(console_socket)
        self.log_path = Path(log_path)
        self.tail_bytes = tail_bytes
        if title:
            self.border_title = title
        self.emulator = TerminalEmulator(columns, lines, reply=self._write)
        self._writer: asyncio.StreamWriter | None = None
        self._console_closed = False
        self._top = max(0, lines - 1)  # first guest row shown; clamped once the size is known
        self._pending: set[int] = set()
        self._frame_scheduled = False
        self._strips: dict[int, Strip] = {}

    # -- public API ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the keeper socket is open."""
        return self._writer is not None

    @property
    def closed(self) -> bool:
        """True once the connection has ended (or could not be made)."""
        return self._console_closed

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

    def action_leave_console(self) -> None:
        """Bound to ctrl+]: ask the app to move focus elsewhere."""
        self.post_message(self.LeaveRequested(self))

    # -- lifecycle -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.run_worker(
            self._console_worker(),
            name=f"console {self.console_socket.name}",
            group="console",
            exclusive=True,
            exit_on_error=False,
        )

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
        size_at_connect = log_size(self.log_path)
        tail, tail_end = await asyncio.to_thread(read_log_tail, self.log_path, self.tail_bytes)
        await self._feed(tail, answer=False)
        if reader is None or writer is None:
            return reason
        self._writer = writer
        may_repeat = max(0, tail_end - size_at_connect)
        try:
            while chunk := await reader.read(READ_CHUNK):
                if may_repeat:
                    chunk = chunk[overlap(tail, chunk, may_repeat) :]
                    may_repeat = 0
                await self._feed(chunk)
        except OSError as exc:
            reason = f"connection lost: {exc}"
        finally:
            self._writer = None
            writer.close()
        return reason

    async def _feed(self, data: bytes, *, answer: bool = True) -> None:
        """Feed pyte in slices, yielding between them, so a burst never freezes the dashboard."""
        for start in range(0, len(data), FEED_SLICE):
            self._mark_dirty(self.emulator.feed(data[start : start + FEED_SLICE], answer=answer))
            if len(data) > FEED_SLICE:
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
            return  # our own binding (the leave key): let Textual run it; never sent to the guest
        data = key_to_bytes(event.key, event.character, self.emulator.application_cursor)
        if data is None:
            return  # nothing a terminal would send: let the app see it
        event.stop()
        event.prevent_default()
        if not self._write(data):
            self.app.bell()

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        if event.text:
            self._write(paste_to_bytes(event.text, self.emulator.bracketed_paste))

    def on_focus(self) -> None:
        self._mark_dirty({self.emulator.cursor_y})

    def on_blur(self) -> None:
        self._mark_dirty({self.emulator.cursor_y})

    # -- painting ------------------------------------------------------------------------------
    def _mark_dirty(self, rows: set[int]) -> None:
        """Forget cached strips for ``rows`` and schedule one repaint for this frame."""
        if not rows:
            return
        for y in rows:
            self._strips.pop(y, None)
        self._pending |= rows
        if not self._frame_scheduled and self.is_mounted:
            self._frame_scheduled = True
            self.set_timer(1 / 60, self._paint)

    def _paint(self) -> None:
        self._frame_scheduled = False
        rows, self._pending = self._pending, set()
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

    def on_resize(self) -> None:
        self._strips.clear()
        self._follow_cursor()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme or CSS changed: cached strips carry the old base style

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.emulator.columns

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.emulator.lines

    def render_line(self, y: int) -> Strip:
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


__all__ = ["ConsolePane"]
