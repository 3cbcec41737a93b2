"""The Config tab: layers side by side, the winner marked, edits that keep comments (Pilot)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.ui_harness import PaneHarness, fixed_clock, make_services
from tundra_tui.config import global_config_path, show_value
from tundra_tui.daemon.protocol import ChangedEvent
from tundra_tui.store import open_store
from tundra_tui.town import Town
from tundra_tui.ui.modals.config_edit import ConfigEditModal
from tundra_tui.ui.panes.config import ConfigPane
from tundra_tui.ui.services import Services

SECRET = "sk-ant-NEVER-ON-SCREEN"
TOKEN = "ghp_" + "N3v3rOnScreen" * 3
WIDE = (250, 70)
NARROW = (80, 24)


@pytest.fixture
async def services(town_dir: Path) -> AsyncIterator[Services]:
    """A town whose global and local layers both set general.max_agents (local wins)."""
    town = Town(town_dir)
    path = global_config_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        "[general]\nmax_agents = 12\n\n"
        f'[runtimes.claude]\nenv = {{ ANTHROPIC_API_KEY = "{SECRET}" }}\n'
        f'\n[runtimes.codex]\nargs = ["--token", "{TOKEN}"]\n'
    )
    town.local_config_path.write_text(
        '[general]\nmax_agents = 4\n\n[ui.keys]\n"[bold]boom[/bold]" = "ctrl+b"\n'
    )
    store = await open_store(town.db_path, clock=fixed_clock)
    try:
        yield make_services(town, store)
    finally:
        await store.close()


def harness(services: Services) -> PaneHarness:
    return PaneHarness(lambda s: ConfigPane(s, id="pane-config"), services)


async def settle(pilot: Pilot[None]) -> None:
    """Let the load (a worker reading the files in a thread) finish and the table redraw."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(app: App[None]) -> str:
    """Every character on the active screen, row by row."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def table(app: App[None]) -> DataTable[Text]:
    return app.query_one("#config-table", DataTable)


def row_cells(app: App[None], key: str) -> list[str]:
    return [cell.plain for cell in table(app).get_row(key)]


async def go_to(pilot: Pilot[None], key: str) -> None:
    grid = table(pilot.app)
    grid.move_cursor(row=grid.get_row_index(key), animate=False)
    await pilot.pause()


async def test_layers_side_by_side_with_the_winner_marked(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.pause()
        columns = [str(column.label) for column in table(app).columns.values()]
        assert columns == ["key", "default", "global", "project", "local"]
        assert row_cells(app, "general.max_agents") == [
            "general.max_agents",
            "20",
            "12",
            "·",
            "● 4",
        ]
        winner = table(app).get_row("general.max_agents")[4]
        assert "bold" in str(winner.style)
        assert row_cells(app, "general.default_lane")[3] == '● "standard"'
        # Agent tables and runtime keys are rows too.
        assert row_cells(app, "agents.mayor.runtime")[3] == '● "claude"'
        assert row_cells(app, "runtimes.codex.command")[1] == '● "codex"'


async def test_narrow_shows_the_winner_and_its_layer_and_the_detail_lists_all(
    services: Services,
) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await go_to(pilot, "general.max_agents")
        await pilot.pause()
        assert row_cells(app, "general.max_agents") == ["general.max_agents", "● 4", "local"]
        detail = str(app.query_one("#config-detail", Static).render())
        assert "● local    4" in detail
        assert "global   12   ~/.auto-tundra/config.toml" in detail
        assert ".tundra/local.toml" in detail
        for line in screen_text(app).splitlines():
            assert len(line) <= 80


async def test_env_tables_are_masked_on_screen(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert row_cells(app, "runtimes.claude.env")[2] == "● {ANTHROPIC_API_KEY = ••••}"
        await go_to(pilot, "runtimes.claude.env")
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ConfigEditModal)
        assert app.screen.query_one("#config-edit-value", Input).value == ""
        assert SECRET not in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert SECRET not in screen_text(app)


async def test_hostile_key_names_show_literally(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.pause()
        assert 'ui.keys."[bold]boom[/bold]"' in screen_text(app)


async def test_j_k_g_G_move_the_cursor(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        grid = table(app)
        assert grid.cursor_row == 0
        await pilot.press("j", "j")
        assert grid.cursor_row == 2
        await pilot.press("k")
        assert grid.cursor_row == 1
        await pilot.press("G")
        assert grid.cursor_row == grid.row_count - 1
        await pilot.press("g")
        assert grid.cursor_row == 0


async def test_edit_in_project_keeps_comments(services: Services) -> None:
    app = harness(services)
    path = services.town.config_path
    comment = "# Shown in the title bar; defaults to the directory's name."
    assert comment in path.read_text()
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await go_to(pilot, "general.default_priority")
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfigEditModal)
        assert modal.chosen == "project"
        value = modal.query_one("#config-edit-value", Input)
        assert value.value == "2"
        value.value = ""
        await pilot.press("3", "enter")
        await settle(pilot)
        await pilot.pause()
        assert not isinstance(app.screen, ConfigEditModal)
        assert row_cells(app, "general.default_priority")[1] == "● 3"
    text = path.read_text()
    assert "default_priority = 3" in text
    assert comment in text
    assert ChangedEvent(what="config") in app.posted
    assert services.config.get("general.default_priority") == 3


async def test_enter_opens_the_editor_and_up_chooses_another_layer(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await go_to(pilot, "ui.max_fps")
        await pilot.press("enter")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfigEditModal)
        assert modal.chosen == "project"  # the default layer wins: edits go to the project
        await pilot.press("up")
        assert modal.chosen == "global"
        modal.query_one("#config-edit-value", Input).value = "45"
        await pilot.press("ctrl+s")
        await settle(pilot)
        said = [n.message for n in app._notifications]
        assert any("applies when at tui starts again" in m for m in said), said
    assert "max_fps = 45" in global_config_path().read_text()
    assert "max_fps" not in services.town.config_path.read_text()


async def test_a_bad_value_is_refused_in_the_modal_and_nothing_is_written(
    services: Services,
) -> None:
    app = harness(services)
    before = services.town.config_path.read_bytes()
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await go_to(pilot, "general.default_priority")
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfigEditModal)
        modal.query_one("#config-edit-value", Input).value = "9"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.pause()
        assert app.screen is modal
        error = str(modal.query_one("#config-edit-error", Static).render())
        assert "expected integer between 0 and 4, got 9" in error
        assert "\n" not in error
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConfigEditModal)
    assert services.town.config_path.read_bytes() == before
    assert not any(isinstance(m, ChangedEvent) for m in app.posted)


async def test_unset_asks_for_the_layer_and_a_yes(services: Services) -> None:
    app = harness(services)
    local = services.town.local_config_path
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await go_to(pilot, "general.max_agents")
        await pilot.press("x")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfigEditModal)
        assert list(modal.choices) == ["global", "local"]  # only the files that set it
        assert modal.chosen == "local"
        assert "max_agents" in local.read_text()  # nothing before the yes
        await pilot.press("y")
        await settle(pilot)
        await pilot.pause()
        assert row_cells(app, "general.max_agents") == ["general.max_agents", "● 12", "global"]
    assert "max_agents" not in local.read_text()
    assert "[ui.keys]" in local.read_text()
    assert ChangedEvent(what="config") in app.posted


async def test_unset_of_a_builtin_default_writes_nothing(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await go_to(pilot, "ui.max_fps")
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfigEditModal)


async def test_add_sets_a_key_no_layer_sets(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfigEditModal)
        await pilot.press(*"runtimes.claude.args")
        hint = str(modal.query_one("#config-edit-hint", Static).render())
        assert hint == "expects list of strings"
        await pilot.press("enter")
        assert app.focused is modal.query_one("#config-edit-value", Input)
        await pilot.press(*'["--verbose"]', "enter")
        await settle(pilot)
        await pilot.pause()
        assert row_cells(app, "runtimes.claude.args")[1] == '● ["--verbose"]'
        assert table(app).get_row_index("runtimes.claude.args") == table(app).cursor_row
    assert 'args = ["--verbose"]' in services.town.config_path.read_text()


async def test_a_malformed_file_is_one_line_at_the_top(services: Services) -> None:
    services.town.local_config_path.write_text("[general\nmax_agents = 4\n")
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await pilot.pause()
        error = app.query_one("#config-error", Static)
        assert error.has_class("-shown")
        line = str(error.render())
        assert line.startswith("✗ ") and "local.toml:1:" in line
        assert "\n" not in line
        assert table(app).row_count == 0
        await pilot.press("e")  # nothing to edit, and no crash
        await pilot.pause()
        assert not isinstance(app.screen, ConfigEditModal)
        # Fixed on disk, then `r` (the app calls reload) shows the table again.
        services.town.local_config_path.write_text("[general]\nmax_agents = 4\n")
        await app.pane.reload()
        await settle(pilot)
        await pilot.pause()
        assert not error.has_class("-shown")
        assert table(app).row_count > 0


async def test_search_filters_keys(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        app.pane.search("max_p")
        await pilot.pause()
        keys = [str(row.key.value) for row in table(app).ordered_rows]
        assert keys == ["general.max_ptys", "orchestra.max_polecats"]
        app.pane.search("")
        await pilot.pause()
        assert table(app).row_count > 3


def test_show_value_masks_tables_and_keeps_toml_spelling() -> None:
    assert show_value(20) == "20"
    assert show_value("20") == '"20"'
    assert show_value(["a", "b"]) == '["a", "b"]'
    assert show_value(True) == "true"
    assert show_value({"API_KEY": SECRET, "a b": "x"}) == '{API_KEY = ••••, "a b" = ••••}'


async def test_secrets_in_arguments_are_masked_on_screen(services: Services) -> None:
    """F12: a token passed as an argument showed in clear in the Config tab."""
    app = harness(services)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert TOKEN not in row_cells(app, "runtimes.codex.args")[2]
        await go_to(pilot, "runtimes.codex.args")
        assert TOKEN not in screen_text(app)
