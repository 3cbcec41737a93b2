"""Costs end to end, in one daemon run: usage recorded from the agents' own logs and put on
their beads, a rate-limit screen pausing one account only, and the budget brake stopping
new beads at 100% until the operator raises the budget.

A git town with two crew agents (demo, speed 0) on separate accounts and no polecats; the
refinery has no gates, so a bead in review holds no one. `a`'s scenario ends bead 1 (P0,
critical: only `a` takes that lane) with Claude's usage-limit screen, so `a` is free and
idle while its account is paused: only the pause keeps work from it. Once two beads are
submitted the operator sets a daily budget at 85% spent (a warning); `b`'s next bead spends
the rest (a stop: running work finishes, nothing new is claimed over two more dispatch
passes); the operator raises it and the next bead is claimed. Seven beads, so some wait.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from at_cli import at, git_town

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import AttentionEvent, ChangedEvent
from tundra_tui.domain.beads import Lane
from tundra_tui.domain.clock import parse_iso
from tundra_tui.store import open_store
from tundra_tui.town import Town

DEADLINE = 120.0
"""For the whole run (about 12 s on a quiet 2-core machine; a CI run under load took over 60)."""
DEMO = ["--speed", "0", "--approval-rate", "0"]


async def seed(town: Path) -> list[int]:
    """Bead 1 "limit me" (P0, critical: only `a` takes that lane), then six plain ones;
    written to the store directly (seven `at bead add` processes cost seconds)."""
    store = await open_store(Town(town).db_path)
    try:
        made = [await store.beads.add("limit me", actor="op", priority=0, lane=Lane.CRITICAL)]
        made += [await store.beads.add(f"plain {n}", actor="op") for n in range(2, 8)]
    finally:
        await store.close()
    return [b.id for b in made]


def rows(town: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def status(town: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(at(town, "dispatch", "status", "--json").stdout)
    return found


class Watch:
    """A client subscribed to the daemon (in a thread): attention and dispatch notices."""

    def __init__(self) -> None:
        self.attention: list[AttentionEvent] = []
        self.dispatch_changes = 0
        self.subscribed = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def kinds(self) -> list[str]:
        return [e.kind for e in self.attention]


@contextmanager
def watching(town: Path) -> Iterator[Watch]:
    watch = Watch()

    async def follow() -> None:
        client = await DaemonClient.connect(Town(town))
        try:
            async for event in client.subscribe(None):
                watch.subscribed.set()
                if isinstance(event, AttentionEvent):
                    watch.attention.append(event)
                elif isinstance(event, ChangedEvent) and event.what == "dispatch":
                    watch.dispatch_changes += 1
        finally:
            await client.close()

    async def until_stopped() -> None:
        task = asyncio.create_task(follow())
        stopped = asyncio.get_running_loop().run_in_executor(None, watch.stop.wait)
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    def run() -> None:
        try:
            asyncio.run(until_stopped())
        except BaseException as error:  # reported by the test
            watch.error = error
            watch.subscribed.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert watch.subscribed.wait(20), "never subscribed"
    try:
        yield watch
    finally:
        watch.stop.set()
        thread.join(10)


def wait(what: str, check: Any, deadline: float) -> Any:
    """Poll `check` until it returns something true, or fail naming `what`."""
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # the operator's pace; every wait has a deadline


def dispatches(town: Path) -> list[tuple[int, str, str, str]]:
    return [
        (int(b), str(a), str(s), str(o))
        for b, a, s, o in rows(town, "SELECT bead_id, agent, state, outcome FROM dispatches")
    ]


def passes(town: Path) -> int:
    """Dispatch passes the daemon has logged (one `dispatch.pass` line each)."""
    text = (town / ".tundra" / "logs" / "daemon.log").read_text()
    return text.count('"dispatch.pass"')


def log_tokens(town: Path) -> tuple[int, int, int]:
    """Input and output tokens and samples the demo agents logged (one per message and
    request, as the readers count them)."""
    seen: dict[str, tuple[int, int]] = {}
    for path in (town / ".tundra" / "usage").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("type") != "assistant":
                continue
            message = record["message"]
            usage = message.get("usage", {})
            key = f"{message['id']}:{record.get('requestId', '')}"
            seen[key] = (int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
    return (sum(i for i, _ in seen.values()), sum(o for _, o in seen.values()), len(seen))


def test_costs_pauses_and_the_brake_in_one_daemon_run(tmp_path: Path) -> None:
    scenario = tmp_path / "limit.json"
    scenario.write_text(json.dumps([{"expect": "limit me", "limit": "2 minutes"}]))
    crew = {"runtime": "demo", "role": "crew", "worktree": True, "start": True}
    with git_town(
        orchestra={"max_polecats": 0},
        daemon={"kpi_snapshot_interval_seconds": 1},
        agents={
            "a": {
                **crew,
                "lanes": ["critical", "standard"],
                "account": "acct-a",
                "args": [*DEMO, "--scenario", str(scenario)],
            },
            "b": {**crew, "lanes": ["standard"], "account": "acct-b", "args": DEMO},
        },
    ) as town:
        first, *rest = asyncio.run(seed(town))
        deadline = time.monotonic() + DEADLINE
        at(town, "daemon", "start")
        with watching(town) as watch:
            at(town, "up", timeout=60)

            # 1. `a` shows the limit after bead 1: its account is paused, `b`'s is not.
            wait("the rate limit", lambda: "rate limited" in watch.kinds(), deadline)
            pauses = {p["account"]: p for p in status(town)["pauses"]}
            pause = pauses["acct-a"]
            now = datetime.now(UTC)
            until = parse_iso(pause["until"])
            assert now + timedelta(minutes=1) < until < now + timedelta(minutes=3), pause
            assert pause["parsed"] and pause["agent"] == "a"
            assert "acct-b" not in pauses

            # 2. Beads 2.. go to `b` only; the brake stops the next claim once the budget
            # (set from what two beads cost) is spent.
            def two_done() -> bool:
                return sum(1 for *_, o in dispatches(town) if o == "submitted") >= 2

            wait("two beads submitted", two_done, deadline)

            def spent() -> float:
                [(usd,)] = rows(town, "SELECT coalesce(sum(cost_usd), 0) FROM metrics")
                return float(usd)

            # 60% of a budget over a 50% warning line: a warning, and dispatch goes on until
            # `b`'s next beads spend the rest. (At 85% of one, a bead of `b`'s landing while
            # the budget was being set took the spend past 100%: a stop, and no warning.
            # One bead costs about half of what two did: 30% here, so 90% at worst.)
            at(town, "config", "set", "costs.warn_percent", "50")
            at(town, "config", "set", "costs.daily_budget_usd", f"{spent() / 0.6:.6f}")
            wait("the budget warning", lambda: "budget warning" in watch.kinds(), deadline)

            wait("the budget stop", lambda: "budget stop" in watch.kinds(), deadline)
            halted = status(town)
            reasons = {w["reason"] for w in halted["waiting"]}
            assert reasons <= {"budget"}, halted["waiting"]
            [row] = [b for b in halted["budgets"] if b["level"] == "stop"]
            assert row["text"].startswith("budget: $")
            assert "today (costs.daily_budget_usd)" in row["text"]

            # Running work finishes: every open dispatch closes as submitted.
            def settled() -> bool:
                return all(s == "closed" for _, _, s, _ in dispatches(town))

            wait("the running bead to be submitted", settled, deadline)
            held = len(dispatches(town))
            # Two more dispatch passes (a config change wakes one each) claim nothing.
            for percent in (81, 82):
                before = passes(town)
                at(town, "config", "set", "costs.warn_percent", str(percent))
                wait("a dispatch pass", lambda before=before: passes(town) > before, deadline)
            assert len(dispatches(town)) == held, "a bead was claimed over budget"
            assert all(o == "submitted" for *_, o in dispatches(town))
            assert all(a == "b" for b, a, _, _ in dispatches(town) if b != first)

            # 3. The operator raises the budget: the next bead is claimed.
            at(town, "config", "set", "costs.daily_budget_usd", f"{spent() * 4:.6f}")

            def claimed() -> bool:
                return len(dispatches(town)) > held

            wait("a claim after the raise", claimed, deadline)

            # 4. Every sample the logs hold is recorded, each on a bead or under no bead.
            # (`b` keeps working after the raise: compare at a moment the two agree.)
            def recorded() -> dict[str, Any] | None:
                report = json.loads(at(town, "cost", "--by", "bead", "--json").stdout)
                total = report["total"]
                got = (total["input_tokens"], total["output_tokens"], total["samples"])
                on_beads = sum(r["samples"] for r in report["rows"] if r["key"])
                whole = on_beads + report["no_bead"]["samples"] == total["samples"]
                return report if whole and got == log_tokens(town) else None

            report = wait("at cost to match the logs", recorded, deadline)
            assert {int(r["key"]) for r in report["rows"] if r["key"]} >= {first, rest[0]}
            # Each launch is recorded (whose logs are whose), with its account.
            runs = rows(town, "SELECT agent, runtime, role, account, pid FROM agent_runs")
            assert {r[:4] for r in runs} == {
                ("a", "demo", "crew", "acct-a"),
                ("b", "demo", "crew", "acct-b"),
            }
            assert all(r[4] for r in runs)
            kpi = json.loads(at(town, "status", "--json").stdout)["kpi"]
            assert kpi is not None and kpi["window_seconds"] == 1

            # 5. The subscribed client heard the pause, the warning and the stop.
            assert watch.error is None, watch.error
            kinds = watch.kinds()
            assert {"rate limited", "budget warning", "budget stop"} <= set(kinds), kinds
