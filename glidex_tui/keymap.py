"""The keys that are not ordinary Textual bindings: the console prefix and its commands.

Why a prefix: while a console pane has focus every key belongs to the guest (shells need
Ctrl+P, Ctrl+Q, Esc, Tab, ...). The dashboard keeps exactly two keys for itself there:

- ``Ctrl+]`` (the pane's own binding) leaves the console: focus goes back to the VM table,
  where all the single-key shortcuts work, as in ``virsh console``/telnet.
- ``Ctrl+\\`` (a priority binding, so it beats the pane) is a tmux-style prefix: the next key
  is a dashboard command (split, move between panes, close, maximise, scroll back, search...)
  and focus stays in the console. ``Ctrl+\\`` twice sends a real Ctrl+\\ to the guest.

The prefix commands live in one table, :data:`PREFIX_COMMANDS`, that drives the prefix overlay,
the ``?`` help screen and the command palette, so none of them can drift from what the keys do.
Commands that call into :class:`ConsolePane` (scrollback, search, stty) are offered only when
the pane class has that method, so they appear as the console layer gains them.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.keys import format_key

PREFIX_KEY = "ctrl+backslash"
PREFIX_KEY_DISPLAY = "^\\"
LEAVE_KEY_DISPLAY = "^]"


@dataclass(frozen=True)
class PrefixCommand:
    """One key after the prefix.

    ``action`` is a GlidexApp action (``"close_pane"``, ``"focus_direction('left')"``);
    ``needs`` names a ConsolePane method without which the command is not offered.
    """

    keys: tuple[str, ...]
    action: str
    description: str
    needs: str | None = None

    @property
    def display(self) -> str:
        return " ".join(key_label(k) for k in self.keys)


PREFIX_COMMANDS: tuple[PrefixCommand, ...] = (
    PrefixCommand(("left", "h"), "focus_direction('left')", "Focus the pane to the left"),
    PrefixCommand(("down", "j"), "focus_direction('down')", "Focus the pane below"),
    PrefixCommand(("up", "k"), "focus_direction('up')", "Focus the pane above"),
    PrefixCommand(("right", "l"), "focus_direction('right')", "Focus the pane to the right"),
    PrefixCommand(("o",), "focus_next_pane(1)", "Focus the next pane"),
    PrefixCommand(("t",), "focus_table", "Focus the VM table"),
    PrefixCommand(("vertical_line",), "split_pick('row')", "Split: another console beside"),
    PrefixCommand(("minus",), "split_pick('column')", "Split: another console below"),
    PrefixCommand(("x",), "close_pane", "Close the focused pane"),
    PrefixCommand(("z",), "zoom_pane", "Maximise / restore the focused pane"),
    PrefixCommand(("left_square_bracket", "pageup"), "pane_call('scroll_history_up', True)",
                  "Scroll back a page (history)", needs="scroll_history_up"),
    PrefixCommand(("pagedown",), "pane_call('scroll_history_down', True)",
                  "Scroll forward a page (history)", needs="scroll_history_down"),
    PrefixCommand(("g",), "pane_call('scroll_history_top')", "Jump to the first line logged",
                  needs="scroll_history_top"),
    PrefixCommand(("right_square_bracket",), "pane_call('jump_to_live')",
                  "Back to the live screen", needs="jump_to_live"),
    PrefixCommand(("slash",), "pane_search", "Search the history", needs="search"),
    PrefixCommand(("n",), "pane_call('search_next')", "Next (older) match",
                  needs="search_next"),
    PrefixCommand(("N",), "pane_call('search_previous')", "Previous (newer) match",
                  needs="search_previous"),
    PrefixCommand(("r",), "pane_call('stty_size')", "Tell the guest the pane size (stty)",
                  needs="action_stty_size"),
    PrefixCommand(("S",), "save_layout", "Save the layout to config.toml"),
    PrefixCommand(("colon",), "command_line", "Command mode (:start web, ...)"),
    PrefixCommand(("question_mark",), "help", "Show every key"),
    PrefixCommand(("p",), "command_palette", "Command palette"),
    PrefixCommand(("q",), "quit", "Quit the dashboard (VMs keep running)"),
    PrefixCommand((PREFIX_KEY,), "send_prefix", "Send a real Ctrl+\\ to the guest"),
    PrefixCommand(("escape",), "cancel_prefix", "Cancel"),
)


def key_label(key: str) -> str:
    """How a Textual key name is shown to people: ``ctrl+backslash`` -> ``^\\``."""
    if key == PREFIX_KEY:
        return PREFIX_KEY_DISPLAY
    if key.startswith("ctrl+"):
        return "^" + format_key(key[5:])
    return {"escape": "esc", "pageup": "pgup", "pagedown": "pgdn", "space": "space",
            "enter": "enter", "tab": "tab"}.get(key, format_key(key))


def pane_supports(pane_class: type, method: str | None) -> bool:
    """Whether the console layer offers ``method`` (so its prefix key is live)."""
    return method is None or callable(getattr(pane_class, method, None))


def available_prefix_commands(pane_class: type) -> list[PrefixCommand]:
    """The prefix commands the current ConsolePane can carry out."""
    return [c for c in PREFIX_COMMANDS if pane_supports(pane_class, c.needs)]


def find_prefix_command(key: str, character: str | None,
                        pane_class: type) -> PrefixCommand | None:
    """The command for a key pressed after the prefix (by key name or by character)."""
    for command in available_prefix_commands(pane_class):
        if key in command.keys or (character and character in command.keys):
            return command
    return None
