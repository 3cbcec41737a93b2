"""`at refinery status|pause|resume|retry|sync`: the merge queue from the command line.

Status asks the daemon when it runs (it knows the live step) and otherwise reads the
store (state "daemon not running", or what flags and config say). Pause, resume and
retry are store writes, like `at dispatch pause`: they work with no daemon, and a
running daemon hears them through its event tail. Everything an agent may have written
(titles, reasons, gate output) goes through `visible()`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Callable
from typing import Any

import msgspec

from tundra_tui.cli.context import Context
from tundra_tui.daemon.protocol import AttemptRow, RefineryQuery, RefineryStatus
from tundra_tui.domain.beads import parse_bead_id
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.refinery import CHECKOUT_BASE, RefineryState
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, key_values, table

TAIL_LINES = 15


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    refinery = commands.add_parser(
        "refinery", help="the merge queue: gates each submitted branch, then lands it"
    )
    common(refinery)
    sub = refinery.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    status = sub.add_parser("status", help="what it is doing, the queue and recent merges")
    common(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--tail", type=int, default=TAIL_LINES, help="lines of the last red gate's output"
    )
    status.add_argument("--recent", type=int, default=10, help="how many recent attempts")
    status.set_defaults(handler=cmd_status)
    pause = sub.add_parser("pause", help="start no merge until resumed (one running completes)")
    common(pause)
    pause.add_argument("--reason", default="", help="why (shown by `at refinery status`)")
    pause.set_defaults(handler=cmd_pause)
    resume = sub.add_parser("resume", help="let the refinery merge again")
    common(resume)
    resume.set_defaults(handler=cmd_resume)
    retry = sub.add_parser(
        "retry", help="clear a bead's failed attempts; an escalated one goes back to review"
    )
    common(retry)
    retry.add_argument("bead", help="bead id, e.g. 12 or #12")
    retry.set_defaults(handler=cmd_retry)
    sync = sub.add_parser(
        "sync", help="bring your checkout of the target up to what the refinery merged"
    )
    common(sync)
    sync.set_defaults(handler=cmd_sync)


def target_name(ctx: Context) -> str:
    """`orchestra.target_branch`, else the main worktree's branch, else main or master."""
    from tundra_tui.orchestra.branches import default_target

    configured = str(ctx.config().get("orchestra.target_branch") or "")
    if configured:
        return configured
    try:
        return default_target(ctx.town().root) or "HEAD"
    except TundraError:  # not a git repository
        return "HEAD"


async def read(ctx: Context, recent: int = 10) -> RefineryStatus:
    """The daemon's status when it runs, else the store's."""
    from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable

    try:
        client = await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        from tundra_tui.daemon.refinery_status import read_status

        return await read_status(
            await ctx.store(), ctx.config(), recent=recent, target=target_name(ctx)
        )
    try:
        status: RefineryStatus = await client.call(RefineryQuery(recent=recent))
        return status
    finally:
        await client.close()


def state_line(status: RefineryStatus) -> str:
    """One line: "merging #12 (attempt 2): gate 1/1 `…`", "paused: …", "needs gates: …"."""
    detail = f": {status.detail}" if status.detail else ""
    if status.state == RefineryState.MERGING.value and status.current is not None:
        step = f": {status.step}" if status.step else ""
        return f"merging #{status.current.bead} (attempt {status.current.n}){step}"
    if status.state == RefineryState.PAUSED.value:
        return "paused" + (f": {status.pause_reason}" if status.pause_reason else detail)
    return status.state + detail


def gates_cell(attempt: AttemptRow) -> str:
    marks = []
    for gate in attempt.gates:
        mark = "…" if gate.ok is None else ("✓" if gate.ok else "✗")
        marks.append(f"{mark} {gate.seconds:.1f}s" + (" (timeout)" if gate.timed_out else ""))
    return " ".join(marks) or "-"


def _gates_setting(gates: list[str] | None) -> str:
    if gates is None:
        return "unset: the refinery waits (set refinery.gates)"
    if not gates:
        return "none ([]): merges are not gated"
    return "; ".join(gates)


async def cmd_status(ctx: Context) -> int:
    status = await read(ctx, recent=max(0, ctx.args.recent))
    if ctx.json:
        dump_json(_every_field(status))
        return 0
    key_values(
        [
            ("refinery", visible(state_line(status), single_line=True)),
            ("target", status.target or "-"),
            ("gates", _gates_setting(status.gates)),
            ("strategy", status.strategy),
            ("max attempts", status.max_attempts),
        ]
    )
    if status.checkout_behind:
        print(
            "\nyour checkout of the target was moved under it: run `at refinery sync` "
            "(and never commit there before)"
        )
    print()
    if status.queue:
        table(
            ("QUEUE", "LANE", "P", "AGENT", "TRIED", "WAITING", "TITLE"),
            [
                (
                    f"#{q.bead}",
                    q.lane,
                    f"P{q.priority}",
                    q.agent or "-",
                    q.attempts,
                    q.waiting or "-",
                    q.title,
                )
                for q in status.queue
            ],
            flex=6,
        )
    else:
        print("queue empty")
    if status.recent:
        print()
        table(
            ("RECENT", "BEAD", "N", "OUTCOME", "GATES", "COMMIT", "REASON"),
            [
                (
                    a.finished_at[11:19] or "-",
                    f"#{a.bead}",
                    a.n,
                    a.outcome or a.state,
                    gates_cell(a),
                    a.result_commit[:7] or "-",
                    a.reason or a.title,
                )
                for a in status.recent
            ],
            flex=6,
        )
    red = _last_red(status)
    if red is not None and ctx.args.tail > 0:
        attempt, command, tail = red
        lines = visible(tail).rstrip("\n").split("\n")[-ctx.args.tail :]
        print()
        print(
            visible(
                f"last red gate (#{attempt.bead}, attempt {attempt.n}): {command}", single_line=True
            )
        )
        for line in lines:
            print(f"  {line}")
    return 0


def _every_field(value: Any) -> Any:
    """A struct as builtins with every field, defaults too (the wire leaves them off)."""
    if isinstance(value, msgspec.Struct):
        return {k: _every_field(v) for k, v in msgspec.structs.asdict(value).items()}
    if isinstance(value, list):
        return [_every_field(item) for item in value]
    return value


def _last_red(status: RefineryStatus) -> tuple[AttemptRow, str, str] | None:
    for attempt in status.recent:
        for gate in attempt.gates:
            if gate.ok is False:
                return attempt, gate.command, gate.tail
    return None


async def cmd_pause(ctx: Context) -> int:
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not pause the refinery (the operator does)")
    store = await ctx.store()
    await store.flags.set_refinery_paused(True, actor=ctx.actor, reason=ctx.args.reason)
    reason = f": {visible(ctx.args.reason, single_line=True)}" if ctx.args.reason else ""
    print(f"refinery paused{reason} (a merge already running completes)")
    return 0


async def cmd_resume(ctx: Context) -> int:
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not resume the refinery (the operator does)")
    store = await ctx.store()
    await store.flags.set_refinery_paused(False, actor=ctx.actor)
    print("refinery resumed")
    return 0


async def cmd_retry(ctx: Context) -> int:
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not retry merges (the operator does)")
    bead_id = parse_bead_id(ctx.args.bead)
    store = await ctx.store()
    bead = await store.merges.retry(bead_id, actor=ctx.actor)
    print(f"{bead.ref} {bead.status.value}: the refinery will try its merge again")
    return 0


async def cmd_sync(ctx: Context) -> int:
    """`git read-tree -m -u <base> <target>` in the operator's checkout: the files and index
    follow the branch the refinery moved, keeping local edits (git refuses on a clash)."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not update the operator's checkout")
    root = ctx.town().root
    name = target_name(ctx)
    base_ref = f"{CHECKOUT_BASE}/{name}"
    from tundra_tui.orchestra.worktrees import _REDIRECTING_ENV

    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_ENV}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C", GIT_TERMINAL_PROMPT="0")

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=False
        )

    base = git("rev-parse", "--verify", "--quiet", f"{base_ref}^{{commit}}")
    if base.returncode != 0:
        print(f"nothing to sync: the refinery has not moved {name} under your checkout")
        return 0
    head = git("symbolic-ref", "--quiet", "HEAD").stdout.strip()
    if head != f"refs/heads/{name}":
        raise TundraError(
            f"your checkout is on {head or 'a detached HEAD'}, not {name}; "
            f"delete {base_ref} once you have dealt with it (git update-ref -d {base_ref})"
        )
    old = base.stdout.strip()
    done = git("read-tree", "-m", "-u", old, f"refs/heads/{name}")
    if done.returncode != 0:
        why = visible((done.stderr or done.stdout).strip(), single_line=True, limit=300)
        raise TundraError(f"git read-tree refused (your local edits clash): {why}")
    git("update-ref", "-d", base_ref, old)
    print(f"your checkout now matches {name} (local edits kept)")
    return 0
