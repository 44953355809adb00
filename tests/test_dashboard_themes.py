"""Themes: the bundled files, the loader's errors, switching at runtime (palette and :theme),
remembering the choice in config.toml, user theme files, and broken files that never crash."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.command import CommandPalette

from glidex_tui.app import GlidexApp
from glidex_tui.screens.prompt import PromptScreen
from glidex_tui.themes import (
    BUNDLED_THEMES_DIR,
    DEFAULT_THEME,
    ThemeFileError,
    load_theme_dir,
    load_theme_file,
)
from tests.test_dashboard_helpers import type_text, wait_until

REPO = Path(__file__).resolve().parent.parent
BUNDLED = {"glidex-dark", "glidex-light", "glidex-high-contrast"}


def test_three_bundled_themes_ship_in_the_package_and_the_top_level_folder():
    loaded = load_theme_dir(BUNDLED_THEMES_DIR)
    assert not loaded.errors
    themes = {t.name: t for t in loaded.themes}
    assert set(themes) == BUNDLED
    assert themes["glidex-dark"].dark and themes["glidex-high-contrast"].dark
    assert not themes["glidex-light"].dark
    for name in BUNDLED:  # top-level themes/ shows the same files
        assert (REPO / "themes" / f"{name}.toml").read_bytes() == (
            BUNDLED_THEMES_DIR / f"{name}.toml").read_bytes()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "themes/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["glidex_tui"]
    assert any(r.startswith("pytest-textual-snapshot")
               for r in pyproject["project"]["optional-dependencies"]["test"])


@pytest.mark.parametrize(("content", "problem"), [
    ("name = [", "not valid TOML"),
    ('primary = "#12345"', "primary = '#12345' is not a colour"),
    ('secondary = "red"', "'primary' is required"),
    ('primary = "red"\ncolour = "blue"', "unknown key(s) colour"),
    ('primary = "red"\ndark = "yes"', "dark must be true or false"),
    ('primary = "red"\ntext_alpha = 3', "text_alpha must be a number between 0 and 1"),
    ('primary = "red"\nname = "Bad Name"', "name 'Bad Name'"),
    ('primary = "red"\n[variables]\nborder = "nope"', "variable 'border': 'nope' is not a colour"),
    ('primary = "red"\n[variables]\nblock-cursor-text-style = "loud"', "not a text style"),
    ('primary = "red"\nvariables = 3', "[variables] must be a table"),
])
def test_a_broken_theme_file_is_explained(tmp_path, content, problem):
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(ThemeFileError) as caught:
        load_theme_file(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_a_theme_file_takes_its_name_from_the_file_by_default(tmp_path):
    (tmp_path / "ocean.toml").write_text('primary = "#0077be"\n[variables]\nborder = "$primary"')
    theme = load_theme_file(tmp_path / "ocean.toml")
    assert theme.name == "ocean" and theme.variables == {"border": "$primary"}


def saved_theme(home: Path) -> str | None:
    return tomllib.loads((home / "config.toml").read_text()).get("theme")


async def test_theme_switched_from_the_palette_is_remembered(home):
    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.theme == DEFAULT_THEME
        assert set(app.available_themes) >= BUNDLED
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await type_text(pilot, "theme")
        await pilot.pause(0.3)
        await pilot.press("enter")  # "Theme: change the current theme" -> the theme list
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.pause(0.3)
        await type_text(pilot, "glidex-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.theme == "glidex-light", what="light theme")
        await wait_until(pilot, lambda: (home / "config.toml").exists())
        assert saved_theme(home) == "glidex-light"
        await pilot.press("q")

    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == "glidex-light"
        await pilot.press("colon")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one("#prompt-input").value = "theme glidex-high-contrast"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.theme == "glidex-high-contrast")
        await wait_until(pilot, lambda: saved_theme(home) == "glidex-high-contrast")
        settings = tomllib.loads((home / "config.toml").read_text())
        assert settings["theme"] == "glidex-high-contrast"


async def test_user_theme_files_load_and_broken_ones_are_reported(home):
    themes = home / "themes"
    themes.mkdir(parents=True)
    (themes / "ocean.toml").write_text('name = "ocean"\nprimary = "#0077be"\n'
                                       'background = "#001b2e"\n')
    (themes / "broken.toml").write_text('primary = "not-a-colour"\n')
    (home / "config.toml").write_text('theme = "ocean"\nstop_timeout = 5.0\n')
    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == "ocean" and "ocean" in app.available_themes
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and "broken.toml" in errors[0].message
        assert "not a colour" in errors[0].message
        await pilot.press("colon")
        app.screen.query_one("#prompt-input").value = "theme glidex-dark"
        await pilot.press("enter")
        await wait_until(pilot, lambda: saved_theme(home) == "glidex-dark")
    assert tomllib.loads((home / "config.toml").read_text())["stop_timeout"] == 5.0


async def test_an_unknown_theme_in_config_falls_back_to_the_default(home):
    home.mkdir(parents=True)
    (home / "config.toml").write_text('theme = "gone"\n')
    app = GlidexApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
        assert any("'gone'" in n.message for n in app._notifications)
        await pilot.press("colon")
        app.screen.query_one("#prompt-input").value = "theme nope"
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
        assert any("No theme 'nope'" in n.message for n in app._notifications)
