"""Opt-in: each real CLI, run by the town's daemon against the fake model server, answers
one prompt; then `at cost --json` must hold exactly the tokens the CLI logged, and the cost
must be within 1% of the CLI's own figure where it logged one.

    TUNDRA_REAL_AGENTS=1 .venv/bin/python -m pytest tests/real_agents/test_real_costs.py

The CLI's home is the sandbox's temp HOME. Between the CLI going idle and our figures
matching, only we run: every file in that home must be byte-identical across that span (we
read its logs, never write them).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from agent_specs import SPECS
from daemon_town import DaemonTown
from real_agent_harness import Sandbox

pytestmark = pytest.mark.real_agents

NAME = "coster"
PROMPT = "hello"
FAKE_PRICES = (
    '\n[costs.prices."fake-model"]\ninput = 3.0\noutput = 15.0\n'
    # Aider's model is `openai/fake`: the provider is read apart from the model.
    '[costs.prices."fake"]\ninput = 3.0\noutput = 15.0\n'
)
"""What the CLIs that price by themselves (Aider, OpenCode) are told the fake model costs."""


def _digests(home: Path) -> dict[str, str]:
    """Every file under the home with its sha256: what the CLI wrote is compared apart."""
    out: dict[str, str] = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _logged_cost(runtime: str, box: Sandbox) -> float | None:
    """The CLI's own cost for the run, where it logs one."""
    if runtime == "claude":
        cost = None
        for log in (box.home / ".claude" / "projects").glob("*/*.jsonl"):
            for line in log.read_text().splitlines():
                record: dict[str, Any] = json.loads(line)
                if record.get("type") == "cost-state":
                    cost = float(record.get("totalCostUSD") or 0.0)
        return cost
    if runtime == "aider":
        logs = sorted(set(box.root.rglob("aider-*.jsonl")))  # ours, or the spec's own
        total = 0.0
        for log in logs:
            if log.exists():
                for line in log.read_text().splitlines():
                    record = json.loads(line)
                    if record.get("event") == "message_send":
                        total += float(record["properties"].get("cost") or 0.0)
        return total or None
    if runtime == "opencode":
        db = box.home / ".local" / "share" / "opencode" / "opencode.db"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT sum(cost) FROM session").fetchone()
        return float(row[0]) if row and row[0] else None
    return None


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_cost_equals_what_the_cli_logged(
    runtime: str,
    make_sandbox: Callable[[str], Sandbox],
    make_daemon_town: Callable[..., DaemonTown],
) -> None:
    spec = SPECS[runtime]
    box = make_sandbox(runtime)
    argv, env = spec.setup(box)
    town = make_daemon_town(box.work, NAME, spec.runtime, argv, env)
    with town.town.config_path.open("a", encoding="utf-8") as config:
        config.write(FAKE_PRICES)
    town.at("agent", "start", NAME)
    town.wait_state("idle", 90, f"{runtime} idle at start")
    town.at("send", NAME, PROMPT)
    town.wait(lambda: spec.usage_tokens(box) > 0, 60, f"{runtime} logged its usage")
    town.wait_state("idle", 60, f"{runtime} idle after the answer")
    logged_tokens = spec.usage_tokens(box)

    def ours() -> dict[str, Any]:
        document: dict[str, Any] = town.json("cost", "--since", "all")
        return document

    def counted(doc: dict[str, Any]) -> int:
        total = doc["total"]
        # The specs count what each CLI calls input: Codex's and Gemini's include the cached
        # tokens, which we store apart as cache reads.
        cached = total["cache_read_tokens"] if runtime in ("codex", "gemini") else 0
        return int(total["input_tokens"] + cached + total["output_tokens"])

    town.wait(lambda: counted(ours()) == logged_tokens, 30, f"{runtime} tokens in at cost")
    doc = ours()
    assert [row["key"] for row in doc["rows"]] == [NAME]
    cli_cost = _logged_cost(runtime, box)
    if cli_cost:
        assert doc["total"]["cost_usd"] == pytest.approx(cli_cost, rel=0.01), doc
    # Nothing of ours writes the CLI's home. The CLI itself writes there until it exits, so
    # stop it first; then the daemon reads its logs to the end (their last lines counted)
    # and the files must be as the CLI left them.
    town.at("agent", "stop", NAME)
    town.wait(lambda: town.agent().get("pid") is None, 60, f"{runtime} stopped")
    before = _digests(box.home)
    final = spec.usage_tokens(box)
    town.wait(lambda: counted(ours()) == final, 30, f"{runtime} read to the end after its exit")
    after = _digests(box.home)
    town.stop()
    # A WAL database's -shm is SQLite's shared index, which any reader updates; the data is
    # the database and its -wal.
    changed = {
        path for path in before if before[path] != after.get(path) and not path.endswith("-shm")
    }
    assert not changed, f"files in the CLI's home changed after it exited: {sorted(changed)}"
