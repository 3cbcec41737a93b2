"""The demo town: created once with a valid team and two weeks of history, then only reused."""

from __future__ import annotations

import asyncio
import os
import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ptyprocess
import pytest

from tundra_tui.config import load_config
from tundra_tui.demo_history import SimClock
from tundra_tui.demo_story import BEADS, HABITS
from tundra_tui.demo_town import DEMO_AGENTS, demo_town_root, ensure_demo_town
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.clock import iso
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.session.launch import agent_config
from tundra_tui.store import open_store
from tundra_tui.town import Town
from tundra_tui.usage.follower import UsageFollower, ingest, usage_dir

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # a Friday afternoon


def fixed() -> datetime:
    return NOW


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Town:
    """One demo town for the read-only tests (creating one takes most of a second)."""
    root = tmp_path_factory.mktemp("demo") / "demo-town"
    return asyncio.run(ensure_demo_town(root, clock=fixed))


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def dump(town: Town) -> dict[str, list[tuple[object, ...]]]:
    """Every table a pane reads, with the town's own path taken out."""
    tables = (
        "beads bead_deps bead_labels convoys mail events metrics approvals agents kpi_snapshots"
    )
    root = str(town.root)
    return {
        table: sorted(
            (
                tuple(v.replace(root, "<root>") if isinstance(v, str) else v for v in row)
                for row in rows(town.db_path, f"SELECT * FROM {table}")
            ),
            key=repr,
        )
        for table in tables.split()
    }


# ---- where ---------------------------------------------------------------------------------


def test_the_root_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert demo_town_root() == tmp_path / "auto-tundra" / "demo-town"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert demo_town_root() == Path.home() / ".local" / "share" / "auto-tundra" / "demo-town"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert demo_town_root() == Path.home() / ".local" / "share" / "auto-tundra" / "demo-town"


# ---- the team ------------------------------------------------------------------------------


def test_the_team_is_four_demo_agents_with_distinct_roles(demo: Town) -> None:
    config = load_config(demo)
    assert config.warnings == []
    team = config.agents()
    assert list(team) == ["mayor", "polecat-1", "witness", "crew-1"]
    assert len({spec.role for spec in team.values()}) == 4
    assert len({spec.model for spec in team.values()}) == 3
    assert all(spec.runtime is Runtime.DEMO and not spec.worktree for spec in team.values())
    assert config.get("general.name") == "demo-town"
    assert config.get("costs.daily_budget_usd") > 0


def test_each_agent_launches_the_demo_agent_logging_usage_into_the_town(demo: Town) -> None:
    for name, spec in load_config(demo).agents().items():
        argv = agent_config(spec, demo).launch.argv
        assert argv[1:3] == ["-m", "tundra_tui.demo_agent"]
        log = argv[argv.index("--usage-log") + 1]
        assert Path(log) == usage_dir(demo) / f"{name}.jsonl"
        assert argv[argv.index("--model") + 1] == spec.model
        assert "--auto-task" in argv
    rates = {a.name: a.approval_rate for a in DEMO_AGENTS}
    assert rates["polecat-1"] >= 0.5 and sorted(rates.values())[1] <= 0.1
    assert usage_dir(demo).is_dir()


def test_the_history_names_only_agents_of_the_team() -> None:
    team = {agent.name for agent in DEMO_AGENTS}
    assert {bead.assignee for bead in BEADS} - {""} <= team
    assert set(HABITS) == team


# ---- the history ---------------------------------------------------------------------------


async def test_beads_cover_every_status_lane_and_some_dependencies(demo: Town) -> None:
    async with await open_store(demo.db_path, clock=fixed) as store:
        counts = await store.beads.counts()
        beads = await store.beads.find()
        assert counts == {
            BeadStatus.BACKLOG: 7,
            BeadStatus.HOOKED: 2,
            BeadStatus.SLUNG: 2,
            BeadStatus.REVIEW: 2,
            BeadStatus.DONE: 6,
            BeadStatus.FAILED: 1,
            BeadStatus.ESCALATED: 1,
        }
        assert {b.lane for b in beads} == {b.lane for b in BEADS}
        assert len({b.priority for b in beads}) == 5
        assert sum(1 for b in beads if b.blocked_by) >= 4
        assert {b.assignee for b in beads} - {""} == {a.name for a in DEMO_AGENTS}
        assert "Show titles like [bold]x[/bold] literally in every pane" in {b.title for b in beads}
        ready = await store.beads.ready()
        assert ready and all(b.status is BeadStatus.BACKLOG for b in ready)


async def test_two_convoys_one_under_way_and_one_not_started(demo: Town) -> None:
    async with await open_store(demo.db_path, clock=fixed) as store:
        convoys = {c.name: c for c in await store.convoys.all()}
    assert convoys["login-v2"].status is ConvoyStatus.ACTIVE
    assert 0 < convoys["login-v2"].progress.done < convoys["login-v2"].progress.total
    assert convoys["docs-refresh"].status is ConvoyStatus.PENDING
    assert convoys["docs-refresh"].progress.total == 3


async def test_mail_events_approvals_and_agents(demo: Town) -> None:
    async with await open_store(demo.db_path, clock=fixed) as store:
        mail = await store.mail.find()
        assert len(mail) >= 6 and await store.mail.unread_count("operator") >= 2
        assert {m.sender for m in mail} & {"operator"} and any(m.urgent for m in mail)
        events = await store.events.find(limit=10_000)
        kinds = {e.kind.split(".")[0] for e in events}
        assert {"bead", "convoy", "mail", "agent", "approval"} <= kinds
        assert [e.at for e in events] == sorted(e.at for e in events)  # ids follow time
        assert await store.approvals.pending() == []
        assert all(a.state is AgentState.STOPPED for a in await store.agents.all())
        assert len(await store.metrics.snapshots()) >= 13 * 8


async def test_cost_history_spans_two_weeks_busier_on_weekdays(demo: Town) -> None:
    async with await open_store(demo.db_path, clock=fixed) as store:
        days = {row.key: row for row in await store.metrics.rollup("day")}
        by_agent = {row.key for row in await store.metrics.rollup("agent")}
        by_model = {row.key for row in await store.metrics.rollup("model")}
    assert len(days) >= 10
    first, last = min(days), max(days)
    assert datetime.fromisoformat(last) - datetime.fromisoformat(first) >= timedelta(days=12)
    assert last == "2026-11-20"
    assert days["2026-11-20"].cost_usd != days["2026-11-19"].cost_usd
    weekday = [r.cost_usd for k, r in days.items() if datetime.fromisoformat(k).weekday() < 5]
    weekend = [r.cost_usd for k, r in days.items() if datetime.fromisoformat(k).weekday() >= 5]
    assert min(weekday[:-1]) > max(weekend, default=0.0)  # today is still under way
    assert by_agent == {a.name for a in DEMO_AGENTS}
    assert by_model == {"demo-opus", "demo-sonnet", "demo-haiku"}


def test_the_story_happens_in_working_hours_on_weekdays(demo: Town) -> None:
    found = rows(
        demo.db_path, "SELECT at FROM events WHERE kind LIKE 'bead.%' OR kind LIKE 'mail.%'"
    )
    moments = [datetime.fromisoformat(str(at)) for (at,) in found]
    assert len(moments) > 50
    assert all(m.weekday() < 5 and 8 <= m.hour < 19 for m in moments)


def test_nothing_is_dated_after_the_clock(demo: Town) -> None:
    latest = iso(NOW)
    for table, column in (("events", "at"), ("metrics", "at"), ("beads", "updated_at")):
        [(newest,)] = rows(demo.db_path, f"SELECT max({column}) FROM {table}")
        assert isinstance(newest, str) and newest <= latest, table


# ---- once only -----------------------------------------------------------------------------


async def test_the_same_clock_gives_the_same_database(demo: Town, tmp_path: Path) -> None:
    again = await ensure_demo_town(tmp_path / "again", clock=fixed)
    assert dump(again) == dump(demo)
    later = await ensure_demo_town(tmp_path / "later", clock=lambda: NOW + timedelta(days=3))
    assert dump(later)["events"] != dump(demo)["events"]


async def test_a_second_call_reuses_the_town_and_keeps_user_edits(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    town = await ensure_demo_town(root, clock=fixed)
    edited = town.config_path.read_text().replace('name = "demo-town"', 'name = "mine"')
    town.config_path.write_text(edited)
    async with await open_store(town.db_path, clock=fixed) as store:
        await store.beads.add("added by the operator", actor="operator")
    inode = town.db_path.stat().st_ino
    again = await ensure_demo_town(root, clock=lambda: NOW + timedelta(days=1))
    assert again == town
    assert town.config_path.read_text() == edited
    assert town.db_path.stat().st_ino == inode
    [(count,)] = rows(town.db_path, "SELECT count(*) FROM beads")
    assert count == len(BEADS) + 1
    assert not [p for p in town.state_dir.iterdir() if p.name.startswith(".demo-seed")]


async def test_concurrent_first_calls_make_one_complete_town(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    towns = await asyncio.gather(*(ensure_demo_town(root, clock=fixed) for _ in range(2)))
    assert towns[0] == towns[1]
    [(count,)] = rows(towns[0].db_path, "SELECT count(*) FROM beads")
    assert count == len(BEADS)
    assert not [p for p in towns[0].state_dir.iterdir() if p.name.startswith(".demo-seed")]


def test_the_seeding_clock_stamps_what_it_is_set_to() -> None:
    clock = SimClock(NOW)
    clock.now = NOW - timedelta(days=2)
    assert (clock(), clock.start) == (NOW - timedelta(days=2), NOW)


# ---- a demo agent of the town, for real ----------------------------------------------------


@pytest.fixture
def polecat(demo: Town) -> Iterator[tuple[ptyprocess.PtyProcess, Path]]:
    spec = load_config(demo).agents()["polecat-1"]
    launch = agent_config(spec, demo).launch
    log = usage_dir(demo) / "polecat-1.jsonl"
    log.unlink(missing_ok=True)
    process = ptyprocess.PtyProcess.spawn(
        [*launch.argv, "--speed", "0"], cwd=str(demo.root), env=dict(launch.env)
    )
    yield process, log
    process.terminate(force=True)
    log.unlink(missing_ok=True)


def expect(process: ptyprocess.PtyProcess, text: bytes, seen: bytes = b"") -> bytes:
    deadline = time.monotonic() + 10
    while text not in seen:
        assert time.monotonic() < deadline, seen.decode(errors="replace")
        if select.select([process.fd], [], [], 0.1)[0]:
            seen += os.read(process.fd, 65536)
    return seen


async def test_polecat_asks_for_approval_and_its_usage_reaches_the_store(
    demo: Town, polecat: tuple[ptyprocess.PtyProcess, Path], tmp_path: Path
) -> None:
    process, log = polecat
    seen = expect(process, b"Allow this command?")
    process.write(b"1")
    expect(process, "demo❯".encode(), seen)
    async with await open_store(tmp_path / "copy.db", clock=fixed) as store:
        added = await ingest(
            store, UsageFollower([usage_dir(demo)], runtimes={"polecat-1": "demo"})
        )
        rows_ = await store.metrics.rollup("agent")
    assert added >= 3 and [(r.key, r.samples) for r in rows_] == [("polecat-1", added)]
    assert log.is_file()
