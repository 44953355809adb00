"""Theme files: TOML in, :class:`textual.theme.Theme` out, with errors a person can act on.

Why TOML files instead of Python: users drop a file into ``~/.glidex/themes/`` (GLIDEX_HOME)
without writing code, and the three bundled themes (``glidex_tui/themes/``, shipped as package
data and linked from the repository's top-level ``themes/``) are written the same way, so they
double as examples. A theme file holds the fields of a Textual ``Theme`` (``primary``,
``background``, ``dark``, ...) and an optional ``[variables]`` table of CSS variable overrides.

Every value is checked here, before Textual sees it: a broken file must become one clear
notification naming the file, never a crash when the theme is applied.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

BUNDLED_THEMES_DIR = Path(__file__).with_name("themes")
DEFAULT_THEME = "glidex-dark"
COLOUR_FIELDS = ("primary", "secondary", "accent", "foreground", "background", "surface",
                 "panel", "boost", "success", "warning", "error")
NUMBER_FIELDS = ("luminosity_spread", "text_alpha")
OTHER_FIELDS = ("name", "dark", "ansi", "variables")
KNOWN_FIELDS = frozenset(COLOUR_FIELDS + NUMBER_FIELDS + OTHER_FIELDS)
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_TEXT_STYLES = {"bold", "italic", "underline", "reverse", "strike", "dim", "blink", "none",
                "not", "b", "i", "u"}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the problem."""


@dataclass
class LoadedThemes:
    """What a themes folder gave: the usable themes, and one message per broken file."""

    themes: list[Theme] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _check_variable(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"variable {name!r} must be a string, got {value!r}")
    if name.endswith("text-style"):
        words = value.split()
        if not words or not set(words) <= _TEXT_STYLES:
            raise ValueError(f"variable {name!r}: {value!r} is not a text style "
                             f"(use words like bold, italic, underline, reverse, none)")
    elif not value.startswith("$"):
        try:
            Color.parse(value)
        except ColorParseError:
            raise ValueError(f"variable {name!r}: {value!r} is not a colour") from None
    return value


def theme_from_dict(data: dict, default_name: str) -> Theme:
    """Build a Theme from a parsed theme file; raises ValueError saying what is wrong."""
    unknown = sorted(set(data) - KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; "
                         f"valid keys: {', '.join(sorted(KNOWN_FIELDS))}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"name {name!r} must be 1-63 characters of a-z, 0-9, '.', '_', '-'")
    if "primary" not in data:
        raise ValueError("'primary' is required (the main colour, e.g. \"#3a96dd\")")
    kwargs: dict = {"name": name}
    for key in COLOUR_FIELDS:
        if key in data:
            value = data[key]
            try:
                if not isinstance(value, str):
                    raise ColorParseError(str(value))
                Color.parse(value)
            except ColorParseError:
                raise ValueError(f"{key} = {value!r} is not a colour "
                                 f"(use \"#rrggbb\", \"rgb(r,g,b)\" or a colour name)") from None
            kwargs[key] = value
    for key in NUMBER_FIELDS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 <= value <= 1):
                raise ValueError(f"{key} must be a number between 0 and 1, got {value!r}")
            kwargs[key] = float(value)
    for key in ("dark", "ansi"):
        if key in data:
            if not isinstance(data[key], bool):
                raise ValueError(f"{key} must be true or false, got {data[key]!r}")
            kwargs[key] = data[key]
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError("[variables] must be a table of name = \"value\"")
    kwargs["variables"] = {str(k): _check_variable(str(k), v) for k, v in variables.items()}
    theme = Theme(**kwargs)
    try:
        theme.to_color_system().generate()  # the same work Textual does when applying it
    except Exception as exc:  # noqa: BLE001 - any failure here is the file's fault
        raise ValueError(f"Textual cannot use it: {exc}") from None
    return theme


def load_theme_file(path: Path) -> Theme:
    """Read one theme file; raises ThemeFileError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"{path}: not valid TOML ({exc})") from None
    try:
        return theme_from_dict(data, default_name=path.stem)
    except ValueError as exc:
        raise ThemeFileError(f"{path}: {exc}") from None


def load_theme_dir(folder: Path) -> LoadedThemes:
    """Every ``*.toml`` theme in ``folder`` (sorted by file name); a missing folder is empty."""
    loaded = LoadedThemes()
    try:
        files = sorted(folder.glob("*.toml"))
    except OSError:
        return loaded
    for path in files:
        try:
            loaded.themes.append(load_theme_file(path))
        except ThemeFileError as exc:
            loaded.errors.append(str(exc))
    return loaded


def user_themes_dir(home: Path) -> Path:
    """Where a user's own theme files live: ``$GLIDEX_HOME/themes`` (``~/.glidex/themes``)."""
    return home / "themes"


def load_all_themes(home: Path) -> LoadedThemes:
    """The bundled themes, then the user's (a user theme may replace a bundled one by name)."""
    bundled = load_theme_dir(BUNDLED_THEMES_DIR)
    user = load_theme_dir(user_themes_dir(home))
    return LoadedThemes(bundled.themes + user.themes, bundled.errors + user.errors)
