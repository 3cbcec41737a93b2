"""Codex's hooks through a real daemon: the launch wires them only where the version has them.

The agent is a script named `codex` (tests/helpers/codex_hooks_agent.py) that plays
Codex CLI 0.169.0's hook channel with its recorded payloads, and runs a hook only
when our `-c` overrides carry the hash Codex would check. One pending request with
the exact command, answered through the hook's reply; `at detect --explain` names
the hook. A Codex older than the hooks we checked gets none: the screen decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import agent_state, at, fake_cli_town, pending_approvals, wait_for

HELPER = Path(__file__).parent / "helpers" / "codex_hooks_agent.py"


@pytest.fixture
def codex_town(request: pytest.FixtureRequest) -> Iterator[Path]:
    with fake_cli_town("codex", "cx", HELPER, getattr(request, "param", "0.169.0")) as root:
        yield root


def explain(town: Path) -> dict[str, object]:
    return dict(json.loads(at(town, "detect", "--explain", "cx", "--json").stdout))


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
def test_codex_asks_through_its_hook_and_hears_the_answer(codex_town: Path, approve: bool) -> None:
    town = codex_town
    at(town, "send", "cx", "RUN: touch hooked.txt")
    wait_for(lambda: len(pending_approvals(town)) == 1)
    (request,) = pending_approvals(town)
    assert (request["source"], request["tool"]) == ("hook", "Bash")
    assert request["subject"] == "touch hooked.txt"
    assert request["evidence"]["rule"] == "codex.hook.permission_request"
    told = explain(town)
    assert told["state"] == "awaiting_approval"
    assert (told["source"], told["rule"]) == ("hook", "codex.hook.permission_request")
    assert (told["channel"], told["versions"]) == ("Codex hooks", "codex 0.135.0-0.169.0 hooks")
    text = at(town, "detect", "--explain", "cx").stdout
    assert "decided by a hook: codex.hook.permission_request (codex 0.135.0-0.169.0 hooks)" in text

    at(town, "approve" if approve else "deny", str(request["id"]))
    wait_for(
        lambda: "Ask Codex" in at(town, "peek", "cx").stdout and agent_state(town, "cx") == "idle"
    )
    assert (town / "hooked.txt").exists() is approve
    assert pending_approvals(town) == []
    events = json.loads(at(town, "events", "--agent", "cx", "--json", "-n", "200").stdout)
    hooks = {e["data"].get("event") for e in events if e["kind"] == "agent.hook"}
    assert {"SessionStart", "UserPromptSubmit", "Stop"} <= hooks
    assert ("PostToolUse" in hooks) is approve


@pytest.mark.parametrize("codex_town", ["0.134.9"], indirect=True)
def test_an_older_codex_gets_no_hooks_and_the_screen_decides(codex_town: Path) -> None:
    told = explain(codex_town)
    assert told["channel"] == "Codex notify (turn ends only)"
    assert told["source"] == "screen"
    events = json.loads(at(codex_town, "events", "--agent", "cx", "--json", "-n", "50").stdout)
    assert not [e for e in events if e["kind"] == "agent.hook"]


def test_a_hook_request_outlasts_a_screen_that_reads_idle(codex_town: Path) -> None:
    """Codex shows no prompt while its hook waits; a screen that reads idle meanwhile must
    not expire the request (the hook would hear "no" with nobody asked)."""
    town = codex_town
    at(town, "send", "cx", "QUIET RUN: touch quiet.txt")
    wait_for(lambda: len(pending_approvals(town)) == 1)

    def idle_since_asked() -> bool:
        events = json.loads(at(town, "events", "--agent", "cx", "--json", "-n", "50").stdout)
        kinds = [(e["kind"], e["data"].get("to")) for e in events]  # oldest first
        asked = kinds.index(("approval.requested", None))
        return ("agent.state", "idle") in kinds[asked:]

    wait_for(idle_since_asked)  # the idle screen was read while the hook waited
    wait_for(lambda: agent_state(town, "cx") == "awaiting_approval")
    (request,) = pending_approvals(town)
    at(town, "approve", str(request["id"]))
    wait_for(lambda: (town / "quiet.txt").exists())
