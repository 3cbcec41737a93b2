"""Scripted turns, so tests and demos get exactly the answers and approvals they need.

A scenario file is a JSON list of turns (or `{"turns": [...]}`), or TOML with `[[turns]]` tables.
Each turn may have `expect` (a substring the typed task must contain; if it does not, the task is
answered as free text and the turn keeps waiting), `say` (the answer to stream), `run` (a command
to ask approval for), `tokens` (overrides of the usage fields for every call of that turn) and
`limit` (a reset time such as "2 minutes": once the turn's work is done the agent shows a
usage-limit screen saying it resets in that time, and idles). A turn with a `limit` is also
matched against bead work, so a test can have one bead end in a usage limit; bead work never
takes other scripted turns. When the turns run out the agent falls back to its default behaviour.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tundra_tui.demo_agent.usage import Usage

_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))
_TURN_KEYS = frozenset({"expect", "say", "run", "tokens", "limit"})


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Turn:
    """One scripted answer."""

    expect: str | None = None
    say: str | None = None
    run: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    limit: str | None = None
    """Shown after the turn as `Claude usage limit reached · resets in <limit>`."""


def _turn(raw: Any, where: str) -> Turn:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a turn must be a table/object")
    unknown = set(raw) - _TURN_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("expect", "say", "run", "limit"):
        if key in raw and not isinstance(raw[key], str):
            raise ScenarioError(f"{where}: {key} must be a string")
    tokens = raw.get("tokens", {})
    if not isinstance(tokens, dict) or set(tokens) - _USAGE_FIELDS:
        raise ScenarioError(f"{where}: tokens may only set {sorted(_USAGE_FIELDS)}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in tokens.values()):
        raise ScenarioError(f"{where}: token counts must be non-negative integers")
    limit = raw.get("limit")
    if limit is not None and (not limit.strip() or not limit.isprintable()):
        raise ScenarioError(f"{where}: limit must be a printable reset time such as 2 minutes")
    return Turn(raw.get("expect"), raw.get("say"), raw.get("run"), dict(tokens), limit)


def load_scenario(path: Path) -> list[Turn]:
    """Read and check a scenario file; TOML when the name ends in `.toml`, JSON otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            import tomllib  # only scenario runs pay for it

            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (OSError, ValueError) as error:
        raise ScenarioError(f"{path}: {error}") from error
    turns = data.get("turns") if isinstance(data, dict) else data
    if not isinstance(turns, list):
        raise ScenarioError(f"{path}: expected a list of turns")
    return [_turn(raw, f"{path}: turn {n}") for n, raw in enumerate(turns, 1)]


class Script:
    """The turns not yet played, consumed in order."""

    def __init__(self, turns: list[Turn]) -> None:
        self._turns = deque(turns)

    def next_for(self, task: str) -> Turn | None:
        """The next turn if `task` satisfies its `expect`; None means answer as free text."""
        if self._turns and (self._turns[0].expect is None or self._turns[0].expect in task):
            return self._turns.popleft()
        return None

    def limit_for(self, task: str) -> Turn | None:
        """The next turn if it has a `limit` and `task` (bead work) satisfies its `expect`."""
        if self._turns and self._turns[0].limit is not None:
            return self.next_for(task)
        return None
