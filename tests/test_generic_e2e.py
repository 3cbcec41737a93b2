"""The generic detection layer through a real daemon: a `custom` runtime configured with no
approval pattern still shows its `[y/n]` question as an approval the operator answers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import at, daemon_town, wait_for

ASKER = Path(__file__).parent / "helpers" / "asker_agent.py"

CONFIG = f"""
[runtimes.custom]
command = {json.dumps(f"{sys.executable} {ASKER}")}
idle_pattern = 'READY>\\Z'
approve_keys = "y"
deny_keys = "n"

[agents.asker]
role = "crew"
runtime = "custom"
"""
"""No `approval_pattern`: only the generic layer can see the question."""


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(CONFIG)
        at(root, "agent", "start", "asker")
        wait_for(lambda: _state(root) == "idle")
        yield root


def _state(town: Path) -> str:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return str(next(r for r in rows if r["name"] == "asker")["state"])


def _pending(town: Path) -> list[dict[str, object]]:
    return list(json.loads(at(town, "approvals", "--json").stdout))


def test_a_yes_no_question_with_no_rule_for_it_is_an_approval(town: Path) -> None:
    at(town, "send", "asker", "ask touch generic.txt")
    wait_for(lambda: len(_pending(town)) == 1)
    (waiting,) = _pending(town)
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
