"""The MCP tab: servers from a private HOME's Claude and Codex files, masked env (Pilot)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from rich.text import Text
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.ui_harness import PaneHarness, fixed_clock, make_services
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.panes.mcp import McpPane
from tundra_tui.ui.services import Services

SECRET = "ghp_TOKEN-NEVER-ON-SCREEN"
WIDE = (250, 70)
NARROW = (80, 24)


@pytest.fixture
def seeded(
    town_dir: Path, private_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """~/.claude.json, ~/.codex/config.toml and a project .mcp.json; one binary on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "github-mcp"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    claude = {
        "numStartups": 7,
        "mcpServers": {
            "github": {
                "type": "stdio",
                "command": "github-mcp",
                "args": ["--stdio"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": SECRET},
            },
            "notion": {"type": "http", "url": "https://mcp.notion.com/mcp"},
        },
        "projects": {
            str(Town(town_dir).root): {
                "mcpServers": {"[bold]db[/bold]": {"command": "pg-mcp", "env": {"PGPASS": SECRET}}}
            }
        },
    }
    (private_home / ".claude.json").write_text(json.dumps(claude))
    (private_home / ".codex").mkdir()
    (private_home / ".codex" / "config.toml").write_text(
        "[mcp_servers.docs]\n"
        'command = "docs-mcp"\n'
        f'args = ["--token", "{SECRET}"]\n'
        f'env = {{ DOCS_KEY = "{SECRET}" }}\n'
    )
    (town_dir / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"evil\x1b[2J": {"command": "x\x07"}}})
    )
    return town_dir


@pytest.fixture
async def services(seeded: Path) -> AsyncIterator[Services]:
    town = Town(seeded)
    store = await open_store(town.db_path, clock=fixed_clock)
    try:
        yield make_services(town, store)
    finally:
        await store.close()


def harness(services: Services) -> PaneHarness:
    return PaneHarness(lambda s: McpPane(s, id="pane-mcp"), services)


async def settle(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(app: App[None]) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def table(app: App[None]) -> DataTable[Text]:
    return app.query_one("#mcp-table", DataTable)


def rows(app: App[None]) -> list[list[str]]:
    grid = table(app)
    return [[cell.plain for cell in grid.get_row_at(index)] for index in range(grid.row_count)]


async def test_wide_table_lists_every_server(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        columns = [str(column.label) for column in table(app).columns.values()]
        assert columns == ["runtime", "scope", "name", "command and args", "found", "env"]
        assert rows(app) == [
            ["claude", "local", "[bold]db[/bold]", "pg-mcp", "✗ missing", "PGPASS=••••"],
            ["claude", "project", "evil␛[2J", "x␇", "✗ missing", ""],
            [
                "claude",
                "user",
                "github",
                "github-mcp --stdio",
                "✓ found",
                "GITHUB_PERSONAL_ACCESS_TOKEN=••••",
            ],
            ["claude", "user", "notion", "https://mcp.notion.com/mcp", "· http", ""],
            ["codex", "user", "docs", "docs-mcp --token ••••", "✗ missing", "DOCS_KEY=••••"],
        ]
        summary = str(app.query_one("#mcp-summary", Static).render())
        assert summary == "5 MCP servers from 3 files · 3 binaries missing"
        text = screen_text(app)
        assert SECRET not in text
        assert "\x1b" not in text and "\x07" not in text
        assert "[bold]db[/bold]" in text


async def test_narrow_drops_args_and_env_and_fits(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        columns = [str(column.label) for column in table(app).columns.values()]
        assert columns == ["runtime", "scope", "name", "command", "found"]
        assert rows(app)[2] == ["claude", "user", "github", "github-mcp", "✓ found"]
        for line in screen_text(app).splitlines():
            assert len(line) <= 80
        assert SECRET not in screen_text(app)


async def test_enter_shows_details_with_env_names_masked(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        detail = app.query_one("#mcp-detail", Static)
        assert not detail.display
        await pilot.press("j", "j", "enter")
        await pilot.pause()
        assert detail.display
        shown = str(detail.render())
        assert "claude · user · github" in shown
        assert "command  github-mcp --stdio" in shown
        assert f"binary   ✓ {Path(services.town.root).parent / 'bin' / 'github-mcp'}" in shown
        assert "env      GITHUB_PERSONAL_ACCESS_TOKEN=••••" in shown
        assert "source   ~/.claude.json" in shown
        await pilot.press("j", "j")
        await pilot.pause()
        shown = str(detail.render())
        assert "codex · user · docs" in shown
        assert "--token ••••" in shown
        assert SECRET not in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        assert not detail.display


async def test_j_k_g_G_move_the_cursor(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        grid = table(app)
        await pilot.press("j", "j", "j")
        assert grid.cursor_row == 3
        await pilot.press("k")
        assert grid.cursor_row == 2
        await pilot.press("G")
        assert grid.cursor_row == 4
        await pilot.press("g")
        assert grid.cursor_row == 0


async def test_problems_are_listed_above_the_table(services: Services, private_home: Path) -> None:
    (private_home / ".codex" / "config.toml").write_text("[mcp_servers.docs\n")
    gemini = private_home / ".gemini"
    gemini.mkdir()
    (gemini / "settings.json").write_text('{"mcpServers": {"a\\u001b]0;pwned\\u0007": 5}}')
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        problems = app.query_one("#mcp-problems", Static)
        assert problems.display
        lines = str(problems.render()).splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("⚠ ~/.codex/config.toml: invalid TOML:")
        assert lines[1].startswith("⚠ ~/.gemini/settings.json: gemini server 'a")
        assert lines[1].endswith("': expected an object, got a number")
        assert "\x1b" not in lines[1] and "\x07" not in lines[1]
        assert [row[0] for row in rows(app)] == ["claude"] * 4  # the rest still load


async def test_search_filters_and_reload_keeps_the_selection(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        app.pane.search("codex")
        await pilot.pause()
        assert [row[2] for row in rows(app)] == ["docs"]
        app.pane.search("")
        await pilot.pause()
        assert rows(app)[table(app).cursor_row][2] == "docs"  # kept through the search
        await pilot.press("g", "j", "j")
        await app.pane.reload()
        await pilot.pause()
        assert rows(app)[table(app).cursor_row][2] == "github"


async def test_no_servers_says_so(town_dir: Path) -> None:
    town = Town(town_dir)
    store = await open_store(town.db_path, clock=fixed_clock)
    try:
        app = harness(make_services(town, store))
        async with app.run_test(size=NARROW) as pilot:
            await settle(pilot)
            summary = str(app.query_one("#mcp-summary", Static).render())
            assert summary.startswith("0 MCP servers configured")
            await pilot.press("enter", "j")  # nothing selected: nothing breaks
            assert table(app).row_count == 0
    finally:
        await store.close()


# ---- secrets in arguments, URLs and headers (F12) -------------------------------------

GITHUB = "ghp_" + "G" * 36
AWS = "AKIA" + "W" * 16
SLACK_PATH = "T0000SLACK/B0000SLACK/" + "S" * 24
BEARER = "bearer-token-" + "b" * 20
PLAIN = "plain-secret-value-7"
"""No well-known shape: only the flag before it says it is a secret."""
HOSTILE_SECRETS = (GITHUB, AWS, SLACK_PATH, "S" * 24, BEARER, PLAIN)


@pytest.fixture
def hostile(
    town_dir: Path, private_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A ~/.claude.json whose servers pass every kind of secret as an argument or a URL."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    servers = {
        "positional": {"command": "gh-mcp", "args": ["serve", GITHUB, AWS]},
        "flags": {"command": "x-mcp", "args": ["--token", PLAIN, f"--api-key={PLAIN}"]},
        "bearer": {
            "command": "curl-mcp",
            "args": ["-H", f"Authorization: Bearer {BEARER}", f"Bearer {BEARER}"],
        },
        "webhook": {
            "command": "slack-mcp",
            "args": ["--post", f"https://hooks.slack.com/services/{SLACK_PATH}"],
        },
        "remote": {
            "type": "http",
            "url": f"https://hooks.slack.com/services/{SLACK_PATH}?key={PLAIN}",
            "headers": {"Authorization": f"Bearer {BEARER}"},
        },
    }
    (private_home / ".claude.json").write_text(json.dumps({"mcpServers": servers}))
    return town_dir


@pytest.fixture
async def hostile_services(hostile: Path) -> AsyncIterator[Services]:
    town = Town(hostile)
    store = await open_store(town.db_path, clock=fixed_clock)
    try:
        yield make_services(town, store)
    finally:
        await store.close()


def assert_no_secret(text: str) -> None:
    for secret in HOSTILE_SECRETS:
        assert secret not in text


async def test_secrets_in_arguments_urls_and_headers_never_reach_the_screen(
    hostile_services: Services,
) -> None:
    app = harness(hostile_services)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert [row[3] for row in rows(app)] == [
            "curl-mcp -H 'Authorization: ••••' 'Bearer [REDACTED:bearer]'",
            "x-mcp --token •••• --api-key=••••",
            "gh-mcp serve [REDACTED:github] [REDACTED:aws]",
            "https://[REDACTED:slack-webhook]?key=••••",
            "slack-mcp --post https://[REDACTED:slack-webhook]",
        ]
        assert_no_secret(screen_text(app))
        await pilot.press("enter")
        details = []
        for _ in range(table(app).row_count):
            await pilot.pause()
            details.append(str(app.query_one("#mcp-detail", Static).render()))
            assert_no_secret(screen_text(app))
            await pilot.press("j")
        assert_no_secret("\n".join(details))
        assert "headers  Authorization: ••••" in details[3]


def test_hostile_servers_snapshot(hostile: Path, snap_compare: Any) -> None:
    """The table and the detail of a server whose header and arguments carry tokens."""
    services = make_services(Town(hostile), cast(Store, None))

    async def open_detail(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(harness(services), run_before=open_detail, terminal_size=(120, 24))
