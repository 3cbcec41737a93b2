"""The live model: what the daemon's events mean, including hostile and stale ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tundra_tui.daemon.protocol import (
    VERSION,
    ApprovalEvent,
    ApprovalInfo,
    ApprovalResolvedEvent,
    ChangedEvent,
    LinkEvent,
    ProtocolError,
    RemovedEvent,
    Snapshot,
    StateEvent,
    StoreEvent,
    TroubleEvent,
    decode,
)
from tundra_tui.domain.agents import AgentState
from tundra_tui.ui.live import MAX_SUBJECT, Change, LiveModel


def info(approval_id: int, agent: str = "a", subject: str = "ls") -> ApprovalInfo:
    return ApprovalInfo(id=approval_id, agent=agent, runtime="demo", status="pending",
                        subject=subject, tool="Bash", cwd="", source="hook")  # fmt: skip


def approval(approval_id: int, agent: str = "a", subject: str = "ls") -> ApprovalEvent:
    return ApprovalEvent(approval=info(approval_id, agent, subject))


def state(agent: str, value: str) -> StateEvent:
    return StateEvent(agent=agent, state=value, glyph="●")


UP = LinkEvent(up=True)


def test_reconnecting_keeps_only_what_the_new_snapshot_repeats() -> None:
    live = LiveModel()
    live.apply(UP)
    live.apply(state("a", "working"))
    live.apply(state("gone", "working"))
    live.apply(approval(7))
    live.apply(LinkEvent(up=False, error="closed"))
    assert not live.connected and 7 in live.approvals  # still shown while down
    live.apply(UP)
    live.apply(state("a", "idle"))
    assert set(live.agents) == {"a"} and live.agents["a"].state is AgentState.IDLE
    assert live.approvals == {}


def test_a_resync_snapshot_drops_approvals_answered_meanwhile() -> None:
    live = LiveModel()
    live.apply(approval(1))
    live.apply(approval(2))
    live.apply(Snapshot(resync=True))
    live.apply(state("a", "working"))
    live.apply(approval(2))
    assert set(live.approvals) == {2}


def test_two_snapshots_in_a_row_each_start_afresh() -> None:
    """A client that fell behind twice was sent two snapshots back to back; the second
    one's flag looked like the first one's, so answered requests stayed listed."""
    live = LiveModel()
    for approval_id in (1, 2, 3):
        live.apply(approval(approval_id))
    live.apply(Snapshot(resync=True))
    live.apply(approval(2))
    live.apply(approval(3))
    live.apply(Snapshot(resync=True))
    live.apply(approval(3))
    assert set(live.approvals) == {3}


def test_an_answered_request_leaves_and_an_upgraded_one_is_replaced_in_place() -> None:
    live = LiveModel()
    live.apply(approval(1, subject="rm -rf"))
    assert live.apply(approval(1, subject="rm -rf build/")) == Change("approval", "a", 1)
    assert live.approvals[1].subject == "rm -rf build/"
    resolved = ApprovalResolvedEvent(approval=info(1))
    assert live.apply(resolved) == Change("approval_resolved", "a", 1)
    assert live.approvals == {}


def test_a_long_subject_says_it_was_cut() -> None:
    live = LiveModel()
    live.apply(approval(3, subject="x" * (MAX_SUBJECT + 10)))
    assert live.approvals[3].subject.endswith("(10 more characters not shown)")


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"event": "state"},
        {"event": "state", "agent": 5, "state": "idle", "glyph": ""},
        {"event": "approval", "agent": "a"},
        {"event": "approval", "approval": {"kind": "approval", "id": True}},
        {"event": "nope", "agent": "a"},
    ],
)
def test_malformed_events_never_reach_the_model(event: dict[str, Any]) -> None:
    """The wire is checked against the protocol's types: JSON `true` is no approval id,
    a number no agent name, and an unknown event no event at all."""
    line = json.dumps({"v": VERSION, "ev": event}).encode()
    with pytest.raises(ProtocolError):
        decode(line)


def test_events_about_no_agent_or_for_other_clients_change_nothing() -> None:
    live = LiveModel()
    assert live.apply(state("", "working")).kind == "ignored"
    assert live.apply(approval(1, agent="")).kind == "ignored"
    assert live.apply(ChangedEvent(what="beads")).kind == "ignored"
    assert live.agents == {} and live.approvals == {}


def test_hostile_text_is_made_visible_where_it_is_only_shown() -> None:
    live = LiveModel()
    live.apply(LinkEvent(up=False, error="gone\x1b]0;pwned\x07"))
    live.apply(TroubleEvent(agent="a", kind="rate\x1b[31m_limited"))
    live.apply(state("a", "\x1b[2J"))
    assert "\x1b" not in live.link_error and "\x07" not in live.link_error
    assert live.agents["a"].trouble == "rate␛[31m_limited"
    assert live.agents["a"].state is AgentState.UNKNOWN


def test_store_stalls_are_followed_until_they_clear() -> None:
    """The daemon keeps writes the database cannot take now; the control room says so."""
    live = LiveModel()
    change = live.apply(StoreEvent(pending=3, error="database is \x1b[31mlocked"))
    assert change.kind == "store"
    assert (live.store_pending, live.store_error) == (3, "database is ␛[31mlocked")
    live.apply(StoreEvent(pending=0, error=""))
    assert (live.store_pending, live.store_error) == (0, "")


def test_a_removed_agent_leaves_with_its_requests() -> None:
    live = LiveModel()
    live.apply(state("gone", "stopped"))
    live.apply(approval(9, agent="gone", subject="x"))
    live.apply(state("kept", "idle"))
    change = live.apply(RemovedEvent(agent="gone"))
    assert change == Change("removed", "gone")
    assert list(live.agents) == ["kept"] and live.approvals == {}
