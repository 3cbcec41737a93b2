"""`at cost`: every grouping, the windows, the JSON, unpriced usage, one bead's waste, the
forecast, budgets, the override and pauses; on one seeded town (no daemon: it reads the
store), mostly in-process, with three real subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tundra_tui.cli import main
from tundra_tui.domain.clock import iso
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import open_store
from tundra_tui.town import Town
from tundra_tui.usage.analysis import day_start
from tundra_tui.usage.reports import GROUPS

NOW = datetime.now(UTC)
TODAY = day_start(NOW) + timedelta(seconds=1)
"""Today's samples sit just after midnight UTC, so they are today and in the past."""
ROW_KEYS = {
    "key",
    "label",
    "samples",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "priced",
    "unpriced_samples",
    "unpriced_tokens",
    "logged_cost_usd",
}


def at_(when: datetime) -> str:
    return iso(when)


def sample(
    when: datetime,
    agent: str,
    key: str,
    *,
    cost: float,
    bead: int | None = None,
    dispatch: int | None = None,
    model: str = "claude-opus-5-5",
    priced: bool = True,
    role: str = "polecat",
    logged: float | None = None,
) -> UsageSample:
    return UsageSample(
        at=at_(when),
        agent=agent,
        model=model,
        runtime="claude",
        bead_id=bead,
        input_tokens=1000,
        output_tokens=100,
        cache_read_tokens=2000,
        cache_write_tokens=300,
        cost_usd=cost if priced else 0.0,
        source_key=key,
        role=role,
        dispatch_id=dispatch,
        priced=priced,
        price_source="genai-prices 0.2.5" if priced else "",
        logged_cost_usd=logged,
    )


async def _seed(root: Path) -> None:
    store = await open_store(Town(root).db_path)
    try:
        login = await store.beads.add("Fix [bold]login[/bold]", actor="op")
        await store.beads.add("Write docs", actor="op")
        await store.convoys.create("alpha", actor="op")
        await store.convoys.add("alpha", [login.id], actor="op")
        start = TODAY
        async with store.db.write() as conn:
            # Two attempts at #1: polecat-1 gave it back, crew-1's was submitted and kept.
            for agent, kind, outcome, begin, end in (
                ("polecat-1", "polecat", "returned", start, start + timedelta(seconds=10)),
                (
                    "crew-1",
                    "crew",
                    "submitted",
                    start + timedelta(seconds=20),
                    start + timedelta(seconds=40),
                ),
            ):
                await conn.execute(
                    "INSERT INTO dispatches (bead_id, agent, kind, state, outcome, ready_at, "
                    "claimed_at, closed_at) VALUES (?, ?, ?, 'closed', ?, ?, ?, ?)",
                    (login.id, agent, kind, outcome, at_(begin), at_(begin), at_(end)),
                )
            await conn.execute(
                "UPDATE beads SET status = 'done', done_at = ? WHERE id = ?",
                (at_(start + timedelta(seconds=50)), login.id),
            )
        await store.metrics.record(
            [
                sample(start, "polecat-1", "k1", cost=0.50, bead=1, dispatch=1),
                sample(
                    start + timedelta(seconds=25),
                    "crew-1",
                    "k2",
                    cost=0.25,
                    bead=1,
                    dispatch=2,
                    role="crew",
                    logged=0.40,
                ),
                sample(
                    start + timedelta(seconds=26),
                    "crew-1",
                    "k3",
                    cost=0.0,
                    bead=1,
                    dispatch=2,
                    role="crew",
                    model="fake-model",
                    priced=False,
                ),
                sample(start + timedelta(seconds=30), "mayor", "k4", cost=0.10, role="mayor"),
                sample(start - timedelta(hours=12), "mayor", "k5", cost=1.0, role="mayor"),
                sample(start - timedelta(days=3), "mayor", "k6", cost=2.0, role="mayor"),
            ]
        )
    finally:
        await store.close()


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cost") / "town"
    assert main(["init", str(root)]) == 0
    asyncio.run(_seed(root))
    return root


def run(capsys: pytest.CaptureFixture[str], town: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--town", str(town), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cost_json(capsys: pytest.CaptureFixture[str], town: Path, *argv: str) -> dict[str, object]:
    code, out, err = run(capsys, town, "cost", *argv, "--json")
    assert code == 0, err
    document: dict[str, object] = json.loads(out)
    return document


def test_every_grouping_adds_up_to_the_total(
    town: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for by in GROUPS:
        doc = cost_json(capsys, town, "--by", by, "--since", "today")
        rows = doc["rows"]
        total = doc["total"]
        assert isinstance(rows, list) and isinstance(total, dict)
        assert doc["by"] == by
        assert sum(r["input_tokens"] for r in rows) == total["input_tokens"] == 4000, by
        assert sum(r["samples"] for r in rows) == total["samples"] == 4, by
        assert all(set(r) == ROW_KEYS for r in rows), by
    agents = {r["key"]: r for r in cost_json(capsys, town, "--by", "agent")["rows"]}
    assert set(agents) == {"polecat-1", "crew-1", "mayor"}
    beads = {r["key"]: r for r in cost_json(capsys, town, "--by", "bead")["rows"]}
    assert beads["1"]["label"] == "Fix [bold]login[/bold]"
    assert beads[""]["samples"] == 1  # spend with no bead is its own row, never spread
    convoys = {r["key"] for r in cost_json(capsys, town, "--by", "convoy")["rows"]}
    assert convoys == {"alpha", ""}
    roles = {r["key"] for r in cost_json(capsys, town, "--by", "role")["rows"]}
    assert roles == {"polecat", "crew", "mayor"}


def test_the_json_document_has_every_key(town: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = cost_json(capsys, town)
    assert set(doc) == {
        "since",
        "until",
        "by",
        "rows",
        "total",
        "unpriced_models",
        "logged",
        "no_bead",
    }
    total = doc["total"]
    assert isinstance(total, dict)
    assert set(total) == (ROW_KEYS - {"key", "label"}) | {"price_sources"}
    assert total["price_sources"] == ["genai-prices 0.2.5"]
    assert total["priced"] is False and total["unpriced_tokens"] == 3400
    assert doc["unpriced_models"] == [{"runtime": "claude", "model": "fake-model", "tokens": 3400}]
    assert doc["no_bead"] == {"cost_usd": pytest.approx(0.10), "samples": 1}
    assert doc["by"] == "agent" and doc["since"] == iso(day_start(datetime.now(UTC)))


@pytest.mark.parametrize(
    ("since", "samples"),
    [
        ("today", 4),
        ("yesterday", 5),
        ("2d", 5),
        ("7d", 6),
        ("all", 6),
        ((NOW - timedelta(days=2)).date().isoformat(), 5),
        (iso(TODAY - timedelta(hours=13)), 5),
    ],
)
def test_since_forms(
    town: Path, capsys: pytest.CaptureFixture[str], since: str, samples: int
) -> None:
    assert cost_json(capsys, town, "--since", since)["total"]["samples"] == samples  # type: ignore[index]


def test_until_and_a_bad_time(town: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = cost_json(capsys, town, "--since", "all", "--until", "today")
    assert doc["total"]["samples"] == 2  # type: ignore[index]
    code, _, err = run(capsys, town, "cost", "--since", "last tuesday")
    assert code == 2 and err.count("\n") == 1 and "cannot read the time" in err


def test_unpriced_is_never_shown_as_zero_dollars(
    town: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, town, "cost", "--by", "model")
    assert code == 0
    fake = next(line for line in out.splitlines() if line.startswith("fake-model"))
    assert "unknown (unpriced)" in fake and "$0.00" not in fake
    total = next(line for line in out.splitlines() if line.startswith("Total"))
    assert "$0.85 + unpriced (3.4k tok)" in total
    assert 'set its price in [costs.prices."fake-model"]' in out
    assert "Priced with genai-prices 0.2.5 (3 calls)." in out
    assert "No bead on the hook: $0.10 over 1 call" in out
    # the CLI logged $0.40 where our table says $0.25 for crew-1's calls: both are shown
    assert "(crew-1): the CLI logged $0.4000, our table says $0.2500." in out


def test_one_bead_with_its_waste(town: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, town, "cost", "bead", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["convoy"] == "alpha" and doc["status"] == "done"
    assert [(a["agent"], a["verdict"]) for a in doc["attempts"]] == [
        ("polecat-1", "waste"),
        ("crew-1", "kept"),
    ]
    assert doc["waste"]["cost_usd"] == pytest.approx(0.50)
    assert doc["kept"]["cost_usd"] == pytest.approx(0.25)
    assert doc["kept"]["priced"] is False  # crew-1's attempt used the unpriced model too
    code, out, _ = run(capsys, town, "cost", "bead", "#1")
    assert code == 0
    assert "[bold]" in out  # a title is shown as text, never as markup
    assert "Kept: $0.25 + unpriced (3.4k tok) · waste: $0.50" in out


def test_forecast_states_its_method(town: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, town, "cost", "forecast", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["method"].startswith("mean daily spend of the last N full days")
    assert doc["basis_days"] == 3
    # full days: 3 days ago $2, the day before yesterday $0, yesterday $1 (or $0 at night)
    assert doc["mean_daily_usd"] * 3 == pytest.approx(3.0)
    assert doc["next_30_days_usd"] == pytest.approx(30.0)
    code, out, _ = run(capsys, town, "cost", "forecast")
    assert "Method: mean daily spend" in out and "Next 30 days: $30.00" in out


def test_budget_override_and_pauses(town: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, town, "config", "set", "costs.daily_budget_usd", "0.5")[0] == 0
    try:
        code, out, _ = run(capsys, town, "cost", "budget", "--json")
        doc = json.loads(out)
        assert doc["level"] == "stop"
        day = doc["budgets"][0]
        assert day["scope"] == "day" and day["key"] == "costs.daily_budget_usd"
        assert day["spent_usd"] == pytest.approx(0.85) and day["unpriced_tokens"] == 3400
        code, out, _ = run(capsys, town, "cost", "budget")
        assert "at least $0.85 of $0.50" in out
        code, out, _ = run(capsys, town, "dispatch", "status")  # no daemon: the store's view
        assert "budget: at least $0.85 of $0.50 today (costs.daily_budget_usd)" in out
        code, out, _ = run(capsys, town, "cost", "override", "--for", "2h", "--reason", "demo day")
        assert code == 0 and "override until" in out
        doc = json.loads(run(capsys, town, "cost", "budget", "--json")[1])
        assert doc["level"] == "overridden" and doc["override_reason"] == "demo day"
        assert run(capsys, town, "cost", "override", "--clear")[0] == 0
        assert json.loads(run(capsys, town, "cost", "budget", "--json")[1])["level"] == "stop"
    finally:
        run(capsys, town, "config", "set", "costs.daily_budget_usd", "0")

    async def pause() -> None:
        store = await open_store(Town(town).db_path)
        try:
            await store.usage.pause_account(
                account="acct-a",
                runtime="claude",
                agent="crew-1",
                until=iso(datetime.now(UTC) + timedelta(minutes=10)),
                shown="Claude usage limit reached · resets in 10 minutes",
                reset_parsed=True,
                actor="test",
            )
        finally:
            await store.close()

    asyncio.run(pause())
    code, out, _ = run(capsys, town, "cost", "limits")
    assert "rate limited: account acct-a until" in out and "shown by crew-1" in out
    assert run(capsys, town, "cost", "limits", "clear", "acct-a")[0] == 0
    assert "No account is paused." in run(capsys, town, "cost", "limits")[1]
    code, _, err = run(capsys, town, "cost", "limits", "clear", "acct-a")
    assert code == 2 and "is not paused" in err


def test_real_processes(town: Path) -> None:
    """What a user types, in three processes: the table, the forecast, and `at status`."""
    base = [sys.executable, "-m", "tundra_tui", "--town", str(town)]

    def at(*argv: str) -> str:
        done = subprocess.run([*base, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    table = at("cost", "--by", "bead")
    assert "#1 Fix [bold]login[/bold]" in table and "(no bead)" in table
    assert "Method:" in at("cost", "forecast")
    status = json.loads(at("status", "--json"))
    assert status["costs"]["today_usd"] == pytest.approx(0.85)
    assert status["costs"]["unpriced_tokens_today"] == 3400
    assert status["costs"]["unpriced_tokens_month"] == 3400  # month_usd is a floor too
    assert status["costs"]["brake"]["level"] == "ok"
    assert "kpi" in status
