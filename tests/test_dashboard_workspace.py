"""Side-by-side consoles, driven with Pilot on stand-in VMs: open, split, move focus, type into
each, close, maximise, the prefix key, and the layout saved in config.toml and restored."""

from __future__ import annotations

import html
import re
import tomllib

from glidex_core.config import Paths
from glidex_core.models import VmState
from glidex_core.supervisor import Supervisor
from glidex_tui.app import GlidexApp
from glidex_tui.screens.picker import PickVmScreen
from glidex_tui.widgets.console_area import ConsoleArea
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.prefix_overlay import PrefixOverlay
from glidex_tui.widgets.vm_table import VmTable
from tests.helpers import Console
from tests.test_dashboard_helpers import pane_text, standin_vms, type_text, wait_until

NAMES = ["web", "db", "cache", "queue"]


async def open_panes(pilot, app: GlidexApp, names: list[str], prompt: str = "/ #") -> None:
    """Select each VM in the table and press Enter (leaving each console with Ctrl+])."""
    table = app.query_one(VmTable)
    await wait_until(pilot, lambda: table.row_count >= len(names), what="rows")
    for name in names:
        vm_id = app.supervisor.get(name).id
        table.move_cursor(row=table.get_row_index(vm_id))
        await pilot.press("enter")
        await wait_until(pilot, lambda vm_id=vm_id: vm_id in app.area.panes, what=name)
        pane = app.area.pane_for(vm_id)
        await wait_until(pilot, lambda pane=pane: prompt in pane_text(pane), what="prompt")
        assert app.focused is pane
        await pilot.press("ctrl+right_square_bracket")
        assert app.focused is table


def pane_of(app: GlidexApp, name: str) -> ConsolePane:
    pane = app.area.pane_for(app.supervisor.get(name).id)
    assert pane is not None
    return pane


async def test_enter_tiles_four_consoles_into_a_grid(home, qemu_standin):
    async with standin_vms(home, NAMES):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 60)) as pilot:
            await open_panes(pilot, app, NAMES)
            area = app.query_one(ConsoleArea)
            assert len(area.panes) == 4
            regions = [pane_of(app, n).region for n in NAMES]
            assert len({r.x for r in regions}) == 2 and len({r.y for r in regions}) == 2, (
                f"four panes should make a 2x2 grid: {regions}")
            assert not any(a.overlaps(b) for i, a in enumerate(regions)
                           for b in regions[i + 1:])
            assert app.screen.has_class("-with-panes")


async def test_split_keys_place_the_new_console_beside_or_below(home, qemu_standin):
    async with standin_vms(home, NAMES[:3]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 3)
            await pilot.press("enter")  # web
            await wait_until(pilot, lambda: len(app.area.panes) == 1)
            await pilot.press("ctrl+right_square_bracket", "down", "vertical_line")  # db beside
            await wait_until(pilot, lambda: len(app.area.panes) == 2)
            await pilot.press("ctrl+right_square_bracket", "down", "minus")  # cache below db
            await wait_until(pilot, lambda: len(app.area.panes) == 3)
            names = {r.id: r.name for r in app.supervisor.list()}
            assert app.area.layout_tree.to_dict(names.get) == {
                "split": "row",
                "panes": [{"vm": "web"},
                          {"split": "column", "panes": [{"vm": "db"}, {"vm": "cache"}]}],
            }
            web, db, cache = (pane_of(app, n).region for n in ("web", "db", "cache"))
            assert web.x < db.x and db.x == cache.x and db.y < cache.y


async def test_prefix_moves_focus_between_panes_and_the_table(home, qemu_standin):
    async with standin_vms(home, NAMES[:2]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web", "db"])
            web, db = pane_of(app, "web"), pane_of(app, "db")
            table = app.query_one(VmTable)
            await pilot.press("tab")  # from the table to the pane used last
            assert app.focused is db
            await pilot.press("ctrl+backslash")
            assert app.prefix_armed and app.query_one(PrefixOverlay).display
            assert app.focused is db  # the console keeps its focus (and its cursor)
            await pilot.press("left")
            await wait_until(pilot, lambda: app.focused is web, what="focus left")
            await pilot.press("ctrl+backslash", "l")
            await wait_until(pilot, lambda: app.focused is db, what="focus right")
            await pilot.press("ctrl+backslash", "o")
            await wait_until(pilot, lambda: app.focused is web, what="next pane")
            await pilot.press("ctrl+backslash", "t")
            await wait_until(pilot, lambda: app.focused is table, what="the table")
            await pilot.press("tab")
            assert app.focused is web
            await pilot.press("ctrl+backslash", "escape")  # cancelled: nothing happens
            await pilot.pause()
            assert app.focused is web and not app.prefix_armed
            assert not app.query_one(PrefixOverlay).display
            await pilot.press("ctrl+backslash", "ctrl+backslash")  # twice: sent to the guest
            assert app.focused is web and not app.prefix_armed


async def test_each_pane_gets_its_own_typing(home, qemu_standin):
    async with standin_vms(home, NAMES[:2]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web", "db"])
            web, db = pane_of(app, "web"), pane_of(app, "db")
            await pilot.press("tab", "ctrl+backslash", "h")
            await wait_until(pilot, lambda: app.focused is web)
            await type_text(pilot, "echo left side")
            await pilot.press("enter")
            await pilot.press("ctrl+backslash", "right")
            await wait_until(pilot, lambda: app.focused is db)
            await type_text(pilot, "echo right side")
            await pilot.press("enter")
            await wait_until(pilot, lambda: "right side" in pane_text(db), what="db output")
            await wait_until(pilot, lambda: "left side" in pane_text(web), what="web output")
            assert "right side" not in pane_text(web)
            assert "left side" not in pane_text(db)


async def test_keys_belong_to_the_guest_while_a_console_has_focus(home, qemu_standin):
    async with standin_vms(home, NAMES[:1]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_panes(pilot, app, ["web"])
            await pilot.press("tab")
            pane = pane_of(app, "web")
            assert app.focused is pane
            assert app.check_action("quit", ()) is False
            assert app.check_action("command_palette", ()) is False
            assert app.check_action("prefix", ()) is True
            assert app.check_action("start", ()) is False  # hidden: the key goes to the guest
            shown = {b.binding.action for b in app.screen.active_bindings.values()}
            assert shown >= {"leave_console", "prefix"}
            assert not shown & {"quit", "command_palette", "start", "create", "help"}
            await pilot.press("ctrl+q", "ctrl+p", "q", "question_mark")
            await pilot.pause(0.2)
            assert app.is_running and app.screen is app.screen_stack[0]
            await pilot.press("ctrl+right_square_bracket")
            assert app.check_action("quit", ()) is True


async def test_close_and_maximise_panes(home, qemu_standin):
    async with standin_vms(home, NAMES[:2]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web", "db"])
            web, db = pane_of(app, "web"), pane_of(app, "db")
            area = app.area
            await pilot.press("tab")
            assert app.focused is db
            await pilot.press("ctrl+backslash", "z")
            await wait_until(pilot, lambda: app.screen.has_class("-zoomed"))
            await pilot.pause()
            assert db.region.width == area.region.width and not web.display
            assert not app.query_one("#top").display or app.query_one(VmTable).region.height == 0
            await pilot.press("escape")  # goes to the guest: the pane stays maximised
            await pilot.pause(0.1)
            assert app.screen.has_class("-zoomed") and app.focused is db
            await pilot.press("ctrl+backslash", "z")
            await wait_until(pilot, lambda: not app.screen.has_class("-zoomed"))
            await pilot.pause()
            assert web.display and db.region.width < area.region.width

            await pilot.press("ctrl+backslash", "x")
            await wait_until(pilot, lambda: len(area.panes) == 1)
            assert app.focused is web
            await pilot.pause()
            assert web.region.width == area.region.width  # it takes the freed space
            await pilot.press("ctrl+backslash", "x")
            await wait_until(pilot, lambda: not area.panes)
            assert app.focused is app.query_one(VmTable)
            assert not area.display and not app.screen.has_class("-with-panes")


async def test_split_from_inside_a_console_asks_which_vm(home, qemu_standin):
    async with standin_vms(home, NAMES[:3], running=["web", "db"]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web"])
            await pilot.press("tab", "ctrl+backslash", "minus")
            await wait_until(pilot, lambda: isinstance(app.screen, PickVmScreen))
            choices = app.screen.choices
            assert [name for _, name in choices] == ["db"]  # running and not shown yet
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(app.area.panes) == 2)
            web, db = pane_of(app, "web"), pane_of(app, "db")
            await pilot.pause()
            assert web.region.x == db.region.x and web.region.y < db.region.y
            assert app.focused is db


async def test_prefix_scrolls_the_focused_pane_back_and_to_live(home, qemu_standin):
    async with standin_vms(home, NAMES[:1], behaviours={"web": "standin.counter=30"}):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_panes(pilot, app, ["web"], prompt="c")
            pane = pane_of(app, "web")
            def counted() -> int:
                numbers = [int(line[1:]) for line in pane.screen_lines()
                           if line[1:].isdigit() and line.startswith("c")]
                return max(numbers, default=0)

            await wait_until(pilot, lambda: counted() > 30, what="output")
            await pilot.press("tab", "ctrl+backslash", "left_square_bracket")
            await wait_until(pilot, lambda: not pane.following, what="history view")
            await pilot.press("ctrl+backslash", "right_square_bracket")
            await wait_until(pilot, lambda: pane.following, what="live again")


async def test_a_stopped_vm_leaves_its_pane_readable_and_enter_reopens_it(home, qemu_standin):
    async with standin_vms(home, NAMES[:1]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_panes(pilot, app, ["web"])
            vm_id = app.supervisor.get("web").id
            first = pane_of(app, "web")
            await pilot.press("x")
            await wait_until(pilot, lambda: app.area.panes[vm_id].closed, what="closed")
            assert "closed" in str(first.border_title)
            await wait_until(pilot, lambda: any("console closed" in n.message
                                                for n in app._notifications))
            await pilot.press("s")
            await wait_until(pilot, lambda: app.supervisor.get(vm_id).state == VmState.RUNNING)
            await pilot.press("enter")
            await wait_until(pilot, lambda: not app.area.panes[vm_id].closed, what="reopened")
            second = pane_of(app, "web")
            assert second is not first and len(app.area.panes) == 1
            await wait_until(pilot, lambda: "/ #" in pane_text(second))


async def test_layout_is_saved_in_config_toml_and_restored(home, qemu_standin):
    async with standin_vms(home, NAMES[:3]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web"])
            table = app.query_one(VmTable)
            for name, key in (("db", "vertical_line"), ("cache", "minus")):
                table.move_cursor(row=table.get_row_index(app.supervisor.get(name).id))
                await pilot.press(key, "ctrl+right_square_bracket")
            await wait_until(pilot, lambda: len(app.area.panes) == 3)
            await pilot.press("ctrl+backslash", "S")
            await wait_until(pilot, lambda: (home / "config.toml").exists())
            saved = tomllib.loads((home / "config.toml").read_text())["dashboard_layout"]
            assert saved == {"split": "row", "panes": [
                {"vm": "web"}, {"split": "column", "panes": [{"vm": "db"}, {"vm": "cache"}]}]}
            await pilot.press("q")

        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: len(app.area.panes) == 3, what="restored panes")
            names = {r.id: r.name for r in app.supervisor.list()}
            assert app.area.layout_tree.to_dict(names.get) == saved
            for name in ("web", "db", "cache"):
                pane = pane_of(app, name)
                await wait_until(pilot, lambda pane=pane: "/ #" in pane_text(pane))
            await app.supervisor.stop(app.supervisor.get("db").id, force=True)
            # A restored pane is active: pane commands from the table act on it at once
            # (found by a new user: "No console pane open" until Tab was pressed).
            assert app.area.active == app.supervisor.get("web").id
            await pilot.press("ctrl+backslash", "x")
            await wait_until(pilot, lambda: len(app.area.panes) == 2, what="closed pane")
            # Closed from the table, the keyboard stays in the table (found by a new user:
            # the next keys typed went to a guest), and the next pane is the active one.
            assert app.focused is app.query_one(VmTable)
            assert app.area.active in app.area.panes
            await pilot.press("q")

        app = GlidexApp(home=home)  # db is not running: restored without it, and told so
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: len(app.area.panes) == 2, what="restored panes")
            assert any("without db" in n.message for n in app._notifications)
            await pilot.press("colon")
            await type_text(pilot, "layout clear")
            await pilot.press("enter")
            await wait_until(pilot, lambda: "dashboard_layout" not in tomllib.loads(
                (home / "config.toml").read_text()))


async def test_stty_tells_the_guest_the_whole_pane(home, qemu_standin):
    """Found by a new user: with the prefix overlay still on screen the pane looked shorter,
    and `r` typed too few rows."""
    async with standin_vms(home, NAMES[:1]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web"])
            web = pane_of(app, "web")
            await pilot.press("tab", "ctrl+backslash", "h")
            await wait_until(pilot, lambda: app.focused is web)
            await pilot.press("ctrl+backslash", "r")
            await wait_until(pilot, lambda: "stty rows" in pane_text(web), what="stty typed")
            columns, rows = web.content_size
            assert f"stty rows {rows} cols {columns}" in pane_text(web), (pane_text(web),
                                                                          web.content_size)
            assert (web.emulator.columns, web.emulator.lines) == (columns, rows)
            await pilot.press("ctrl+right_square_bracket", "q")

        # Found by a new user: a restarted dashboard went back to 80x24 while the guest still
        # believed the size it was told, so every line wrapped at column 80.
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web"])
            web = pane_of(app, "web")
            assert (web.emulator.columns, web.emulator.lines) == (columns, rows)
            await pilot.press("q")

        # Once the VM has started again (a new keeper, a new boot), the note no longer holds.
        supervisor = await Supervisor.open(home)
        try:
            await supervisor.restart("web")
        finally:
            await supervisor.close()
        app = GlidexApp(home=home)
        async with app.run_test(size=(160, 50)) as pilot:
            await open_panes(pilot, app, ["web"])
            web = pane_of(app, "web")
            assert (web.emulator.columns, web.emulator.lines) == (80, 24)
            await pilot.press("q")


def screen_text(app: GlidexApp) -> str:
    """What the terminal would show: the text of the app's screenshot."""
    return html.unescape(" ".join(re.findall(r">([^<]*)</text>", app.export_screenshot())))


async def test_a_pane_made_shorter_than_the_guest_still_shows_its_cursor_row(home, qemu_standin):
    """Found by a new user: after a split below (or maximise and back) a pane shorter than the
    guest's 24 rows showed the top of the guest screen, not the prompt, until more output."""
    async with standin_vms(home, NAMES[:2]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 50)) as pilot:
            await open_panes(pilot, app, ["web"])
            web = pane_of(app, "web")
            console = await Console.attach(Paths(home).console_socket(app.supervisor.get("web").id))
            try:
                await console.send(b"".join(b"echo line%05d\r" % i for i in range(3000)))
                await wait_until(pilot, lambda: "line02999" in pane_text(web), what="output")
                await pilot.pause(0.3)
                assert web.size.height >= web.emulator.lines  # the whole guest screen shows
                table = app.query_one(VmTable)
                table.move_cursor(row=table.get_row_index(app.supervisor.get("db").id))
                await pilot.press("minus")  # db below web: web gets shorter than 24 rows
                await wait_until(pilot, lambda: len(app.area.panes) == 2)
                await pilot.pause(0.5)
                assert web.size.height < web.emulator.lines
                assert "line02999" in screen_text(app)
                await pilot.press("ctrl+backslash", "z", "ctrl+backslash", "z")
                await pilot.pause(0.5)
                assert "line02999" in screen_text(app)
            finally:
                await console.close()
            await pilot.press("ctrl+right_square_bracket", "q")
