"""The generic detection layer through a real daemon: a `custom` runtime configured with no
approval pattern still shows its `[y/n]` question as an approval the operator answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import agent_state, asker_town, at, pending_approvals, wait_for


@pytest.fixture
def town() -> Iterator[Path]:
    """No `approval_pattern`: only the generic layer can see the question."""
    with asker_town("asker") as root:
        yield root


def _state(town: Path) -> str:
    return agent_state(town, "asker")


def test_a_yes_no_question_with_no_rule_for_it_is_an_approval(town: Path) -> None:
    at(town, "send", "asker", "ask touch generic.txt")
    wait_for(lambda: len(pending_approvals(town)) == 1)
    (waiting,) = pending_approvals(town)
    assert waiting["subject"] == "Allow command? touch generic.txt [y/n]"
    evidence = waiting["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["rule"] == "generic.approval.yes_no"
    assert evidence["versions"] == "generic"
    assert _state(town) == "awaiting_approval"
    at(town, "approve", str(waiting["id"]))
    wait_for(lambda: (town / "generic.txt").exists())
    assert (town / "keys.log").read_text() == "y"
    wait_for(lambda: _state(town) == "idle")
