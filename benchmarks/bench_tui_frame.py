"""`at tui`'s first frame against a minimal Textual app's, and tab switches under load (item 5).

    .venv/bin/python benchmarks/bench_tui_frame.py [--quick] [--runs 8] [--switches 60]
        [--recap-events 10000]

Targets: the first frame of `at tui` at most 1.5x the first frame of a minimal
Textual app (benchmarks/minimal_app.py) on the same machine in the same run; a tab
switch at most 100 ms p99 with 20 agents streaming.

Both apps run in panes of a private tmux server (120x36); a pane's shell waits on
`read` and then execs the app, so tmux's own start-up is not counted. A first frame
is the Enter that lets the app go until a capture shows its first screen (`at
tui`: the title bar and the dashboard's "Recent activity"; the minimal app: its
first pane). Captures are polled every ~2 ms over one tmux control client. The two
apps alternate, `--runs` launches each, first with the daemon up and no agent
running, then again with `--agents` agents streaming a test log at `--rate` bytes
a second each (benchmarks/gen_testlog.py).

With the agents streaming, one `at tui` first shows each tab of the cycle once (a tab's
first show composes its pane: timed, and reported on its own line), then cycles its tabs
1 -> 2 -> 3 -> 1 (dashboard, Agents with its live tiles, Beads) `--switches` times, each
switch timed from `send-keys` until the new tab's mark is on screen and the old one's gone;
the minimal app's `1`/`2` switch is timed the same way as the harness's baseline.

With `--recap-events N`, a town of its own is seeded with N events over the three hours
before now (a busy team's: beads slung and merged by the refinery, hooks, approvals, a
failure, a crash and mail now and then) and the operator last seen at their start, so
every `at tui` leads with a "while you were away" recap of them (the flag is set back
before each launch). Its first frame is timed against the minimal app's as above, and so
is the time until the recap is on screen.

Everything started here is torn down at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchlib import (
    BENCH_DIR,
    PY,
    ROOT,
    BenchTown,
    CpuMeter,
    NotShown,
    TmuxApp,
    TmuxControl,
    TmuxServer,
    generator,
    header,
    p,
    showing,
    spread,
    verdict,
)

WIDTH, HEIGHT = 120, 36
TARGET_RATIO = 1.5
TARGET_SWITCH_P99_MS = 100.0
TUI_FIRST = (" auto-tundra ", "Recent activity")
MINIMAL_FIRST = ("minimal first pane",)
MINIMAL = [PY, str(BENCH_DIR / "minimal_app.py")]
RECAP_MARK = "While you were away"


def first_frame(
    server: TmuxServer,
    ctl: TmuxControl,
    session: str,
    argv: list[str],
    env: dict[str, str],
    marks: tuple[str, ...],
) -> float:
    """Seconds from the Enter that starts the app until `marks` are all on screen."""
    app = TmuxApp(server, session, argv, env=env, ctl=ctl)
    try:
        started = app.launch()
        shown = app.until(showing(*marks), 60, f"{session}'s first frame")
        app.quit()
        return shown - started
    finally:
        app.close()


def first_frames(
    server: TmuxServer, ctl: TmuxControl, town: BenchTown, runs: int, tag: str
) -> tuple[list[float], list[float]]:
    """`runs` first frames of each app, alternating; seconds each."""
    env = {"HOME": str(town.home)}
    tui: list[float] = []
    minimal: list[float] = []
    for run in range(runs):
        tui.append(first_frame(server, ctl, f"{tag}t{run}", town.argv("tui"), env, TUI_FIRST))
        minimal.append(first_frame(server, ctl, f"{tag}m{run}", MINIMAL, env, MINIMAL_FIRST))
    return tui, minimal


def switch_latencies(
    app: TmuxApp, tabs: list[tuple[str, str]], switches: int, budget_s: float
) -> list[tuple[str, float]]:
    """(key, milliseconds) per switch through `tabs` (key, mark) in a cycle, until
    `budget_s` is up."""
    samples: list[tuple[str, float]] = []
    deadline = time.monotonic() + budget_s
    previous = tabs[0][1]
    for i in range(switches):
        if time.monotonic() > deadline:
            break
        key, mark = tabs[(i + 1) % len(tabs)]
        gone = previous

        def switched(screen: str, mark: str = mark, gone: str = gone) -> bool:
            return mark in screen and gone not in screen

        sent = time.perf_counter()
        app.keys(key)
        shown = app.until(switched, 15, f"tab {key}")
        samples.append((key, (shown - sent) * 1000))
        previous = mark
        time.sleep(0.05)
    return samples


def tui_switches(
    server: TmuxServer, ctl: TmuxControl, town: BenchTown, agents: int, args: argparse.Namespace
) -> tuple[list[tuple[str, float]], dict[str, float], list[tuple[str, float]]]:
    """Switch samples, CPU while switching, and the first show of each tab but the first
    (key, milliseconds), which composes its pane: the switches are timed once every tab of
    the cycle has been shown, so that they time switching, not composing."""
    app = TmuxApp(server, "switch", town.argv("tui"), env={"HOME": str(town.home)}, ctl=ctl)
    try:
        app.launch()
        app.until(showing(*TUI_FIRST), 60, "the first frame")
        tabs = [("1", "Recent activity"), ("2", f"Agents {agents}"), ("3", "Backlog")]
        first_shows = []
        previous = tabs[0][1]
        # Every tab once, and every agent in the Agents tab's list (the live model has them).
        for key, mark in [*tabs[1:], tabs[0]]:
            sent = time.perf_counter()
            app.keys(key)
            shown = app.until(
                lambda screen, mark=mark, gone=previous: mark in screen and gone not in screen,
                60,
                f"{mark} on tab {key}",
            )
            if key != tabs[0][0]:
                first_shows.append((key, (shown - sent) * 1000))
            previous = mark
        time.sleep(2.0)  # settle (a benchmark, not a test)
        daemon = town.daemon_pid()
        meter = CpuMeter({"daemon": daemon, "at tui": app.pid})
        samples = switch_latencies(app, tabs, args.switches, args.budget)
        cpu = meter.read()
        app.quit()
        return samples, cpu, first_shows
    finally:
        app.close()


def minimal_switches(
    server: TmuxServer, ctl: TmuxControl, switches: int
) -> list[tuple[str, float]]:
    app = TmuxApp(server, "minswitch", MINIMAL, ctl=ctl)
    try:
        app.launch()
        app.until(showing(*MINIMAL_FIRST), 60, "the minimal app's first frame")
        tabs = [("1", "minimal first pane"), ("2", "minimal second pane")]
        samples = switch_latencies(app, tabs, switches, 60)
        app.quit()
        return samples
    finally:
        app.close()


# ---- a busy absence: a "while you were away" recap of many events ------------------------------


class HandClock:
    """The seeding store's clock, moved by hand so the events fill the window."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def seed_busy_absence(db: Path, events: int) -> tuple[str, int, int, float]:
    """Fill the store with `events` events over the three hours before now, as a busy town
    makes them (four polecats: beads slung, hooks, approvals, submits, the refinery's gates
    and merges, a failure, a crash and mail to the operator now and then), and note the
    operator last seen at the start. Returns that start, how many events were made (the
    last story may overshoot), how many of them the recap reads, and how long the store
    took to read the recap (ms, in this process)."""
    # Imported here: an older checkout (PYTHONPATH=/tmp/before) may lack some of these, and
    # the rest of this benchmark still measures it.
    from tundra_tui.domain.agents import AgentState, Role, Runtime
    from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
    from tundra_tui.domain.beads import Action
    from tundra_tui.domain.clock import iso
    from tundra_tui.domain.mail import OPERATOR
    from tundra_tui.domain.metrics import UsageSample
    from tundra_tui.domain.refinery import GateResult, Strategy
    from tundra_tui.store import RosterEntry, open_store
    from tundra_tui.store.recap import RecapRepo

    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(hours=3)
    clock = HandClock(start)
    store = await open_store(db, clock=clock)
    try:
        polecats = [f"polecat-{i}" for i in range(1, 5)]
        roster = [RosterEntry("mayor", Role.MAYOR, Runtime.DEMO, "demo-opus")]
        roster += [
            RosterEntry(name, Role.POLECAT, Runtime.DEMO, "demo-sonnet") for name in polecats
        ]
        await store.agents.sync_roster(roster, actor=OPERATOR)
        await store.flags.set_operator_seen(iso(start))
        first = await store.events.last_id()
        sha = "0" * 40
        n = 0

        def tick() -> None:
            clock.now = min(end, clock.now + timedelta(seconds=1))

        while (made := await store.events.last_id() - first) < events:
            n += 1
            agent = polecats[n % len(polecats)]
            clock.now = start + (end - start) * made / events

            bead = await store.beads.add(f"Busy bead {n}: a change of the day", actor="mayor")
            tick()
            await store.beads.sling(bead.id, agent, actor="daemon")
            await store.agents.set_state(agent, AgentState.WORKING, actor="daemon")
            for tool in ("Read", "Edit", "Bash"):
                tick()
                await store.events.record(
                    "agent.hook", actor=agent, agent=agent,
                    data={"event": "PreToolUse", "tool": tool},
                )  # fmt: skip
            if n % 2 == 0:
                asked = await store.approvals.request(
                    agent=agent, runtime="demo", subject=f"at submit {bead.id}",
                    source=ApprovalSource.SCREEN, actor="daemon", tool="shell",
                )  # fmt: skip
                tick()
                await store.approvals.decide(asked.id, ApprovalStatus.APPROVED, actor=OPERATOR)
            tick()
            await store.metrics.record(
                [UsageSample(iso(clock.now), agent, "demo-sonnet", "demo", bead_id=bead.id,
                             output_tokens=900, cost_usd=0.01, source_key=f"busy-{n}")]
            )  # fmt: skip
            if n % 15 == 0:
                await store.beads.apply(bead.id, Action.FAIL, actor=agent, reason="gate red")
            else:
                await store.beads.apply(bead.id, Action.SUBMIT, actor=agent)
                attempt = await store.merges.begin(
                    bead.id, agent=agent, branch=f"polecat/{agent}/{bead.id}", branch_tip=sha,
                    commits=[(sha, "the change")], strategy=Strategy.REBASE, target="main",
                    target_before=sha, actor="refinery",
                )  # fmt: skip
                assert attempt is not None
                await store.merges.gate_started(attempt.id, 0, "make test", log_path="")
                tick()
                await store.merges.gate_finished(
                    attempt.id, GateResult(0, "make test", ok=True, exit_code=0, seconds=1.0),
                    actor="refinery",
                )  # fmt: skip
                await store.merges.verified(attempt.id, result_commit=sha, actor="refinery")
                await store.merges.merged(attempt.id, actor="refinery")
            if n % 40 == 0:
                await store.events.record(
                    "agent.crashed", actor="daemon", agent=agent,
                    data={"restart": True, "delay": 1, "reason": "exit 1"},
                )  # fmt: skip
            if n % 60 == 0:
                await store.mail.send(agent, OPERATOR, "a question", actor=agent, subject="Help")
            await store.agents.set_state(agent, AgentState.IDLE, actor="daemon")
            tick()
        repo = RecapRepo(store.db)
        until = iso(datetime.now(UTC))
        read = len(await repo.events(iso(start), until))
        began = time.perf_counter()
        await repo.read(iso(start), until)
        took = (time.perf_counter() - began) * 1000
        return iso(start), made, read, took
    finally:
        await store.close()


def seen_at(db: Path, at: str) -> None:
    """Note the operator last seen at `at` again (each `at tui` that quits moves it to then;
    the store's own setter only moves it forward)."""
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute("UPDATE town_flags SET value = ? WHERE key = 'operator_seen'", (at,))


def recap_frames(
    server: TmuxServer, ctl: TmuxControl, town: BenchTown, runs: int, seen: str
) -> tuple[list[float], list[float], list[float]]:
    """`runs` launches of each app, alternating: `at tui`'s first frame and the time until
    its recap is on screen (each launch with the operator away since `seen`), the minimal
    app's first frame; seconds each."""
    env = {"HOME": str(town.home)}
    db = town.root / ".tundra" / "town.db"
    tui: list[float] = []
    recap: list[float] = []
    minimal: list[float] = []
    for run in range(runs):
        seen_at(db, seen)
        app = TmuxApp(server, f"r{run}", town.argv("tui"), env=env, ctl=ctl)
        try:
            started = app.launch()
            tui.append(app.until(showing(*TUI_FIRST), 60, "the first frame") - started)
            recap.append(app.until(showing(RECAP_MARK), 60, "the recap") - started)
            app.quit()
        finally:
            app.close()
        minimal.append(first_frame(server, ctl, f"rm{run}", MINIMAL, env, MINIMAL_FIRST))
    return tui, recap, minimal


def recap_phase(
    server: TmuxServer, ctl: TmuxControl, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float]]:
    """A town of its own whose operator has been away for a busy three hours: seeded, its
    daemon started, then `--runs` launches of each app (`recap_frames`)."""
    town = BenchTown({}, prefix="b15-")
    try:
        began = time.monotonic()
        db = town.root / ".tundra" / "town.db"
        seen, made, read, took = asyncio.run(seed_busy_absence(db, args.recap_events))
        print(
            f"recap     {town.root}: {made} events in the 3 h away, {read} of them "
            f"read by the recap (seeded in {time.monotonic() - began:.0f} s); the store reads "
            f"the recap in {took:.0f} ms in this process"
        )
        town.start_daemon()
        return recap_frames(server, ctl, town, args.runs, seen)
    finally:
        town.close()


def frame_line(label: str, tui: list[float], minimal: list[float]) -> None:
    if not tui or not minimal:
        return
    ratio = statistics.median(tui) / statistics.median(minimal)
    print(
        f"  {label:<26} at tui median {statistics.median(tui):5.2f} s (max {max(tui):5.2f}), "
        f"minimal median {statistics.median(minimal):5.2f} s (max {max(minimal):5.2f}): "
        f"{ratio:4.2f}x  (target <= {TARGET_RATIO:g}x: {verdict(ratio <= TARGET_RATIO)})"
    )


def attempt(what: str, run: Callable[[], None], verbose: bool) -> None:
    """Run one part; a failure is reported and the benchmark goes on."""
    try:
        run()
    except NotShown as error:
        print(f"  {what}: could not measure: {error}")
        if verbose:
            print("  the last screen:\n" + error.screen)
    except Exception as error:  # a benchmark reports what it could not measure
        print(f"  {what}: could not measure: {error!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 launches, 6 agents, 15 switches")
    parser.add_argument("--runs", type=int, default=8, help="launches of each app per phase")
    parser.add_argument("--agents", type=int, default=20, help="agents streaming a test log")
    parser.add_argument("--rate", type=float, default=100_000, help="bytes/s per agent")
    parser.add_argument("--switches", type=int, default=60, help="tab switches timed")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds at most for switches")
    parser.add_argument("--verbose", action="store_true", help="print the screen on a failure")
    parser.add_argument(
        "--recap-events",
        type=int,
        default=0,
        metavar="N",
        help="also time the first frame with a recap of N events (a town of its own)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.agents, args.switches = 3, 6, 15
    header("bench_tui_frame: at tui's first frame vs a minimal Textual app's; tab switches")
    names = [f"s{i:02d}" for i in range(1, args.agents + 1)]
    town = BenchTown(
        {
            name: generator(args.rate, seed, Path(ROOT) / "stats" / name)
            for seed, name in enumerate(names, 1)
        }
    )
    print(
        f"town      {town.root}: {args.agents} agents at {args.rate / 1000:g} kB/s when started, "
        f"terminal {WIDTH}x{HEIGHT}"
    )
    server = TmuxServer("frame", WIDTH, HEIGHT)
    figures: dict[str, tuple[list[float], list[float]]] = {}
    switches: list[tuple[str, float]] = []
    first_shows: list[tuple[str, float]] = []
    minimal_switch: list[tuple[str, float]] = []
    cpu: dict[str, float] = {}
    recap_figures: tuple[list[float], list[float], list[float]] | None = None
    try:
        ctl = server.control("ctl")
        try:
            town.start_daemon()

            def quiet() -> None:
                figures["daemon up, no agent"] = first_frames(server, ctl, town, args.runs, "q")

            attempt("first frames, quiet", quiet, args.verbose)

            def recap() -> None:
                nonlocal recap_figures
                recap_figures = recap_phase(server, ctl, args)

            if args.recap_events > 0:
                attempt("first frames, recap", recap, args.verbose)
            took = town.start_agents(names)
            print(f"          {args.agents} agents started and streaming in {took:.1f} s")

            def loaded() -> None:
                label = f"{args.agents} agents streaming"
                figures[label] = first_frames(server, ctl, town, args.runs, "l")

            attempt("first frames, streaming", loaded, args.verbose)

            def tui() -> None:
                nonlocal switches, cpu, first_shows
                switches, cpu, first_shows = tui_switches(server, ctl, town, args.agents, args)

            attempt("at tui tab switches", tui, args.verbose)

            def minimal() -> None:
                nonlocal minimal_switch
                minimal_switch = minimal_switches(server, ctl, args.switches)

            attempt("minimal app tab switches", minimal, args.verbose)
        finally:
            ctl.close()
    finally:
        server.close()
        town.close()
    print(f"\nfirst frame, {args.runs} launches of each app alternating (seconds from Enter)")
    for label, (tui_s, minimal_s) in figures.items():
        frame_line(label, tui_s, minimal_s)
    if recap_figures is not None:
        tui_s, recap_s, minimal_s = recap_figures
        frame_line(f"recap of {args.recap_events} events", tui_s, minimal_s)
        print(
            f"  {'  recap on screen':<26} at tui median {statistics.median(recap_s):5.2f} s "
            f"(max {max(recap_s):5.2f}) from Enter until {RECAP_MARK!r} shows"
        )
    print(f"\ntab switch, key to screen, with {args.agents} agents streaming")
    if first_shows:
        shown = "  ".join(f"tab {key} {ms:.0f} ms" for key, ms in first_shows)
        print(f"  first show (composes the pane, not in the switches below): {shown}")
    if switches:
        print(f"  at tui, tabs 1>2>3>1      {spread(ms for _, ms in switches)}")
        for key in sorted({key for key, _ in switches}):
            print(f"    to tab {key}                {spread(ms for k, ms in switches if k == key)}")
        shown = "  ".join(f"{name} {value:.1f}%" for name, value in cpu.items())
        print(f"  CPU while switching: {shown} (% of a core)")
    if minimal_switch:
        print(f"  minimal app, 1>2>1        {spread(ms for _, ms in minimal_switch)}")
    if switches:
        worst = p((ms for _, ms in switches), 0.99)
        print("\nsummary")
        print(
            f"  at tui tab switch p99 {worst:.1f} ms (target <= {TARGET_SWITCH_P99_MS:g} ms: "
            f"{verdict(worst <= TARGET_SWITCH_P99_MS)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
