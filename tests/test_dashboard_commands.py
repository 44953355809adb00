"""The ? help screen, the command palette and the : command line, driven with Pilot."""

from __future__ import annotations

import pytest
from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import Input

from glidex_core.models import VmState
from glidex_tui.app import MOVEMENT_ACTIONS, TEXTUAL_APP_KEYS, GlidexApp
from glidex_tui.commands import COMMANDS, CommandError, parse_command_line
from glidex_tui.keymap import available_prefix_commands
from glidex_tui.screens.confirm import ConfirmScreen
from glidex_tui.screens.create_form import CreateVmScreen
from glidex_tui.screens.help import HelpScreen, help_sections, help_text
from glidex_tui.screens.prompt import PromptScreen
from glidex_tui.widgets.console_pane import ConsolePane
from glidex_tui.widgets.filter_input import FilterInput
from glidex_tui.widgets.vm_table import VmTable
from tests.test_dashboard_helpers import standin_vms, type_text, wait_until


def every_binding() -> list[Binding]:
    classes = (GlidexApp, VmTable, ConsolePane, FilterInput)
    return [b for cls in classes for b in Binding.make_bindings(cls.BINDINGS)] + [
        *Binding.make_bindings(TEXTUAL_APP_KEYS)]


async def test_help_lists_every_key_and_command(home):
    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_text(app.screen.sections)
        for binding in every_binding():
            key = app.get_key_display(binding)
            line = next((ln for ln in text.splitlines() if f" {key} " in f" {ln} "), None)
            assert line is not None, f"{binding.key} ({binding.action}) missing from help"
            assert binding.description.split(" (")[0] in line or not binding.description
        for command in available_prefix_commands(ConsolePane):
            assert f"{command.display} " in text and command.description in text
        for command in COMMANDS:
            assert f":{command.usage}" in text
        # What the screen shows is that same text.
        shown = "\n".join(str(s.render()) for s in app.screen.query(".help-title"))
        assert all(section.title in shown for section in help_sections(app))
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark", "q")  # q closes help, it does not quit
        assert app.is_running and not isinstance(app.screen, HelpScreen)


async def test_palette_offers_every_action_and_per_vm_entries(home, qemu_standin):
    async with standin_vms(home, ["web", "db"], running=["web"]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.query_one(VmTable).row_count == 2)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            for binding in every_binding():
                if binding.action in ("leave_console", "command_palette", "quit", "prefix") or \
                        binding.key in ("escape",) or binding.action in MOVEMENT_ACTIONS or \
                        binding.action.startswith("scroll_"):
                    continue  # keys, not commands (quit: Textual's own "Quit" entry)
                assert binding.description in titles, binding
            for command in available_prefix_commands(ConsolePane):
                if command.action not in ("cancel_prefix", "send_prefix", "command_palette"):
                    assert command.description in titles
            assert "Theme" in titles  # Textual's theme switcher stays

            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            await type_text(pilot, "start db")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.supervisor.get("db").state == VmState.RUNNING,
                             what="db started from the palette")

            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            await type_text(pilot, "connect to web")
            await pilot.pause(0.5)
            await pilot.press("enter")
            web_id = app.supervisor.get("web").id
            await wait_until(pilot, lambda: web_id in app.area.panes, what="web's pane")

            await pilot.press("ctrl+right_square_bracket", "ctrl+p")
            await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            await type_text(pilot, "show every key")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def command(pilot, app, text: str) -> None:
    """Open the : line, fill it in (typing is covered by the completion test), press Enter."""
    await pilot.press("colon")
    await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
    app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")
    await pilot.pause(0.1)


async def test_command_line(home, qemu_standin):
    async with standin_vms(home, ["web", "db"], running=[]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(VmTable)
            await wait_until(pilot, lambda: table.row_count == 2)

            def state(name: str) -> VmState:
                return app.supervisor.get(name).state

            await command(pilot, app, "start web db")
            await wait_until(pilot, lambda: state("web") == state("db") == VmState.RUNNING)
            await command(pilot, app, "stop db")
            await wait_until(pilot, lambda: state("db") == VmState.STOPPED)
            await command(pilot, app, "connect web")
            await wait_until(pilot, lambda: app.supervisor.get("web").id in app.area.panes)
            assert isinstance(app.focused, ConsolePane)

            # From inside the console: the prefix, then : (the pane keeps its keys).
            await pilot.press("ctrl+backslash", "colon")
            await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await type_text(pilot, "pause web")
            await pilot.press("enter")
            await wait_until(pilot, lambda: state("web") == VmState.PAUSED)
            await pilot.press("ctrl+right_square_bracket")
            table.move_cursor(row=table.get_row_index(app.supervisor.get("web").id))
            await command(pilot, app, "pause")  # no name: the selected VM (toggles back)
            await wait_until(pilot, lambda: state("web") == VmState.RUNNING)

            await command(pilot, app, "sort name")
            assert table.sort_column == "name"
            await command(pilot, app, "filter we")
            assert table.row_count == 1 and app.query_one(FilterInput).value == "we"
            await command(pilot, app, "filter")
            assert table.row_count == 2

            await command(pilot, app, "theme glidex-light")
            assert app.theme == "glidex-light"

            await command(pilot, app, "strat web")
            assert any("did you mean :start" in n.message for n in app._notifications)
            await command(pilot, app, "connect nosuchvm")
            assert any("No VM named 'nosuchvm'" in n.message for n in app._notifications)

            await command(pilot, app, "delete db")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(pilot, lambda: table.row_count == 1, what="db deleted")

            # History: up brings the last command back.
            await pilot.press("colon", "up")
            assert app.screen.query_one("#prompt-input").value == "delete db"
            await pilot.press("escape")
            await command(pilot, app, "q")
            await wait_until(pilot, lambda: not app.is_running, what="quit")


def test_command_parsing_explains_mistakes():
    cmd, args = parse_command_line(":start web db")
    assert cmd.name == "start" and args == ["web", "db"]
    assert parse_command_line("c web")[0].name == "connect"
    assert parse_command_line("q")[0].name == "quit"
    for bad, message in (("", "type a command"), ("stat web", "did you mean :start"),
                         ("help me", "takes no arguments"), ("connect a b", "one VM"),
                         ("layout burn", "not one of"), ("start 'web", "cannot read")):
        with pytest.raises(CommandError, match=message):
            parse_command_line(bad)


async def test_command_completion_suggests_commands_and_names(home, qemu_standin):
    async with standin_vms(home, ["web"], running=[]):
        app = GlidexApp(home=home)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(pilot, lambda: app.query_one(VmTable).row_count == 1)
            await pilot.press("colon")
            await type_text(pilot, "con")
            field = app.screen.query_one("#prompt-input")
            await wait_until(pilot, lambda: field._suggestion == "connect", what="suggestion")
            await pilot.press("right")  # accepts it, as in a shell
            await type_text(pilot, " w")
            await wait_until(pilot, lambda: field._suggestion == "connect web")
            await pilot.press("right", "enter")
            await wait_until(pilot, lambda: app.supervisor.get("web").id not in app.area.panes
                             and any("start it" in n.message for n in app._notifications))


async def test_text_that_looks_like_markup_is_shown_as_typed_not_parsed(home):
    """Found by a new user: "[/x]" in a message (a path in QEMU's error, a typed name) was
    parsed as a closing tag and the dashboard died with a MarkupError."""
    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await command(pilot, app, "connect [/x]")
        await wait_until(pilot, lambda: any("No VM named '[/x]'" in n.message
                                            for n in app._notifications), what="the notice")
        await pilot.pause(0.3)  # rendered
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateVmScreen), what="form")
        app.screen.query_one("#name", Input).value = "x[/y]"
        await pilot.pause(0.3)
        assert "not a valid name" in str(app.screen.query_one("#name-error").render())
        assert app.is_running
