"""Mail between turns: delivered when the agent turns idle, one batch per idle turn, never
over an approval prompt, with a receipt; a crash between typing and the receipt settled by
the evidence rule; nudges typed once; Claude's Stop hook as the hand-over.

The stand-ins log every input they take (see mail_town), so "typed once" is counted, not
guessed. "Not delivered yet" is checked against a positive sign: a later mail to another
agent was delivered, so the mailroom had heard of the first one.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, at, git_town, wait_for
from mail_town import (
    add_agents,
    events,
    rows,
    stand_in,
    state,
    typed,
)

from tundra_tui.domain.handover import MAIL_TAG, parse_mail
from tundra_tui.store import open_store


@pytest.fixture
def town() -> Iterator[Path]:
    with git_town(mail={"stop_hook": False}) as root:
        add_agents(root, lz=stand_in(root, "lz", "lazy_agent"))
        yield root


def start(town: Path, name: str) -> None:
    at(town, "agent", "start", name)
    wait_for(lambda: state(town, name) == "idle", 30)


def mail_row(town: Path, mail_id: int) -> tuple[str, str, int | None]:
    (row,) = rows(
        town, "SELECT read_at, delivered_at, delivery_id FROM mail WHERE id = ?", (mail_id,)
    )
    return row  # type: ignore[return-value]


def send(town: Path, to: str, body: str) -> int:
    sent = json.loads(at(town, "mail", "send", to, "-m", body, "--json").stdout)
    return int(sent["id"])


def delivered(town: Path, mail_id: int) -> bool:
    return bool(mail_row(town, mail_id)[1])


def mail_lines(entries: list[object]) -> list[str]:
    return [str(e) for e in entries if MAIL_TAG in str(e)]


def test_mail_to_a_working_agent_waits_for_its_idle_turn(town: Path) -> None:
    at(town, "daemon", "start")
    start(town, "lz")
    at(town, "send", "lz", "SLOW 3")
    wait_for(lambda: state(town, "lz") == "working")
    mail_id = send(town, "lz", "hello between turns")
    assert state(town, "lz") == "working"
    wait_for(lambda: delivered(town, mail_id), 30)
    # Typed after the turn it arrived in (the agent found no input waiting when SLOW
    # ended), as one line with a header.
    entries = typed(town, "lz")
    assert entries[0] == "SLOW 3"
    assert {"typed_while_working": True} not in entries
    (line,) = mail_lines(entries)
    (message,) = parse_mail(line)
    assert (message.id, message.sender, message.body) == (
        mail_id,
        "operator",
        "hello between turns",
    )
    assert "1 message " in line
    # The receipt: read and delivered, and the event naming the message.
    read_at, delivered_at, delivery = mail_row(town, mail_id)
    assert read_at and delivered_at and delivery is not None
    ((_, _, agent, data),) = events(town, "mail.delivered")
    assert agent == "lz" and data["ids"] == [mail_id] and data["via"] == "typed"


def test_mail_waits_while_an_approval_is_pending(town: Path) -> None:
    add_agents(town, hk=stand_in(town, "hk", "hooked_agent", role="crew"))
    at(town, "daemon", "start")
    start(town, "hk")
    start(town, "lz")
    at(town, "send", "hk", "RUN: touch approved.txt")
    wait_for(lambda: json.loads(at(town, "approvals", "--json").stdout) != [])
    ((request),) = json.loads(at(town, "approvals", "--json").stdout)
    waiting = send(town, "hk", "not over the prompt")
    later = send(town, "lz", "sent after")
    wait_for(lambda: delivered(town, later), 30)
    # The mailroom heard both; the one for the agent at a prompt was not even begun.
    assert rows(town, "SELECT id FROM deliveries WHERE agent = 'hk'") == []
    assert mail_row(town, waiting) == ("", "", None)
    at(town, "approve", str(request["id"]))
    wait_for(lambda: delivered(town, waiting), 30)
    assert (town / "approved.txt").exists()
    # It went in after the answer: the approval was decided before the delivery began.
    ((decided,),) = rows(town, "SELECT decided_at FROM approvals WHERE id = ?", (request["id"],))
    ((began,),) = rows(town, "SELECT started_at FROM deliveries WHERE agent = 'hk'")
    assert decided and began > decided


def test_three_mails_arrive_as_one_batch(town: Path) -> None:
    at(town, "daemon", "start")
    ids = [send(town, "lz", f"message {n}, with a comma (#{n} and parens)") for n in (1, 2, 3)]
    start(town, "lz")
    wait_for(lambda: all(delivered(town, i) for i in ids), 30)
    (line,) = mail_lines(typed(town, "lz"))
    assert "3 messages" in line
    assert [(m.id, m.body) for m in parse_mail(line)] == [
        (n, f"message {k}, with a comma (#{k} and parens)")
        for n, k in zip(ids, (1, 2, 3), strict=True)
    ]
    ((_, _, _, data),) = events(town, "mail.delivered")
    assert data["ids"] == ids


def test_mail_reaches_an_agent_whose_turns_are_too_quick_to_see() -> None:
    """Its turn is over before its screen shows it working, so it never leaves the idle
    turn its first batch was typed in: the next mail must still come once it sits quiet,
    not wait for a turn that is never seen (a CI run once waited a minute for one)."""
    with git_town(mail={"stop_hook": False}) as root:
        quick = stand_in(root, "qk", "lazy_agent")
        quick["command"] += " --quick"
        add_agents(root, qk=quick)
        at(root, "daemon", "start")
        start(root, "qk")
        first = send(root, "qk", "one")
        wait_for(lambda: delivered(root, first), 30)
        second = send(root, "qk", "two")
        wait_for(lambda: delivered(root, second), 30)
        lines = mail_lines(typed(root, "qk"))
        assert [[m.body for m in parse_mail(line)] for line in lines] == [["one"], ["two"]]
        assert state(root, "qk") == "idle"


def test_a_nudge_is_typed_once_and_has_its_receipt(town: Path) -> None:
    at(town, "daemon", "start")
    start(town, "lz")
    done = at(town, "nudge", "lz", "-m", "look up")
    assert "nudged lz" in done.stdout
    ((nudge_id, subject, urgent, read_at, delivered_at),) = rows(
        town, "SELECT id, subject, urgent, read_at, delivered_at FROM mail WHERE recipient = 'lz'"
    )
    assert (subject, urgent) == ("nudge", 1) and read_at and delivered_at
    # The agent's next idle turns deliver what came later, and never the nudge again.
    later = send(town, "lz", "after the nudge")
    wait_for(lambda: delivered(town, later), 30)
    entries = typed(town, "lz")
    assert entries.count("look up") == 1
    (line,) = mail_lines(entries)
    assert [m.id for m in parse_mail(line)] == [later]
    assert nudge_id not in [m.id for m in parse_mail(line)]


def test_the_stop_hook_hands_mail_over_with_nothing_typed() -> None:
    with git_town() as town:
        add_agents(town, sh=stand_in(town, "sh", "stop_hook_agent"))
        at(town, "daemon", "start")
        start(town, "sh")
        at(town, "send", "sh", "SLOW 2")
        wait_for(lambda: state(town, "sh") == "working")
        mail_id = send(town, "sh", "handed over by the hook")
        wait_for(lambda: delivered(town, mail_id), 30)
        entries = typed(town, "sh")
        assert [e["via"] for e in entries] == ["typed", "stop_hook"]
        (message,) = parse_mail(entries[1]["text"])
        assert (message.id, message.body) == (mail_id, "handed over by the hook")
        ((_, _, _, data),) = events(town, "mail.delivered")
        assert data["via"] == "stop_hook" and data["ids"] == [mail_id]
        # Mail for an agent already sitting idle is typed (the fallback), and the first
        # message is never handed over a second time.
        wait_for(lambda: state(town, "sh") == "idle")
        later = send(town, "sh", "typed at idle")
        wait_for(lambda: delivered(town, later), 30)
        wait_for(lambda: len(typed(town, "sh")) == 3)  # it logs once its prompt hook returned
        texts = [e["text"] for e in typed(town, "sh")]
        assert sum("handed over by the hook" in t for t in texts) == 1
        assert typed(town, "sh")[-1]["via"] == "typed"


# ---- a crash between typing and the receipt ---------------------------------------------------


def _daemon_pid(town: Path) -> int | None:
    status = at(town, "daemon", "status", "--json", check=False)
    if status.returncode != 0:
        return None
    pid = json.loads(status.stdout).get("pid")
    return int(pid) if pid else None


def test_a_crash_after_typing_is_settled_by_the_evidence(town: Path) -> None:
    env = {**os.environ, "TUNDRA_FAULT": "mail.typed"}
    subprocess.run([*AT, "--town", str(town), "daemon", "start"], env=env, check=True)
    start(town, "lz")
    mail_id = send(town, "lz", "typed, then the daemon died")
    # The fault kills the daemon right after typing, before the receipt.
    wait_for(lambda: len(mail_lines(typed(town, "lz"))) == 1, 30)
    wait_for(lambda: _daemon_pid(town) is None, 30)
    ((outcome,),) = rows(town, "SELECT outcome FROM deliveries")
    assert outcome == ""
    at(town, "daemon", "start")
    start(town, "lz")
    wait_for(lambda: delivered(town, mail_id), 30)
    (first, *_) = rows(town, "SELECT outcome FROM deliveries ORDER BY id")
    copies = len(mail_lines(typed(town, "lz")))
    # Taken on the evidence (the agent went to work after it began): never typed again;
    # released for lack of it: typed once more, and then receipted.
    assert (first[0], copies) in (("taken", 1), ("released", 2))


@pytest.mark.parametrize("evidence", [True, False], ids=["taken", "not-taken"])
def test_recovery_after_a_crash_follows_the_evidence(town: Path, evidence: bool) -> None:
    """A delivery left open by a dead daemon, seeded: with a sign the agent took it, it is
    never typed again; without, it is typed once at the next idle turn."""

    async def seed() -> int:
        store = await open_store(town / ".tundra" / "town.db")
        try:
            mail = await store.mail.send("mayor", "lz", "sent before the crash", actor="mayor")
            did = await store.mail.begin_delivery("lz", [mail.id], via="typed")
            assert did is not None
            if evidence:
                await store.events.record(
                    "agent.state",
                    actor="daemon",
                    agent="lz",
                    data={"from": "idle", "to": "working"},
                )
            return mail.id
        finally:
            await store.close()

    mail_id = asyncio.run(seed())
    at(town, "daemon", "start")
    start(town, "lz")
    later = send(town, "lz", "after the restart")
    wait_for(lambda: delivered(town, later) and delivered(town, mail_id), 30)
    copies = sum("sent before the crash" in line for line in mail_lines(typed(town, "lz")))
    assert copies == (0 if evidence else 1)
    ((outcome,),) = rows(town, "SELECT outcome FROM deliveries ORDER BY id LIMIT 1")
    assert outcome == ("taken" if evidence else "released")
