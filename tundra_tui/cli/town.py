"""`at init`, `at status`, `at doctor` and `at events`."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from tundra_tui.cli.context import Context
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.beads import BeadStatus, parse_bead_id
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event
from tundra_tui.output import cell, dump_json, key_values, table
from tundra_tui.store.schema import SCHEMA_VERSION
from tundra_tui.town import init_town

FOLLOW_INTERVAL_S = 0.5


async def cmd_init(ctx: Context) -> int:
    """Create (or complete) a town; an existing tundra.toml is never overwritten."""
    town, lines = init_town(Path(ctx.args.path), name=ctx.args.name)
    ctx.use_town(town)
    store = await ctx.store()
    version = await store.db.schema_version()
    for line in lines:
        print(line)
    print(f"database {town.db_path} (schema v{version})")
    print(f"next: cd {shlex.quote(str(town.root))} && at status")
    return 0


async def cmd_status(ctx: Context) -> int:
    """One screen answering: what is running, what is queued, what needs me?"""
    town = ctx.town()
    store = await ctx.store()
    agents = await store.agents.all()
    counts = await store.beads.counts()
    ready = await store.beads.ready(limit=1000)
    convoys = await store.convoys.all()
    unread = await store.mail.unread_count()
    pending = await store.approvals.pending()
    by_state = {state: sum(1 for a in agents if a.state is state) for state in AgentState}
    from tundra_tui.cli.cost import status_costs  # `at status` pays for it only here

    costs, kpi, cost_text = await status_costs(ctx)
    if ctx.json:
        dump_json(
            {
                "town": {"name": town.name, "root": str(town.root)},
                "agents": {s.value: n for s, n in by_state.items() if n},
                "agent_count": len(agents),
                "beads": {s.value: n for s, n in counts.items()},
                "ready": len(ready),
                "convoys": [
                    {"name": c.name, "status": c.status.value, "percent": c.progress.percent}
                    for c in convoys
                ],
                "unread_mail": unread,
                "pending_approvals": len(pending),
                "costs": costs,
                "kpi": kpi,
            }
        )
        return 0
    glyphs = " ".join(
        f"{state.glyph}{n}" for state, n in by_state.items() if n or state.glyph in "@*!?"
    )
    key_values(
        [
            ("town", f"{town.name}  ({town.root})"),
            ("agents", f"{len(agents)}  {glyphs}"),
            (
                "beads",
                f"{sum(counts.values())}  "
                + " · ".join(f"{s.value} {counts[s]}" for s in BeadStatus),
            ),
            ("ready", len(ready)),
            (
                "convoys",
                " · ".join(f"{c.name} {c.progress.percent}% ({c.status.value})" for c in convoys)
                or "none",
            ),
            ("mail", f"{unread} unread"),
            ("approvals", f"{len(pending)} pending"),
            ("cost", cost_text.removeprefix("cost: ")),
        ]
    )
    return 0


def _format_event(event: Event) -> tuple[str, ...]:
    subject = []
    if event.bead_id is not None:
        subject.append(f"#{event.bead_id}")
    if event.agent:
        subject.append(event.agent)
    detail = " ".join(
        f"{key}={value}" for key, value in event.data.items() if not isinstance(value, dict)
    )
    return (event.at[:19].replace("T", " "), event.actor, event.kind, " ".join(subject), detail)


async def cmd_events(ctx: Context) -> int:
    """The audit log; --follow keeps printing as events arrive, until Ctrl-C."""
    a = ctx.args
    bead = parse_bead_id(a.bead) if a.bead else None
    store = await ctx.store()
    events = await store.events.find(limit=a.limit, bead_id=bead, agent=a.agent, kind_prefix=a.kind)
    headers = ("WHEN", "ACTOR", "EVENT", "ON", "DETAIL")
    if ctx.json and not a.follow:
        dump_json(events)
        return 0
    emit = _emit_json_line if ctx.json else None
    if emit is not None:
        for event in events:
            emit(event)
    elif events:
        table(headers, [_format_event(e) for e in events], flex=4)
    if not a.follow:
        return 0
    last = events[-1].id if events else await store.events.last_id()
    try:
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            fresh = await store.events.find(
                after_id=last, limit=500, bead_id=bead, agent=a.agent, kind_prefix=a.kind
            )
            for event in fresh:
                if emit is not None:
                    emit(event)
                else:
                    print("  ".join(cell(part) for part in _format_event(event)), flush=True)
                last = event.id
    except asyncio.CancelledError:
        return 0


def _emit_json_line(event: Event) -> None:
    print(json.dumps(asdict(event), ensure_ascii=True), flush=True)


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"not runnable ({error})"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else ""


def _mode_check(path: Path, want: int) -> tuple[str, str]:
    if not path.exists():
        return "ok", "not created yet"
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~want:
        return "FAIL", f"mode {mode:04o}, expected {want:04o} (chmod {want:o} {path})"
    return "ok", f"mode {mode:04o}"


def _command_binary(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    return words[0] if words else ""


async def cmd_doctor(ctx: Context) -> int:
    """Check everything `at` depends on; exit 1 if anything failed."""
    checks: list[tuple[str, str, str]] = []

    def check(name: str, status: str, detail: str) -> None:
        checks.append((name, status, detail))

    ok_python = sys.version_info >= (3, 11)
    check("python", "ok" if ok_python else "FAIL", sys.version.split()[0])
    for tool, need in (("git", "FAIL"), ("tmux", "warn")):
        found = shutil.which(tool)
        if found:
            check(tool, "ok", _version([tool, "-V" if tool == "tmux" else "--version"]))
        else:
            why = "needed for worktrees" if tool == "git" else "needed by the terminal tests"
            check(tool, need, f"not on PATH ({why})")
    try:
        town = ctx.town()
        config = ctx.config()
    except TundraError as error:
        check("town", "FAIL", str(error))
        return _print_checks(ctx, checks)
    check("town", "ok", str(town.root))
    check(
        "config",
        "ok" if not config.warnings else "warn",
        f"{len(config.warnings)} unknown key(s)" if config.warnings else "valid",
    )
    check("state dir", *_mode_check(town.state_dir, 0o700))
    for suffix in ("", "-wal", "-shm"):
        path = town.db_path.with_name(town.db_path.name + suffix)
        check(path.name, *_mode_check(path, 0o600))
    try:
        store = await ctx.store()
        verdict = await store.db.integrity_check()
        version = await store.db.schema_version()
        check(
            "database",
            "ok" if verdict == "ok" else "FAIL",
            f"integrity {verdict}, schema v{version} of {SCHEMA_VERSION}",
        )
    except TundraError as error:
        check("database", "FAIL", str(error))
    for name, spec in config.agents().items():
        binary = _command_binary(spec.command)
        if not spec.command:
            check(f"agent {name}", "ok", f"{spec.runtime.value}: built in")
            continue
        found = shutil.which(binary, path=os.environ.get("PATH")) if binary else None
        if binary:
            detail = found or _missing(binary)
        else:
            detail = f"{spec.command!r} is not a valid command line"
        check(f"agent {name}", "ok" if found else "warn", f"{spec.runtime.value}: {detail}")
    return _print_checks(ctx, checks)


def _missing(binary: str) -> str:
    """Why `binary` cannot run: a path is not looked up on PATH, so say what is wrong with it."""
    if "/" not in binary:
        return f"{binary} not found on PATH"
    if not os.path.exists(binary):
        return f"{binary} not found"
    return f"{binary} is not an executable file"


def _print_checks(ctx: Context, checks: list[tuple[str, str, str]]) -> int:
    failed = any(status == "FAIL" for _, status, _ in checks)
    if ctx.json:
        dump_json([{"check": n, "status": s, "detail": d} for n, s, d in checks])
    else:
        table(("CHECK", "STATUS", "DETAIL"), checks, flex=2)
        print("problems found" if failed else "all checks passed")
    return 1 if failed else 0
