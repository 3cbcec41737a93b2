"""The demo town: created once as a git repository with a valid team and two weeks of history,
then only reused; `at up` on it takes work by itself."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ptyprocess
import pytest

from tundra_tui.config import load_config
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.usage import UsageWatcher, usage_dir
from tundra_tui.demo_agent.usage import town_log_path
from tundra_tui.demo_history import SimClock
from tundra_tui.demo_story import BEADS, CONVOYS, HABITS
from tundra_tui.demo_town import (
    DEMO_AGENTS,
    GATE,
    GATE_FILES,
    DemoAgent,
    demo_town_root,
    ensure_demo_town,
)
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.beads import BeadStatus, Lane
from tundra_tui.domain.clock import iso
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.session.launch import agent_config
from tundra_tui.store import open_store
from tundra_tui.town import Town

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # a Friday afternoon
PENDING = {key for _, _, _, keys, started in CONVOYS if started is None for key in keys}
"""Beads of convoys not started: not ready, whatever their priority."""


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
    assert demo_town_root() == tmp_path / "auto-tundra" / "demo-town-4"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert demo_town_root() == Path.home() / ".local" / "share" / "auto-tundra" / "demo-town-4"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert demo_town_root() == Path.home() / ".local" / "share" / "auto-tundra" / "demo-town-4"


# ---- the team ------------------------------------------------------------------------------


def test_the_team_is_four_demo_agents_with_distinct_roles(demo: Town) -> None:
    config = load_config(demo)
    assert config.warnings == []
    team = config.agents()
    assert list(team) == ["mayor", "polecat-1", "witness", "crew-1"]
    assert len({spec.role for spec in team.values()}) == 4
    assert len({spec.model for spec in team.values()}) == 4  # demo-mystery is unpriced
    assert all(spec.runtime is Runtime.DEMO for spec in team.values())
    assert {name for name, spec in team.items() if spec.worktree} == {"polecat-1", "crew-1"}
    assert {name for name, spec in team.items() if spec.start} == {"mayor", "crew-1"}
    assert team["crew-1"].lanes == (Lane.CRITICAL,)
    assert config.get("general.name") == "demo-town"
    assert config.get("costs.daily_budget_usd") > 0
    assert config.get("orchestra.polecat_runtime") == "demo"
    assert config.get("orchestra.max_polecats") == 2
    assert config.get("orchestra.target_branch") == "main"
    assert "--approval-rate" in config.get("runtimes.demo.args")


def test_each_agent_launches_the_demo_agent_logging_usage_into_the_town(demo: Town) -> None:
    for name, spec in load_config(demo).agents().items():
        launch = agent_config(spec, demo).launch
        assert launch.argv[1:3] == ["-m", "tundra_tui.demo_agent"]
        assert town_log_path(launch.env) == usage_dir(demo) / f"{name}.jsonl"
        assert launch.argv[launch.argv.index("--model") + 1] == spec.model
    rates = {a.name: a.approval_rate for a in DEMO_AGENTS}
    assert rates["polecat-1"] >= 0.3 and sorted(rates.values())[1] <= 0.1
    assert usage_dir(demo).is_dir()


def test_nothing_promises_work_that_does_not_happen(demo: Town) -> None:
    """Version 1 faked work with --auto-task and --keep-working; now dispatch gives it."""
    text = demo.config_path.read_text()
    for fake in ("auto-task", "keep-working", "--auto", "patrol"):
        assert fake not in text
    for spec in load_config(demo).agents().values():
        assert not {"--auto-task", "--keep-working"} & set(spec.args)


def test_the_town_is_a_git_repository_on_main_with_one_clean_commit(demo: Town) -> None:
    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(demo.root), *argv], capture_output=True, text=True, check=True
        )
        return done.stdout

    assert git("branch", "--show-current").strip() == "main"
    assert git("log", "--format=%an %s").splitlines() == ["operator The demo town"]
    assert git("status", "--porcelain", "--untracked-files=all") == ""
    assert set(git("ls-files").split()) == {".gitignore", "README.md", "tundra.toml", *GATE_FILES}
    assert git("check-ignore", ".tundra/town.db").strip() == ".tundra/town.db"


def test_the_demo_repository_has_a_real_gate_that_passes_on_main(demo: Town) -> None:
    """The refinery's gate is the repository's own stdlib tests: green on main (no bead file
    yet), red on a bead file with a TODO, and unittest only (a new user may have no pytest)."""
    config = load_config(demo)
    assert config.get("refinery.gates") == [GATE] and "pytest" not in GATE
    assert config.get("refinery.max_attempts") == 3
    run = subprocess.run(GATE, shell=True, cwd=demo.root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    beads = demo.root / "beads"
    beads.mkdir()
    try:
        (beads / "7.md").write_text("# #7: a bead\n\nTODO: later\n")
        run = subprocess.run(GATE, shell=True, cwd=demo.root, capture_output=True, text=True)
        assert run.returncode == 1 and "7.md is unfinished" in run.stderr
    finally:
        shutil.rmtree(beads)


def test_the_live_backlog_scripts_a_conflict_and_a_gate_failing_once() -> None:
    live = {b.key: b for b in BEADS if not b.steps}
    pair = [k for k, b in live.items() if "demo-changelog" in b.labels]
    ready = sorted(
        (b.lane.rank, b.priority, -b.created, k)
        for k, b in live.items()
        if not b.blocked_by and k not in PENDING
    )
    # The first two handed out start together from one main, whoever takes them (crew-1 for
    # the critical one when it is idle, else a polecat: there are two).
    assert sorted(pair) == sorted(k for *_, k in ready[:2])
    assert [k for k, b in live.items() if "demo-gate-fails-once" in b.labels] == ["report"]
    assert not any("demo-gate-fails-always" in b.labels for b in BEADS)


def test_the_history_names_only_agents_of_the_team() -> None:
    team = {agent.name for agent in DEMO_AGENTS}
    assert {bead.assignee for bead in BEADS} - {""} <= team
    assert set(HABITS) == team


# ---- the history ---------------------------------------------------------------------------


async def test_beads_cover_the_statuses_work_rests_in_and_some_dependencies(
    demo: Town,
) -> None:
    """No bead is left hooked or slung: those have a dispatch behind them, and the history
    has none; the live backlog is for dispatch to take."""
    async with await open_store(demo.db_path, clock=fixed) as store:
        counts = await store.beads.counts()
        beads = await store.beads.find()
        assert counts == {
            BeadStatus.BACKLOG: 13,
            BeadStatus.HOOKED: 0,
            BeadStatus.SLUNG: 0,
            BeadStatus.REVIEW: 4,
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
        assert len(ready) >= 5 and all(b.status is BeadStatus.BACKLOG for b in ready)
        assert ready[0].lane is Lane.CRITICAL  # crew-1's lane: it takes this one first


async def test_convoys_under_way_and_one_not_started(demo: Town) -> None:
    async with await open_store(demo.db_path, clock=fixed) as store:
        convoys = {c.name: c for c in await store.convoys.all()}
        chain = [await store.beads.get(n) for n in (22, 23, 24)]
    assert convoys["login-v2"].status is ConvoyStatus.ACTIVE
    assert 0 < convoys["login-v2"].progress.done < convoys["login-v2"].progress.total
    assert convoys["docs-refresh"].status is ConvoyStatus.PENDING
    assert convoys["docs-refresh"].progress.total == 3
    assert convoys["search"].status is ConvoyStatus.ACTIVE
    assert [b.title.split(":")[0] for b in chain] == ["search"] * 3
    assert [b.blocked_by for b in chain] == [(), (22,), (23,)]


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
    # Calls stop at midnight: today's spend is the live demo's (the daily budget counts it).
    assert last == "2026-11-19"
    assert days["2026-11-19"].cost_usd != days["2026-11-18"].cost_usd
    weekday = [r.cost_usd for k, r in days.items() if datetime.fromisoformat(k).weekday() < 5]
    weekend = [r.cost_usd for k, r in days.items() if datetime.fromisoformat(k).weekday() >= 5]
    assert min(weekday) > max(weekend, default=0.0)
    assert by_agent == {a.name for a in DEMO_AGENTS}
    assert by_model == {"demo-opus", "demo-sonnet", "demo-haiku", "demo-mystery"}
    async with await open_store(demo.db_path, clock=fixed) as store:
        unpriced = await store.metrics.unpriced_models()
        roles = {row.key for row in await store.metrics.rollup("role")}
        sources = await store.metrics.price_sources()
    assert [(runtime, model) for runtime, model, _ in unpriced] == [("demo", "demo-mystery")]
    assert roles == {"mayor", "polecat", "witness", "crew"}
    assert [source for source, _ in sources] == ["auto-tundra demo table", ""]


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
    expect(process, "demo❯ ".encode())
    process.write(b"RUN: ls")
    expect(process, b"RUN: ls")
    process.write(b"\r")
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
    daemon_log = DaemonLog(tmp_path / "daemon.log")
    async with await open_store(tmp_path / "copy.db", clock=fixed) as store:
        # The daemon's own reading of the town's usage logs, one pass.
        watcher = UsageWatcher(demo, store, lambda _event: None, daemon_log)
        assert await watcher.ingest()
        rows_ = await store.metrics.rollup("agent")
    daemon_log.close()
    assert [r.key for r in rows_] == ["polecat-1"] and rows_[0].samples >= 2
    assert log.is_file()


# ---- the demo takes work by itself ---------------------------------------------------------


def test_at_up_on_the_demo_town_runs_the_whole_loop() -> None:
    """`at up` (what `at tui --demo` sends) starts the team, dispatch and the refinery: the two
    changelog beads go to polecats together, the second to merge conflicts and is reworked by
    its agent's rebase; the weekly report fails its gate once and merges on its second try.
    Each merged bead's commit is on main, and the operator's checkout (on main) is untouched."""
    import json
    import tempfile

    from at_cli import at, git

    parent = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))  # a short socket path
    town = asyncio.run(ensure_demo_town(parent / "demo", clock=fixed))
    local = "".join(f"[agents.{a.name}]\nargs = {json.dumps(at_speed_0(a))}\n" for a in DEMO_AGENTS)
    local += '[runtimes.demo]\nargs = ["--speed", "0", "--approval-rate", "0.3"]\n'
    local += "[costs]\ndaily_budget_usd = 0.0\n"  # the brake has its own tests; not this loop
    (town.state_dir / "local.toml").write_text(local)
    index = (town.root / ".git" / "index").read_bytes()
    keys = {b.key: n for n, b in enumerate(sorted(BEADS, key=lambda b: -b.created), start=1)}
    story = {keys["webhooks"], keys["blank-title"], keys["report"]}
    pair = (keys["webhooks"], keys["blank-title"])
    # At speed 0 the first merge can beat a slow polecat's start (then nothing conflicts): the
    # refinery waits, paused, until both have their branch from the same main.
    at(town.root, "refinery", "pause", "--reason", "until the pair has branches")
    paused = True
    try:
        at(town.root, "up", timeout=60)
        deadline = time.monotonic() + 150
        while True:
            for waiting in json.loads(at(town.root, "approvals", "--json").stdout):
                at(town.root, "approve", str(waiting["id"]), check=False)
            listed = {
                b["id"]: b for b in json.loads(at(town.root, "bead", "list", "--json").stdout)
            }
            if paused and all(listed[n]["branch"] for n in pair):
                at(town.root, "refinery", "resume")
                paused = False
            merged = {
                n for n, b in listed.items() if (b["status"], b["grade"]) == ("done", "merged")
            }
            if story <= merged:
                break
            assert time.monotonic() < deadline, (
                {n: listed[n]["status"] for n in story},
                _log_tail(town.state_dir / "logs" / "daemon.log"),
            )
            time.sleep(0.2)  # the operator's pace; the loop has a deadline

        def outcomes(number: int) -> list[object]:
            found = rows(
                town.db_path,
                f"SELECT outcome FROM merge_attempts WHERE bead_id = {number} ORDER BY n",
            )
            return [o for (o,) in found]

        tries = sorted([outcomes(n) for n in pair])
        assert tries == [["conflict", "merged"], ["merged"]], tries
        assert outcomes(keys["report"]) == ["gate_failed", "merged"]
        for number in merged:
            commit = str(listed[number]["merged_commit"])
            git(town.root, "merge-base", "--is-ancestor", commit, "refs/heads/main")
        changelog = git(town.root, "show", "main:CHANGELOG.md")
        assert f"- #{keys['webhooks']} " in changelog and f"- #{keys['blank-title']} " in changelog
        assert (town.root / ".git" / "index").read_bytes() == index
        agents = json.loads(at(town.root, "agent", "list", "--json").stdout)
        running = {a["name"] for a in agents if a.get("pid")}
        assert {"mayor", "crew-1"} <= running and "witness" not in running
    finally:
        at(town.root, "down", check=False, timeout=60)
        at(town.root, "daemon", "stop", check=False)
        shutil.rmtree(parent, ignore_errors=True)


def _log_tail(log: Path) -> list[str]:
    """What the daemon said of mail, dispatch and the refinery last: why a bead is stuck."""
    if not log.exists():
        return []
    wanted = ("mail.", "refinery.", "dispatch.", "rework", "agent.state")
    lines = [line[:300] for line in log.read_text().splitlines() if any(w in line for w in wanted)]
    return lines[-40:]


def at_speed_0(agent: DemoAgent) -> list[str]:
    """The agent's args from the demo's tundra.toml, at speed 0 (set in local.toml)."""
    return ["--approval-rate", str(agent.approval_rate), "--seed", str(agent.seed), "--speed", "0"]
