"""Drives the real dashboard (``glidex_tui.app.GlidexApp``) headless with Textual's ``run_test``.

``python -m bench.dashboard_driver SPEC_JSON`` -> one JSON line on stdout. Run in its own
process so the dashboard has its own event loop and CPU, like a user's ``glidex``. The VMs are
already running (STAND-IN VMMs, see standin_vmm.py); the app embeds a supervisor and adopts them.

Keys are injected the way Textual's own driver delivers them (``driver.send_message(Key)``), and
"echoed" means the console pane has *rendered* the row holding the typed character
(``ConsolePane.render_line`` is wrapped to note when); headless, the compositor still renders
every line, it just writes the result nowhere.

Scenarios:
- ``echo``: keystroke-to-echo on a console pane whose VMM echoes stdin, first with nothing else
  going on (baseline), then while a second, visible pane shows a VM writing ``flood_rate`` B/s.
  Both panes are opened in the real workspace with the user's keys: Enter on the flood VM's
  row opens its pane, Ctrl+] returns to the table, ``|`` on the echo VM's row opens its pane
  beside it (and focuses it).
- ``open``: in a freshly started dashboard, time from Enter on a VM's row (the real table and
  console area) to the first rendered line of its console; then from Shift+PgUp
  (``scroll_history_up``) to the first rendered page of history, and until the history index
  covers the whole log.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

from textual import events

from glidex_tui.app import GlidexApp
from glidex_tui.widgets.console_area import ConsoleArea
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.vm_table import VmTable

_original_render_line = ConsolePane.render_line


def _render_line(self: ConsolePane, y: int):
    strip = _original_render_line(self, y)
    hook = self.__dict__.get("bench_hook") or ANY_PANE_HOOK.get("hook")
    if hook is not None:
        hook(self, y)
    return strip


ANY_PANE_HOOK: dict = {}  # a hook for every pane, including one about to be mounted
ConsolePane.render_line = _render_line  # type: ignore[method-assign]


def press(app: GlidexApp, key: str, char: str | None) -> None:
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def keystrokes(app: GlidexApp, pane: ConsolePane, n: int, rng: random.Random) -> list:
    """n keystroke-to-rendered-echo latencies (seconds), typed 50-150 ms apart."""
    latencies = []
    for i in range(n):
        emulator = pane.emulator
        if emulator.cursor_x >= 60:
            press(app, "enter", "\r")  # the echo VMM sends CR back: cursor to column 0
            await until(lambda: pane.emulator.cursor_x == 0, 5, "the echoed CR")
        row, col = emulator.cursor_y, emulator.cursor_x
        char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        done = asyncio.Event()
        seen: dict[str, float] = {}

        def hook(p: ConsolePane, y: int, row=row, col=col, char=char, seen=seen,
                 done=done) -> None:
            if "t" not in seen and y + p._top == row and \
                    p.emulator.screen.buffer[row][col].data == char:
                seen["t"] = time.perf_counter()
                done.set()

        pane.bench_hook = hook
        begin = time.perf_counter()
        press(app, char, char)
        await asyncio.wait_for(done.wait(), 30)
        latencies.append(seen["t"] - begin)
        pane.bench_hook = None
        await asyncio.sleep(rng.uniform(0.05, 0.15))
    return latencies


async def _select_row(app: GlidexApp, pilot, vm_id: str) -> VmTable:
    table = app.query_one(VmTable)
    await until(lambda: vm_id in {row.value for row in table.rows}, 10, "the VM's table row")
    table.move_cursor(row=table.get_row_index(vm_id))
    await pilot.pause(0.1)
    return table


async def echo_scenario(spec: dict) -> dict:
    app = GlidexApp(home=Path(spec["home"]))
    rng = random.Random(6)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.supervisor is not None and len(app.supervisor.list()) >= 2, 30,
                    "the VMs")
        sup = app.supervisor
        echo_vm, flood_vm = sup.get("echo"), sup.get("flood")
        area = app.query_one(ConsoleArea)
        table = await _select_row(app, pilot, flood_vm.id)
        table.focus()
        await pilot.pause(0.2)
        press(app, "enter", "\r")  # the flood VM's console
        await until(lambda: area.pane_for(flood_vm.id) is not None, 10, "the flood pane")
        press(app, "ctrl+right_square_bracket", "\x1d")  # back to the table
        await until(lambda: app.focused is table, 10, "the table to have focus again")
        await _select_row(app, pilot, echo_vm.id)
        press(app, "vertical_line", "|")  # the echo VM's console beside it
        await until(lambda: area.pane_for(echo_vm.id) is not None, 10, "the echo pane")
        left, right = area.pane_for(echo_vm.id), area.pane_for(flood_vm.id)
        await until(lambda: left.connected and right.connected, 20, "both consoles")
        await until(lambda: app.focused is left, 10, "the echo pane to have focus")
        if not (left.display and right.display) or left.region.overlaps(right.region):
            raise RuntimeError(f"panes not side by side: {left.region} {right.region}")
        await pilot.pause(0.5)
        idle = await keystrokes(app, left, spec["samples"], rng)

        fed = {"bytes": 0}
        original_feed = right.emulator.feed

        def counting_feed(data: bytes, *args, **kwargs):
            fed["bytes"] += len(data)
            return original_feed(data, *args, **kwargs)

        right.emulator.feed = counting_feed  # type: ignore[method-assign]
        flood_log = Path(sup.console_info(flood_vm.id).log_path)
        os.kill(flood_vm.vmm_pid, signal.SIGUSR1)
        await pilot.pause(1.0)
        begin, fed_before = time.monotonic(), fed["bytes"]
        logged_before = flood_log.stat().st_size
        loaded = await keystrokes(app, left, spec["samples"], rng)
        elapsed = time.monotonic() - begin
        produced = (flood_log.stat().st_size - logged_before) / elapsed
        consumed = (fed["bytes"] - fed_before) / elapsed
        dropped = right.closed
        os.kill(flood_vm.vmm_pid, signal.SIGUSR2)
        await pilot.pause(0.2)
    return {"idle": idle, "loaded": loaded, "flood_consumed": consumed, "flood_produced": produced,
            "flood_dropped": dropped, "loaded_seconds": elapsed}


async def open_scenario(spec: dict) -> dict:
    """One console opening per app (a fresh dashboard each time): Enter on the VM's row ->
    first rendered console line; then Shift+PgUp -> first rendered history page; and when the
    history index covers the whole log."""
    app = GlidexApp(home=Path(spec["home"]))
    out: dict[str, float | None] = {"first_screen": None, "history_ready": None,
                                    "history_page": None, "index_complete": None}
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.supervisor is not None and len(app.supervisor.list()) >= 2, 30,
                    "the VMs")
        table = app.query_one(VmTable)
        await until(lambda: table.row_count >= 2, 10, "the table rows")
        record = app.supervisor.get(spec["vm"])
        table.focus()
        table.move_cursor(row=table.get_row_index(record.id))
        await pilot.pause(0.5)
        seen: dict[str, float] = {}
        first = asyncio.Event()

        def on_render(p: ConsolePane, _y: int) -> None:
            if "t" not in seen and any(p.emulator.text_lines()):
                seen["t"] = time.perf_counter()
                seen["pane"] = p
                first.set()

        ANY_PANE_HOOK["hook"] = on_render
        begin = time.perf_counter()
        press(app, "enter", "\r")
        await asyncio.wait_for(first.wait(), 60)
        ANY_PANE_HOOK.clear()
        out["first_screen"] = seen["t"] - begin
        pane: ConsolePane = seen["pane"]
        if hasattr(pane, "scroll_history_up") and hasattr(pane, "history_index"):
            history = asyncio.Event()
            hist: dict[str, float] = {}

            def on_history(p: ConsolePane, _y: int) -> None:
                if "t" not in hist and not p.following:
                    hist["t"] = time.perf_counter()
                    history.set()

            await until(lambda: pane.history_index is not None
                        and pane.history_index.line_count > 0, 60, "the first history lines")
            out["history_ready"] = time.perf_counter() - seen["t"] + out["first_screen"]
            pane.focus()
            await pilot.pause(0.2)
            pane.bench_hook = on_history
            begin = time.perf_counter()
            press(app, "shift+pageup", None)
            await asyncio.wait_for(history.wait(), 60)
            out["history_page"] = hist["t"] - begin
            pane.bench_hook = None
            await until(lambda: pane.history_index is not None
                        and pane.history_index.complete, 120, "the whole log indexed")
            out["index_complete"] = time.perf_counter() - seen["t"] + out["first_screen"]
    return out


def main(spec: dict) -> None:
    scenario = {"echo": echo_scenario, "open": open_scenario}[spec["scenario"]]
    result = asyncio.run(scenario(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
