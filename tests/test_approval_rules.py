"""Always-allow rules through the real `at`, a real daemon and real asker agents
(tests/helpers/asker_agent.py): a rule answers only its own agent's exact command, the
deny-list beats any rule, a revoked rule stops applying, and only the operator sets rules.

One town for the module, two askers; each test leaves nothing pending and no live rule.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from at_cli import agent_state, asker_config, at, daemon_town, pending_approvals, wait_for

from tundra_tui.domain.firewall import words_digest

AT_INSIDE = f"{sys.executable} -m tundra_tui"
ASKERS = ("a1", "a2")


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(asker_config("a1"))
            config.write('\n[agents.a2]\nrole = "crew"\nruntime = "custom"\n')
        for name in ASKERS:
            at(root, "agent", "start", name)
        wait_for(lambda: all(agent_state(root, n) == "idle" for n in ASKERS))
        yield root


@pytest.fixture(autouse=True)
def clean(town: Path) -> Iterator[None]:
    yield
    for waiting in pending_approvals(town):
        at(town, "deny", str(waiting["id"]), check=False)
    for rule in json.loads(at(town, "rules", "--json").stdout):
        at(town, "rules", "revoke", str(rule["id"]))
    wait_for(lambda: all(agent_state(town, n) == "idle" for n in ASKERS))


def ask(town: Path, agent: str, command: str) -> dict[str, Any]:
    """`agent` asks to run `command`; its request, once listed."""
    at(town, "send", agent, f"ask {command}")
    found: list[dict[str, Any]] = []

    def listed() -> bool:
        found[:] = [a for a in pending_approvals(town) if a["agent"] == agent]
        return bool(found)

    wait_for(listed)
    return found[0]


def ran(town: Path, name: str) -> int:
    """How many times the askers ran `echo x >> NAME` (each approval runs it once)."""
    path = town / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def approvers(town: Path) -> list[str]:
    """Who approved each request, as the audit trail says."""
    rows = json.loads(at(town, "events", "--kind", "approval.approved", "--json").stdout)
    return [str(row["actor"]) for row in rows]


def test_a_rule_answers_only_its_own_agents_exact_command(town: Path) -> None:
    first = ask(town, "a1", "echo x >> ruled.log")
    assert first["denied_shape"] == ""
    added = json.loads(at(town, "rules", "add", str(first["id"]), "--json").stdout)
    assert (added["agent"], added["subject"]) == ("a1", first["subject"])
    wait_for(lambda: ran(town, "ruled.log") == 1)  # the request it was made from: approved
    wait_for(lambda: agent_state(town, "a1") == "idle")

    at(town, "send", "a1", "ask echo x >> ruled.log")  # the same words again: the rule
    wait_for(lambda: ran(town, "ruled.log") == 2)
    wait_for(lambda: agent_state(town, "a1") == "idle")
    wait_for(lambda: f"rule {added['id']}" in approvers(town))  # the audit trail says who

    other = ask(town, "a1", "echo x >> other.log")  # the same agent, another command
    stranger = ask(town, "a2", "echo x >> ruled.log")  # another agent, the same command
    assert stranger["subject"] == first["subject"]
    assert {a["id"] for a in pending_approvals(town)} == {other["id"], stranger["id"]}
    at(town, "deny", str(other["id"]))
    at(town, "deny", str(stranger["id"]))
    assert ran(town, "ruled.log") == 2 and ran(town, "other.log") == 0


def test_a_revoked_rule_no_longer_applies(town: Path) -> None:
    first = ask(town, "a1", "echo x >> revoked.log")
    added = json.loads(at(town, "rules", "add", str(first["id"]), "--json").stdout)
    wait_for(lambda: ran(town, "revoked.log") == 1)
    wait_for(lambda: agent_state(town, "a1") == "idle")
    revoked = at(town, "rules", "revoke", str(added["id"]))
    assert "revoked" in revoked.stdout
    assert json.loads(at(town, "rules", "--json").stdout) == []
    again = ask(town, "a1", "echo x >> revoked.log")
    assert again["subject"] == first["subject"]
    at(town, "deny", str(again["id"]))
    assert ran(town, "revoked.log") == 1
    twice = at(town, "rules", "revoke", str(added["id"]), check=False)
    assert twice.returncode != 0 and "already revoked" in twice.stderr


def test_the_deny_list_beats_any_rule(town: Path) -> None:
    """A force push is refused as a rule; a rule for it written into the store anyway
    (an older build, a hand edit) is never applied: the request waits, flagged."""
    command = "git push --force origin main"
    first = ask(town, "a1", command)
    assert "force" in first["denied_shape"]
    refused = at(town, "rules", "add", str(first["id"]), check=False)
    assert refused.returncode != 0 and "never always-allowed" in refused.stderr
    assert json.loads(at(town, "rules", "--json").stdout) == []
    assert [a["id"] for a in pending_approvals(town)] == [first["id"]]
    at(town, "deny", str(first["id"]))
    wait_for(lambda: agent_state(town, "a1") == "idle")

    conn = sqlite3.connect(town / ".tundra" / "town.db")
    with conn:
        conn.execute(
            "INSERT INTO approval_rules (agent, tool, subject, digest, created_at, created_by) "
            "VALUES ('a1', ?, ?, ?, '2026-01-01T00:00:00Z', 'operator')",
            (first["tool"], first["subject"], words_digest(first["tool"], first["subject"])),
        )
    conn.close()
    assert len(json.loads(at(town, "rules", "--json").stdout)) == 1, "the rule is live"
    again = ask(town, "a1", command)
    assert again["subject"] == first["subject"] and again["denied_shape"]
    assert [a["id"] for a in pending_approvals(town)] == [again["id"]], "it waits for you"
    at(town, "deny", str(again["id"]))
    assert f"EXECUTED {command}" not in at(town, "peek", "a1").stdout


def test_a_rule_cannot_be_added_from_inside_an_agent(town: Path) -> None:
    waiting = ask(town, "a2", "echo x >> forged.log")
    (town / "forge.sh").write_text(
        f"{AT_INSIDE} rules add {waiting['id']} > forge.out 2>&1\necho $? > forge.rc\n"
    )
    at(town, "send", "a1", "bg sh forge.sh")
    wait_for((town / "forge.rc").exists)
    assert (town / "forge.rc").read_text().strip() != "0"
    assert "set by the operator" in (town / "forge.out").read_text()
    assert json.loads(at(town, "rules", "--json").stdout) == []
    assert [a["id"] for a in pending_approvals(town)] == [waiting["id"]]
    at(town, "deny", str(waiting["id"]))
    assert ran(town, "forged.log") == 0
