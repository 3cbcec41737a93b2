"""F8: an agent added to tundra.toml after the daemon started is known to it at once."""

from __future__ import annotations

import json
from pathlib import Path

from at_cli import DEMO_ARGS, at, daemon_town, wait_for


def _rows(town: Path) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in json.loads(at(town, "agent", "list", "--json").stdout)}


def test_an_agent_added_while_the_daemon_runs_shows_its_real_state() -> None:
    with daemon_town(demo_agent=False) as town:
        with (town / "tundra.toml").open("a") as config:
            config.write(DEMO_ARGS)
        at(town, "daemon", "start")
        at(town, "agent", "add", "late", "--runtime", "demo")
        at(town, "agent", "start", "late")
        # It was shown `stopped` forever, with no state events: its row did not exist.
        wait_for(lambda: _rows(town)["late"]["state"] == "idle")
        events = json.loads(at(town, "events", "--agent", "late", "--json").stdout)
        assert "agent.state" in {e["kind"] for e in events}
        at(town, "agent", "stop", "late")
        wait_for(lambda: _rows(town)["late"]["state"] == "stopped")


def _sessions(town: Path) -> set[str]:
    return {row["name"] for row in json.loads(at(town, "session", "list", "--json").stdout)}


def test_a_removed_agent_leaves_the_daemons_lists() -> None:
    """A removed agent lingered in `at session list`, the control room's count and rows."""
    with daemon_town() as town:
        at(town, "agent", "add", "d2", "--runtime", "demo")
        for name in ("d1", "d2"):
            at(town, "agent", "start", name)
        wait_for(lambda: {"d1", "d2"} <= _sessions(town))
        at(town, "agent", "stop", "d2")
        at(town, "agent", "remove", "d2")
        wait_for(lambda: "d2" not in _sessions(town))
        assert "d2" not in _rows(town) and "d1" in _sessions(town)
