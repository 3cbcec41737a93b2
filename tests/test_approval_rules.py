"""Always-allow rules against a real daemon and real asker agents (tests/helpers/
asker_agent.py): a rule answers only its own agent's exact command until it is revoked,
the deny-list beats any rule, and only the operator sets rules.

One town for the module, two askers. The daemon is asked in-process (a `DaemonClient` per
look: no Python start per poll); `at rules` itself is run where the CLI is what is tested.
Each test leaves nothing pending and no live rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from at_cli import asker_config, at, daemon_town, wait_for

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import (
    Agents,
    ApprovalInfo,
    Approvals,
    Deny,
    Request,
    RuleAdd,
    RuleInfo,
    RuleRevoke,
    Rules,
    SendText,
)
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.firewall import words_digest
from tundra_tui.town import find_town

AT_INSIDE = f"{sys.executable} -m tundra_tui"
ASKERS = ("a1", "a2")
HOOKED = Path(__file__).parent / "helpers" / "hooked_agent.py"


def call(town: Path, request: Request) -> Any:
    """One request to the town's daemon, as the operator (this test process)."""

    async def once() -> Any:
        client = await DaemonClient.connect(find_town(town))
        try:
            return await client.call(request)
        finally:
            await client.close()

    return asyncio.run(once())


def pending(town: Path) -> list[ApprovalInfo]:
    return list(call(town, Approvals()).approvals)


def rules(town: Path) -> list[RuleInfo]:
    return list(call(town, Rules()).rules)


def idle(town: Path) -> bool:
    return all(row.state == "idle" for row in call(town, Agents()).agents)


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(asker_config("a1"))
            config.write('\n[agents.a2]\nrole = "crew"\nruntime = "custom"\n')
            config.write(
                '\n[agents.hk]\nrole = "crew"\nruntime = "demo"\n'
                f"command = {json.dumps(f'{sys.executable} {HOOKED}')}\n"
            )
        for name in (*ASKERS, "hk"):
            at(root, "agent", "start", name)
        wait_for(lambda: idle(root))
        yield root


@pytest.fixture(autouse=True)
def clean(town: Path) -> Iterator[None]:
    yield
    for waiting in pending(town):
        with contextlib.suppress(TundraError):  # answered meanwhile
            call(town, Deny(id=waiting.id))
    for rule in rules(town):
        call(town, RuleRevoke(id=rule.id))
    wait_for(lambda: idle(town))


def ask(town: Path, agent: str, command: str, source: str = "") -> ApprovalInfo:
    """`agent` asks to run `command`; its request, once listed (from `source` if given)."""
    task = f"RUN: {command}" if agent == "hk" else f"ask {command}"
    call(town, SendText(name=agent, text=task))
    found: list[ApprovalInfo] = []

    def listed() -> bool:
        found[:] = [a for a in pending(town) if a.agent == agent and source in ("", a.source)]
        return bool(found)

    wait_for(listed)
    return found[0]


def ran(town: Path, name: str) -> int:
    """How many times the askers ran `echo x >> NAME` (each approval runs it once)."""
    path = town / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def approvers(town: Path) -> list[str]:
    """Who approved each request, as the audit trail says."""
    conn = sqlite3.connect(find_town(town).db_path)
    try:
        rows = conn.execute("SELECT actor FROM events WHERE kind = 'approval.approved'")
        return [str(row[0]) for row in rows]
    finally:
        conn.close()


def test_a_rule_answers_only_its_own_agents_exact_command_until_revoked(town: Path) -> None:
    first = ask(town, "a1", "echo x >> ruled.log")
    assert first.denied_shape == ""
    added = json.loads(at(town, "rules", "add", str(first.id), "--json").stdout)
    assert (added["agent"], added["subject"]) == ("a1", first.subject)
    wait_for(lambda: ran(town, "ruled.log") == 1)  # the request it was made from: approved
    wait_for(lambda: idle(town))

    call(town, SendText(name="a1", text="ask echo x >> ruled.log"))  # the same words: the rule
    wait_for(lambda: ran(town, "ruled.log") == 2)
    wait_for(lambda: f"rule {added['id']}" in approvers(town))  # the audit trail says who
    wait_for(lambda: idle(town))

    other = ask(town, "a1", "echo x >> other.log")  # the same agent, another command
    stranger = ask(town, "a2", "echo x >> ruled.log")  # another agent, the same command
    assert stranger.subject == first.subject
    assert {a.id for a in pending(town)} == {other.id, stranger.id}
    call(town, Deny(id=other.id))
    call(town, Deny(id=stranger.id))
    wait_for(lambda: idle(town))

    listed = at(town, "rules").stdout
    assert "a1" in listed and "echo x >> ruled.log" in listed
    revoked = at(town, "rules", "revoke", str(added["id"]))  # revoked: the words wait again
    assert "revoked" in revoked.stdout
    assert rules(town) == []
    again = ask(town, "a1", "echo x >> ruled.log")
    assert again.subject == first.subject
    call(town, Deny(id=again.id))
    assert ran(town, "ruled.log") == 2 and ran(town, "other.log") == 0
    twice = at(town, "rules", "revoke", str(added["id"]), check=False)
    assert twice.returncode != 0 and "already revoked" in twice.stderr


def test_the_deny_list_beats_any_rule(town: Path) -> None:
    """A force push is refused as a rule; a rule for it written into the store anyway
    (an older build, a hand edit) is never applied: the request waits, flagged."""
    command = "echo git push --force origin main >> forced.log"  # harmless, were it run
    first = ask(town, "a1", command)
    assert "force" in first.denied_shape
    refused = at(town, "rules", "add", str(first.id), check=False)
    assert refused.returncode != 0 and "never always-allowed" in refused.stderr
    assert rules(town) == []
    assert [a.id for a in pending(town)] == [first.id]
    assert "⚠ force-pushes" in at(town, "approvals").stdout
    call(town, Deny(id=first.id))
    wait_for(lambda: idle(town))

    conn = sqlite3.connect(find_town(town).db_path)
    with conn:
        conn.execute(
            "INSERT INTO approval_rules (agent, tool, subject, digest, created_at, created_by) "
            "VALUES ('a1', ?, ?, ?, '2026-01-01T00:00:00Z', 'operator')",
            (first.tool, first.subject, words_digest(first.tool, first.subject)),
        )
    conn.close()
    assert len(rules(town)) == 1, "the rule is live"
    again = ask(town, "a1", command)
    assert again.subject == first.subject and again.denied_shape
    assert [a.id for a in pending(town)] == [again.id], "it waits for you"
    call(town, Deny(id=again.id))
    assert ran(town, "forced.log") == 0


def test_a_rule_cannot_be_added_from_inside_an_agent(town: Path) -> None:
    waiting = ask(town, "a2", "echo x >> forged.log")
    (town / "forge.sh").write_text(
        f"{AT_INSIDE} rules add {waiting.id} > forge.out 2>&1\necho $? > forge.rc\n"
    )
    call(town, SendText(name="a1", text="bg sh forge.sh"))
    wait_for((town / "forge.rc").exists)
    assert (town / "forge.rc").read_text().strip() != "0"
    assert "set by the operator" in (town / "forge.out").read_text()
    assert rules(town) == []
    assert [a.id for a in pending(town)] == [waiting.id]
    call(town, Deny(id=waiting.id))
    assert ran(town, "forged.log") == 0


def test_a_rule_answers_a_hooks_request_through_the_hook(town: Path) -> None:
    """Claude Code's way: the screen shows the prompt, the hook brings its exact words; the
    rule made from those words answers the next same request through the waiting hook."""
    first = ask(town, "hk", "echo x >> hooked.log", source="hook")
    rule = call(town, RuleAdd(id=first.id, seen=first.subject))
    assert (rule.agent, rule.tool, rule.subject) == ("hk", "Bash", "echo x >> hooked.log")
    wait_for(lambda: ran(town, "hooked.log") == 1)
    wait_for(lambda: idle(town))
    call(town, SendText(name="hk", text="RUN: echo x >> hooked.log"))
    wait_for(lambda: ran(town, "hooked.log") == 2)
    wait_for(lambda: f"rule {rule.id}" in approvers(town))
