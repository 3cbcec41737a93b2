"""`at bead …`, `at hook`, `at sling` and `at done`."""

from __future__ import annotations

from tundra_tui.cli.context import Context
from tundra_tui.domain.beads import (
    TRANSITIONS,
    Action,
    Bead,
    BeadStatus,
    Grade,
    format_bead_id,
    parse_bead_id,
    parse_lane,
    parse_status,
    validate_description,
    validate_priority,
    validate_title,
)
from tundra_tui.domain.errors import IllegalTransition, TundraError
from tundra_tui.domain.refinery import MergeAttempt, ungated
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, key_values, table

_HEADERS = ("ID", "ST", "LANE", "P", "ASSIGNEE", "TITLE")


def _row(bead: Bead) -> tuple[object, ...]:
    return (
        bead.ref,
        bead.status.value,
        f"{bead.lane.glyph} {bead.lane.value}",
        f"P{bead.priority}",
        bead.assignee or "-",
        bead.title,
    )


def print_beads(ctx: Context, beads: list[Bead]) -> None:
    """Print beads as JSON or as the standard table."""
    if ctx.json:
        dump_json(beads)
    elif beads:
        table(_HEADERS, [_row(b) for b in beads], flex=5)
    else:
        print("no beads")


def print_bead(ctx: Context, bead: Bead, verb: str = "") -> None:
    """Print one bead after a change: JSON, or a one-line confirmation."""
    if ctx.json:
        dump_json(bead)
        return
    holder = f" ({bead.assignee})" if bead.assignee else ""
    prefix = f"{verb} " if verb else ""
    table((), [(f"{prefix}{bead.ref}", bead.status.value + holder, bead.title)])


async def cmd_add(ctx: Context) -> int:
    """Create a bead; lane and priority default from config."""
    a = ctx.args
    title = validate_title(a.title)
    validate_description(a.description)
    blockers = [parse_bead_id(b) for b in a.blocked_by]
    config = ctx.config()
    lane = parse_lane(a.lane or str(config.get("general.default_lane")))
    priority = validate_priority(
        a.priority if a.priority is not None else int(config.get("general.default_priority"))
    )
    store = await ctx.store()
    bead = await store.beads.add(
        title,
        actor=ctx.actor,
        description=a.description,
        lane=lane,
        priority=priority,
        labels=a.label,
        blocked_by=blockers,
    )
    print_bead(ctx, bead, "created")
    return 0


async def cmd_list(ctx: Context) -> int:
    """List beads matching the filters."""
    a = ctx.args
    status = parse_status(a.status) if a.status else None
    lane = parse_lane(a.lane) if a.lane else None
    store = await ctx.store()
    beads = await store.beads.find(
        status=status,
        assignee=a.assignee,
        lane=lane,
        label=a.label,
        search=a.search,
        limit=a.limit,
    )
    if a.open:
        beads = [b for b in beads if b.status.is_open]
    print_beads(ctx, beads)
    return 0


async def cmd_show(ctx: Context) -> int:
    """One bead in full: fields, blockers, dependents and its history."""
    bead_id = parse_bead_id(ctx.args.bead)
    store = await ctx.store()
    bead = await store.beads.get(bead_id)
    blockers = await store.beads.blockers_of(bead_id)
    dependents = await store.beads.dependents_of(bead_id)
    history = await store.events.find(bead_id=bead_id, limit=50)
    notes = await store.notes.for_bead(bead_id)
    merges = await store.merges.for_bead(bead_id)
    target = _target(ctx)
    if ctx.json:
        dump_json(
            {
                "bead": bead,
                "blockers": blockers,
                "dependents": dependents,
                "events": history,
                "notes": notes,
                "grade": bead.grade.value,
                "branch": bead.branch,
                "merged_commit": bead.merged_commit,
                "target": target,
                "attempts": len(merges),
                "gates": merges[-1].gates if merges else [],
                "merges": merges,
            }
        )
        return 0

    def refs(items: list[Bead]) -> str:
        return ", ".join(f"{b.ref} ({b.status.value})" for b in items) or "-"

    convoy = ""
    if bead.convoy_id is not None:
        convoy = (await store.convoys.get(bead.convoy_id)).name
    key_values(
        [
            ("bead", bead.ref),
            ("title", bead.title),
            ("status", bead.status.value),
            ("lane", bead.lane.value),
            ("priority", f"P{bead.priority}"),
            ("assignee", bead.assignee or "-"),
            ("convoy", convoy or "-"),
            ("branch", bead.branch or "-"),
            ("grade", _grade(bead, merges)),
            ("merged", bead.merged_commit[:12] or "-"),
            ("labels", ", ".join(bead.labels) or "-"),
            ("blocked by", refs(blockers)),
            ("blocks", refs(dependents)),
            ("created", bead.created_at),
            ("updated", bead.updated_at),
        ]
    )
    if bead.description:
        print()
        key_values([("description", bead.description)])
    if notes:
        print()
        table(
            ("WHEN", "BY", "NOTE"), [(n.created_at[:19], n.author, n.body) for n in notes], flex=2
        )
    if merges:
        print()
        _print_merges(merges, target)
    if history:
        print()
        table(("WHEN", "ACTOR", "EVENT"), [(e.at[:19], e.actor, e.kind) for e in history])
    return 0


def _target(ctx: Context) -> str:
    from tundra_tui.cli.refinery import target_name

    return target_name(ctx)


def _grade(bead: Bead, merges: list[MergeAttempt]) -> str:
    """The evidence grade as a phrase: an ungated merge and a hand-closed bead say so."""
    if bead.grade is Grade.MERGED and merges and ungated(merges[-1]):
        return "merged (no gates: refinery.gates = [])"
    if bead.status is BeadStatus.DONE and not bead.merged_commit:
        return (bead.grade.value or "none") + " (done by hand, not merged by the refinery)"
    return bead.grade.value or "-"


def _print_merges(merges: list[MergeAttempt], target: str) -> None:
    """The refinery section: each attempt with its gates, then the branch's commits."""
    print(f"refinery (target {visible(target, single_line=True)})")
    rows = []
    for attempt in merges:
        gates = " ".join(
            ("…" if g.ok is None else "✓" if g.ok else "✗") + f" {g.seconds:.1f}s"
            for g in attempt.gates
        )
        rows.append(
            (
                f"#{attempt.n}",
                attempt.outcome.value or attempt.state.value,
                gates or "-",
                attempt.result_commit[:7] or "-",
                ", ".join(attempt.conflicts) or attempt.reason or "-",
            )
        )
    table(("ATTEMPT", "OUTCOME", "GATES", "RESULT", "DETAIL"), rows, flex=4)
    if merges[-1].commits:
        print()
        table(("COMMIT", "SUBJECT"), [(sha[:7], subject) for sha, subject in merges[-1].commits])


def _direct_action(status: BeadStatus, target: BeadStatus) -> Action:
    for (src, action), dst in TRANSITIONS.items():
        if src is status and dst is target:
            return action
    legal = sorted({dst.value for (src, _), dst in TRANSITIONS.items() if src is status})
    raise IllegalTransition(
        f"a {status.value} bead cannot move to {target.value} "
        f"(it can move to: {', '.join(legal) or 'nothing'})"
    )


async def cmd_edit(ctx: Context) -> int:
    """Edit fields; `--status` moves along one legal edge of the state machine."""
    a = ctx.args
    bead_id = parse_bead_id(a.bead)
    lane = parse_lane(a.lane) if a.lane else None
    target = parse_status(a.status) if a.status else None
    if a.title is not None:
        validate_title(a.title)
    if a.priority is not None:
        validate_priority(a.priority)
    fields = (a.title, a.description, lane, a.priority, a.branch)
    if target is None and all(f is None for f in fields) and not (a.add_label or a.remove_label):
        raise TundraError("nothing to change: give --title, --lane, --priority, --status, …")
    if target is not None:
        from tundra_tui.cli import reports

        reports.refuse_inside(ctx, f"agents do not move beads; {reports.REPORT_HINT}")
    store = await ctx.store()
    bead = await store.beads.get(bead_id)
    action = _direct_action(bead.status, target) if target is not None else None
    if action is Action.HOOK:
        raise TundraError(f"use `at hook {bead_id} AGENT` to hook a bead to an agent")
    if any(f is not None for f in fields) or a.add_label or a.remove_label:
        bead = await store.beads.edit(
            bead_id,
            actor=ctx.actor,
            title=a.title,
            description=a.description,
            lane=lane,
            priority=a.priority,
            branch=a.branch,
            add_labels=a.add_label,
            remove_labels=a.remove_label,
        )
    if action is not None:
        bead = await store.beads.apply(bead_id, action, actor=ctx.actor, reason=a.reason)
    print_bead(ctx, bead, "edited")
    return 0


async def cmd_block(ctx: Context) -> int:
    """Add or remove a dependency."""
    bead_id = parse_bead_id(ctx.args.bead)
    blocker = parse_bead_id(ctx.args.by)
    store = await ctx.store()
    if ctx.args.remove:
        bead = await store.beads.unblock(bead_id, blocker, actor=ctx.actor)
    else:
        bead = await store.beads.block(bead_id, blocker, actor=ctx.actor)
    if ctx.json:
        dump_json(bead)
    else:
        blockers = ", ".join(format_bead_id(b) for b in bead.blocked_by) or "nothing"
        print(f"{bead.ref} now waits for {blockers}")
    return 0


async def cmd_ready(ctx: Context) -> int:
    """Ready work, or with --claim, the atomic hand-out of the first ready bead."""
    if ctx.args.limit is not None and ctx.args.limit < 1:
        raise TundraError("--limit must be at least 1")
    if ctx.args.claim:
        from tundra_tui.cli import reports

        reports.refuse_inside(
            ctx, f"agents do not claim beads (the daemon hands them out); {reports.REPORT_HINT}"
        )
    store = await ctx.store()
    if ctx.args.claim:
        bead = await store.beads.claim_next(ctx.args.claim, actor=ctx.actor)
        if bead is None:
            if ctx.json:
                dump_json(None)
            else:
                print("nothing is ready")
            return 1
        print_bead(ctx, bead, "claimed")
        return 0
    print_beads(ctx, await store.beads.ready(limit=ctx.args.limit))
    return 0


async def cmd_hook(ctx: Context) -> int:
    """Pin a bead to an agent."""
    from tundra_tui.cli import reports

    reports.refuse_inside(ctx, f"agents do not hook beads; {reports.REPORT_HINT}")
    bead_id = parse_bead_id(ctx.args.bead)
    store = await ctx.store()
    bead = await store.beads.apply(bead_id, Action.HOOK, actor=ctx.actor, agent=ctx.args.agent)
    print_bead(ctx, bead, "hooked")
    return 0


async def cmd_sling(ctx: Context) -> int:
    """Hand a bead to an agent through the daemon (started if needed): the agent is started
    if stopped, the work prompt typed and verified; exit 1 with the reason when not taken."""
    from tundra_tui.cli import reports
    from tundra_tui.cli.daemon import call_daemon, fields
    from tundra_tui.daemon.protocol import Sling, SlingReply
    from tundra_tui.domain.sanitize import visible

    reports.refuse_inside(ctx, "agents do not sling beads (the daemon hands them out)")
    bead_id = parse_bead_id(ctx.args.bead)
    await _check_slingable(ctx, bead_id, ctx.args.agent)
    reply: SlingReply = await call_daemon(
        ctx, Sling(bead=bead_id, agent=ctx.args.agent, actor=ctx.actor)
    )
    if ctx.json:
        dump_json(fields(reply))
    elif reply.delivered:
        started = " (started)" if reply.started else ""
        print(f"slung #{reply.bead} to {reply.agent}{started}: the work prompt was taken")
    else:
        why = visible(reply.evidence, single_line=True)
        print(f"#{reply.bead} was not handed to {reply.agent}: {why}")
    return 0 if reply.delivered else 1


async def _check_slingable(ctx: Context, bead_id: int, agent: str) -> None:
    """What the CLI can check before it starts a daemon: the bead, the agent, blockers.
    The daemon checks all of it again in the claim's own transaction."""
    if agent not in ctx.config().agents():
        raise TundraError(f"no agent {agent!r} in tundra.toml (see `at agent list`)")
    store = await ctx.store()
    bead = await store.beads.get(bead_id)
    if bead.status in (BeadStatus.BACKLOG, BeadStatus.ESCALATED):
        waiting = [
            b.ref for b in await store.beads.blockers_of(bead_id) if b.status is not BeadStatus.DONE
        ]
        if waiting:
            raise IllegalTransition(f"{bead.ref} is blocked by {', '.join(waiting)}")
    elif not (bead.status is BeadStatus.HOOKED and bead.assignee == agent):
        holder = f" (held by {bead.assignee})" if bead.assignee else ""
        raise IllegalTransition(
            f"{bead.ref} is {bead.status.value}{holder}: only a backlog or escalated bead, "
            "or one hooked to that agent, can be slung"
        )


async def cmd_done(ctx: Context) -> int:
    """Close a bead as done, or as failed with --fail (a report: see cli/reports.py)."""
    from tundra_tui.cli import reports

    if ctx.args.fail:
        return await reports.cmd_fail(ctx)
    reports.refuse_done(ctx)
    bead_id = parse_bead_id(ctx.args.bead)
    store = await ctx.store()
    bead = await store.beads.apply(bead_id, Action.DONE, actor=ctx.actor, reason=ctx.args.reason)
    print_bead(ctx, bead, "done")
    return 0
