"""SVG snapshots of every tab and of the approval, help and palette modals, on demo data.

Deterministic by construction: a fixed clock, the demo town seeded from that clock at a fixed
path, a scripted daemon (fixed states, screens and one pending approval), a private HOME with
fixed MCP settings, watchers and timers off, UTC. Update with `pytest --snapshot-update`
after checking the new pictures in snapshots/.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from history_fake import FakeHistory
from recap_seed import T0, Clock, away_story
from textual.app import App
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input
from ui_harness import FakeLink, demo_events, fixed_clock, pending

from tundra_tui.config import load_config
from tundra_tui.daemon.protocol import (
    AgentList,
    AgentRow,
    Agents,
    ApprovalEvent,
    AttemptRow,
    History,
    RefineryQuery,
    RefineryStatus,
    RuleInfo,
    RuleList,
    Rules,
    Run,
)
from tundra_tui.daemon.refinery_status import read_status
from tundra_tui.demo_town import ensure_demo_town
from tundra_tui.domain.beads import Action, BeadStatus
from tundra_tui.domain.clock import iso
from tundra_tui.domain.refinery import GateResult, Outcome, Strategy, ToBacklog
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.live import LiveModel
from tundra_tui.ui.modals.rules import RulesModal
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.recap import RecapPanel

pytestmark = pytest.mark.xdist_group("snapshots")  # one worker: they share ROOT

ROOT = Path("/tmp/tundra-snapshots")
"""A fixed place: paths shown on screen (config layers, MCP sources) must not vary by run."""

SIZES = {"small": (80, 24), "large": (160, 48)}

SESSIONS = AgentList(
    agents=[
        AgentRow(name="mayor", state="working", glyph="@", runtime="demo", pid=4101,
                 uptime=5423.0, rss_kib=18432, cpu_seconds=12.5),
        AgentRow(name="polecat-1", state="awaiting_approval", glyph="!", runtime="demo",
                 pid=4102, uptime=5420.0, rss_kib=17920, cpu_seconds=8.0),
        AgentRow(name="witness", state="idle", glyph="*", runtime="demo", pid=4103,
                 uptime=5419.0, rss_kib=17408, cpu_seconds=3.25),
        AgentRow(name="crew-1", state="working", glyph="@", runtime="demo", pid=4104,
                 uptime=5418.0, rss_kib=18000, cpu_seconds=10.0),
    ]
)  # fmt: skip


@pytest.fixture(scope="module")
def demo_root() -> Iterator[Path]:
    """The demo town and a HOME with MCP settings, created once from the fixed clock."""
    shutil.rmtree(ROOT, ignore_errors=True)
    home = ROOT / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".claude.json").write_text(
        '{"mcpServers": {"github": {"command": "/opt/absent/github-mcp", "args": ["-y", '
        '"@modelcontextprotocol/server-github"], "env": {"GITHUB_TOKEN": "ghp_secret"}}}}\n'
    )
    (home / ".codex" / "config.toml").write_text(
        '[mcp_servers.docs]\ncommand = "/usr/bin/env"\nargs = ["docs-mcp"]\n'
        '[mcp_servers.docs.env]\nAPI_KEY = "sk-secret"\n'
    )
    asyncio.run(ensure_demo_town(ROOT / "demo-town", clock=fixed_clock))
    asyncio.run(_merge_one(Town(ROOT / "demo-town")))
    yield ROOT
    shutil.rmtree(ROOT, ignore_errors=True)


GATE = "python3 -m unittest discover -q -s tests -t ."
RED_TAIL = (
    "F\n======================================================================\n"
    "FAIL: test_bead_files (tests.test_beads.BeadFiles.test_bead_files)\n"
    "AssertionError: beads/{id}.md has a TODO line\n\nRan 1 test in 0.004s\n\nFAILED (failures=1)\n"
)


async def _merge_one(town: Town) -> None:
    """Give the demo one bead with the refinery's whole trail: a red gate sent it back,
    its second attempt passed and merged. The Beads tab then shows ● and the detail its
    evidence (the demo's own history claims no merge)."""
    store = await open_store(town.db_path, clock=fixed_clock)
    try:
        review = await store.beads.find(status=BeadStatus.REVIEW)
        for waiting in review[1:3]:  # two more wait in the queue (one being merged)
            if not waiting.branch:
                await store.beads.edit(
                    waiting.id, actor="daemon", branch=f"polecat/{waiting.assignee}/{waiting.id}"
                )
        if not review:
            return
        bead = review[0]
        agent = bead.assignee or "polecat-1"
        if not bead.branch:
            bead = await store.beads.edit(
                bead.id, actor="daemon", branch=f"polecat/{agent}/{bead.id}"
            )
        for n, ok in ((1, False), (2, True)):
            attempt = await store.merges.begin(
                bead.id,
                agent=agent,
                branch=bead.branch,
                branch_tip=f"{n}" * 40,
                commits=[(f"{n}" * 40, f"bead #{bead.id}: {bead.title}")],
                strategy=Strategy.REBASE,
                target="refs/heads/main",
                target_before="a" * 40,
                actor="refinery",
            )
            assert attempt is not None
            await store.merges.gate_started(attempt.id, 0, GATE, log_path="")
            result = GateResult(
                idx=0,
                command=GATE,
                ok=ok,
                exit_code=0 if ok else 1,
                seconds=0.8 if ok else 0.7,
                tail="." if ok else RED_TAIL.format(id=bead.id),
            )
            await store.merges.gate_finished(attempt.id, result, actor="refinery")
            if not ok:
                await store.merges.reject(
                    attempt.id,
                    Outcome.GATE_FAILED,
                    reason="gate 1 failed",
                    then=ToBacklog(note=f"rework #{bead.id}: gate"),
                    actor="refinery",
                )
                await store.beads.sling(bead.id, agent, actor="daemon")
                await store.beads.apply(bead.id, Action.SUBMIT, actor=agent, reason="fixed")
                continue
            assert await store.merges.verified(attempt.id, result_commit="c" * 40, actor="refinery")
            await store.merges.merged(attempt.id, actor="refinery")
    finally:
        await store.close()


async def _live_status(town: Town) -> RefineryStatus:
    """What the scripted daemon says of its refinery: the store's queue and recent results,
    with the first queued bead being merged (its gate running for 3 s)."""
    store = await open_store(town.db_path, clock=fixed_clock)
    try:
        status = await read_status(store, load_config(town), target="main")
    finally:
        await store.close()
    if not status.queue:
        return status
    head, *rest = status.queue
    current = AttemptRow(
        id=99, bead=head.bead, title=head.title, n=1, agent=head.agent, branch=head.branch,
        target="refs/heads/main", state="running",
    )  # fmt: skip
    return msgspec.structs.replace(
        status,
        state="merging",
        current=current,
        queue=rest,
        step=f"gate 1/1 `{GATE}`",
        step_since=(fixed_clock() - timedelta(seconds=3)).isoformat(),
    )


@pytest.fixture(scope="module")
def refinery(demo_root: Path) -> RefineryStatus:
    return asyncio.run(_live_status(Town(demo_root / "demo-town")))


class SnapshotApp(TundraApp):
    """Opens the store inside the app's own event loop (snap_compare runs its own)."""

    async def on_load(self) -> None:
        self.services.store = await open_store(self.services.town.db_path, clock=fixed_clock)

    async def on_unmount(self) -> None:
        await self.services.store.close()


@pytest.fixture
def make_app(
    demo_root: Path, refinery: RefineryStatus, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., TundraApp]:
    monkeypatch.setenv("HOME", str(demo_root / "home"))
    monkeypatch.delenv("CODEX_HOME", raising=False)

    def make(**kw: Any) -> TundraApp:
        link = FakeLink(demo_events())
        link.answers[Agents] = SESSIONS
        link.answers[RefineryQuery] = refinery
        services = Services(
            town=Town(demo_root / "demo-town"),
            store=cast(Store, None),
            link=link,
            live=LiveModel(),
            clock=fixed_clock,
        )
        kw.setdefault("approval_popup", False)
        return SnapshotApp(services, watch_files=False, clock_interval=0, **kw)

    return make


async def settle(pilot: Pilot[Any]) -> None:
    """Until the scripted events are applied and no pane is reloading."""
    app = cast(TundraApp, pilot.app)
    for _ in range(100):
        await pilot.pause(0.02)
        if not app._reloading and not app.first_shows and len(app.services.live.agents) >= 4:
            break
    await pilot.pause(0.1)


def keys(*pressed: str) -> Callable[[Pilot[Any]], Any]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run


TABS = [
    "dashboard",
    "agents",
    "beads",
    "sessions",
    "convoys",
    "costs",
    "analytics",
    "config",
    "mcp",
]


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("number", range(1, 10), ids=TABS)
def test_tab(number: int, size: str, make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    assert snap_compare(make_app(), run_before=keys(str(number)), terminal_size=SIZES[size])


def test_approval_modal(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    app = make_app(approval_popup=True)
    app.arm_seconds = 0
    assert snap_compare(app, run_before=keys(), terminal_size=SIZES["small"])


def test_help_modal(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    assert snap_compare(make_app(), run_before=keys("question_mark"), terminal_size=(100, 30))


def test_palette(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    async def searched(pilot: Pilot[Any]) -> None:
        """Until every provider's hits are in: the palette gathers them in a worker of its own
        (`workers` is the app's, all of them), and shows those that came first meanwhile."""
        await keys("colon", "b", "e", "a", "d")(pilot)
        deadline = time.monotonic() + 10
        while not (
            isinstance(palette := pilot.app.screen, CommandPalette)
            and not any(w.is_running for w in pilot.app.workers if w.node is palette)
        ):
            assert time.monotonic() < deadline, "the palette's search never finished"
            await pilot.pause(0.02)
        palette.query_one(Input).cursor_blink = False  # a blinking cursor is drawn by the clock
        await pilot.pause()

    app = make_app()
    # The key-bound actions only: hits of equal score from two providers arrive in either
    # order (the verbs have their own snapshot, test_verb_picker).
    app.COMMANDS = App.COMMANDS  # type: ignore[misc]
    assert snap_compare(app, run_before=searched, terminal_size=(100, 30))


def test_agents_scrollback(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """A zoomed tile scrolled a page back through its agent's history (a test log), the
    indicator in its border."""

    def result(n: int) -> list[Run]:
        word, colour = ("FAILED", "red") if n % 9 == 4 else ("PASSED", "green")
        test = f"tests/test_board.py::test_move_{n} "
        return [
            (test, "default", "default", False, False, False, False),
            (word, colour, "default", True, False, False, False),
        ]

    app = make_app()
    history = FakeHistory([result(n) for n in range(240)])
    cast(FakeLink, app.services.link).answers[History] = history.answer
    assert snap_compare(
        app,
        run_before=keys("2", "home", "z", "left_square_bracket"),
        terminal_size=SIZES["small"],
    )


def test_bead_detail(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The merged bead's detail (the first Done card): its grade, both attempts with their
    gate, the red gate's output tail, and the commits."""
    assert snap_compare(
        make_app(), run_before=keys("3", "l", "l", "l", "l", "enter"), terminal_size=SIZES["large"]
    )


@pytest.mark.parametrize("size", sorted(SIZES))
def test_bead_timeline(size: str, make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The same bead's detail scrolled to its end: the timeline (dispatched, approvals,
    submits, gates, the merge and the cost), at both sizes."""
    assert snap_compare(
        make_app(),
        run_before=keys("3", "l", "l", "l", "l", "enter", "end"),
        terminal_size=SIZES[size],
    )


def test_record_modal(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The flight recorder's question on the Agents tab: the agent, what it was detected as
    and by which rule, and the four answers."""
    assert snap_compare(make_app(), run_before=keys("2", "home", "d"), terminal_size=(100, 30))


def _waiting(approval_id: int, agent: str, subject: str, minutes: int, **kw: Any) -> ApprovalEvent:
    """A pending request opened `minutes` before the fixed clock's now."""
    event = pending(
        approval_id, agent, subject, **{k: kw.pop(k) for k in ("tool", "source") if k in kw}
    )
    created = iso(fixed_clock() - timedelta(minutes=minutes))
    info = msgspec.structs.replace(event.approval, created_at=created, **kw)
    return ApprovalEvent(approval=info)


@pytest.mark.parametrize("size", sorted(SIZES))
def test_inbox(size: str, make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The approval inbox (`I`): the demo's request and three more, one with hidden
    characters made visible, one deny-listed (⚠), the first selected with space."""
    app = make_app()
    link = cast(FakeLink, app.services.link)
    link.push(_waiting(42, "crew-1", "npm test -- --watch=false", 3, source="hook"))
    link.push(_waiting(43, "witness", "cat notes.txt\u202e\u200b; echo [b]done[/b]", 7))
    link.push(
        _waiting(44, "mayor", "git push --force origin main", 12, source="hook",
                 denied_shape="a force push")
    )  # fmt: skip
    assert snap_compare(app, run_before=keys("I", "space"), terminal_size=SIZES[size])


def test_rules_modal(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The always-allow rules (`R` in the inbox): two rules, one with a hostile command."""
    app = make_app()
    made = iso(fixed_clock() - timedelta(days=1))
    cast(FakeLink, app.services.link).answers[Rules] = RuleList(
        rules=[
            RuleInfo(id=1, agent="crew-1", tool="Bash", subject="npm test", created_at=made,
                     created_by="operator"),
            RuleInfo(id=2, agent="witness", tool="Bash", subject="cat [b]x[/b]\u202e.txt",
                     created_at=made, created_by="operator"),
        ]
    )  # fmt: skip

    async def listed(pilot: Pilot[Any]) -> None:
        await keys("I", "R")(pilot)
        for _ in range(100):
            if isinstance(app.screen, RulesModal) and app.screen.loaded:
                break
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(app, run_before=listed, terminal_size=SIZES["small"])


@pytest.fixture
def story_town(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh town set up (its sample team's `agent.added` events) at a fixed time before
    the story: the activity list beside the recap shows events by date, and the real day
    the test ran on made the snapshot differ."""
    from tundra_tui.cli import context, main

    set_up = T0 - timedelta(hours=2)
    opened = functools.partial(context.open_store, clock=lambda: set_up)
    with monkeypatch.context() as patched:
        patched.setattr(context, "open_store", opened)
        assert main(["init", str(tmp_path / "town")]) == 0
    return tmp_path / "town"


@pytest.mark.parametrize("size", sorted(SIZES))
def test_recap(size: str, story_town: Path, snap_compare: Any) -> None:
    """ "While you were away" leading the Dashboard: three hours in which a bead merged,
    one failed, approvals waited, an agent crashed and the mayor wrote to the operator."""

    async def seed() -> None:
        clock = Clock(T0 - timedelta(hours=1))
        async with await open_store(Town(story_town).db_path, clock=clock) as store:
            await away_story(store, clock)

    asyncio.run(seed())
    services = Services(
        town=Town(story_town), store=cast(Store, None), link=FakeLink(), live=LiveModel(),
        clock=fixed_clock,
    )  # fmt: skip
    app = SnapshotApp(services, watch_files=False, clock_interval=0, approval_popup=False)

    async def shown(pilot: Pilot[Any]) -> None:
        for _ in range(200):
            await pilot.pause(0.02)
            panel = app.query_one(RecapPanel)
            if panel.display and not app._reloading and not app.first_shows:
                break
        await pilot.pause()

    assert snap_compare(app, run_before=shown, terminal_size=SIZES[size])


@pytest.mark.parametrize("size", sorted(SIZES))
def test_mail(size: str, make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The Mail view (`M`) on the demo's mail: threads per agent, the first one open."""
    assert snap_compare(make_app(), run_before=keys("M", "enter"), terminal_size=SIZES[size])


def test_mail_compose(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """Composing from the Mail view (`c`): recipient picked from the agents, subject, body."""
    assert snap_compare(make_app(), run_before=keys("M", "c"), terminal_size=SIZES["small"])


def test_agent_pick(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """`L` on a Backlog card: the agents to sling it to, and "let dispatch take it"."""
    assert snap_compare(make_app(), run_before=keys("3", "L"), terminal_size=SIZES["small"])


def test_verb_picker(make_app: Callable[..., TundraApp], snap_compare: Any) -> None:
    """The palette's `sling`: its first picker, the beads it can take."""
    assert snap_compare(
        make_app(),
        run_before=keys("colon", "s", "l", "i", "n", "g", "enter"),
        terminal_size=SIZES["small"],
    )
