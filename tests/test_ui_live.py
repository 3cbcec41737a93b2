"""The live model: what the daemon's events mean, including hostile and stale ones."""

from __future__ import annotations

from typing import Any

from tundra_tui.domain.agents import AgentState
from tundra_tui.ui.live import MAX_SUBJECT, Change, LiveModel


def approval(approval_id: Any, agent: str = "a", subject: str = "ls") -> dict[str, Any]:
    return {"event": "approval", "id": approval_id, "agent": agent, "subject": subject,
            "tool": "Bash", "source": "hook"}  # fmt: skip


def test_reconnecting_keeps_only_what_the_new_snapshot_repeats() -> None:
    live = LiveModel()
    live.apply({"event": "link", "up": True})
    live.apply({"event": "state", "agent": "a", "state": "working"})
    live.apply({"event": "state", "agent": "gone", "state": "working"})
    live.apply(approval(7))
    live.apply({"event": "link", "up": False, "error": "closed"})
    assert not live.connected and 7 in live.approvals  # still shown while down
    live.apply({"event": "link", "up": True})
    live.apply({"event": "state", "agent": "a", "state": "idle"})
    assert set(live.agents) == {"a"} and live.agents["a"].state is AgentState.IDLE
    assert live.approvals == {}


def test_a_resync_snapshot_drops_approvals_answered_meanwhile() -> None:
    live = LiveModel()
    live.apply(approval(1))
    live.apply(approval(2))
    live.apply({"event": "snapshot", "resync": True})
    live.apply({"event": "state", "agent": "a", "state": "working", "resync": True})
    live.apply({**approval(2), "resync": True})
    live.apply({"event": "state", "agent": "a", "state": "working"})
    assert set(live.approvals) == {2}


def test_two_snapshots_in_a_row_each_start_afresh() -> None:
    """A client that fell behind twice was sent two snapshots back to back; the second
    one's flag looked like the first one's, so answered requests stayed listed."""
    live = LiveModel()
    for approval_id in (1, 2, 3):
        live.apply(approval(approval_id))
    live.apply({"event": "snapshot", "resync": True})
    live.apply({**approval(2), "resync": True})
    live.apply({**approval(3), "resync": True})
    live.apply({"event": "snapshot", "resync": True})
    live.apply({**approval(3), "resync": True})
    assert set(live.approvals) == {3}


def test_json_true_is_not_an_approval_id() -> None:
    live = LiveModel()
    assert live.apply(approval(True)) == Change("ignored")
    live.apply(approval(1))
    live.apply({"event": "approval_resolved", "id": True, "agent": "a"})
    assert set(live.approvals) == {1}


def test_a_long_subject_says_it_was_cut() -> None:
    live = LiveModel()
    live.apply(approval(3, subject="x" * (MAX_SUBJECT + 10)))
    assert live.approvals[3].subject.endswith("(10 more characters not shown)")


def test_malformed_events_change_nothing() -> None:
    live = LiveModel()
    malformed: list[dict[str, Any]] = [
        {},
        {"event": "state"},
        {"event": "state", "agent": 5},
        {"event": "approval", "agent": "a"},
        {"event": "nope", "agent": "a"},
    ]
    for event in malformed:
        assert live.apply(event).kind == "ignored"
    assert live.agents == {} and live.approvals == {}


def test_store_stalls_are_followed_until_they_clear() -> None:
    """The daemon keeps writes the database cannot take now; the control room says so."""
    live = LiveModel()
    change = live.apply({"event": "store", "pending": 3, "error": "database is \x1b[31mlocked"})
    assert change.kind == "store"
    assert (live.store_pending, live.store_error) == (3, "database is ␛[31mlocked")
    live.apply({"event": "store", "pending": 0, "error": ""})
    assert (live.store_pending, live.store_error) == (0, "")


def test_a_removed_agent_leaves_with_its_requests() -> None:
    live = LiveModel()
    live.apply({"event": "state", "agent": "gone", "state": "stopped"})
    live.apply({"event": "approval", "id": 9, "agent": "gone", "subject": "x"})
    live.apply({"event": "state", "agent": "kept", "state": "idle"})
    change = live.apply({"event": "removed", "agent": "gone"})
    assert change == Change("removed", "gone")
    assert list(live.agents) == ["kept"] and live.approvals == {}
