"""`at convoy …`."""

from __future__ import annotations

from tundra_tui.cli.beads import print_beads
from tundra_tui.cli.context import Context
from tundra_tui.daemon.protocol import ConvoyAdd, ConvoyChanged, ConvoyCreate
from tundra_tui.domain.beads import parse_bead_id
from tundra_tui.domain.convoys import Convoy, grade_summary
from tundra_tui.output import dump_json, key_values, table

BAR_WIDTH = 20


def progress_bar(convoy: Convoy, width: int = BAR_WIDTH) -> str:
    """A text bar such as `[#######-------------]  35%  7/20`."""
    filled = round(convoy.progress.fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    return f"[{bar}] {convoy.progress.percent:>3}%  {convoy.progress.done}/{convoy.progress.total}"


def _print(ctx: Context, convoy: Convoy, verb: str) -> None:
    if ctx.json:
        dump_json(convoy)
    else:
        table((), [(f"{verb} convoy", convoy.name, convoy.status.value, progress_bar(convoy))])


async def cmd_create(ctx: Context) -> int:
    """Create a pending convoy: through the daemon when it runs (every client hears of
    it), else in the store."""
    from tundra_tui.cli.reports import ask_daemon

    a = ctx.args
    request = ConvoyCreate(name=a.name, description=a.description, actor=ctx.actor)
    changed: ConvoyChanged | None = await ask_daemon(ctx, request, required=False)
    store = await ctx.store()
    if changed is None:
        convoy = await store.convoys.create(a.name, actor=ctx.actor, description=a.description)
    else:
        convoy = await store.convoys.get(changed.id)
    _print(ctx, convoy, "created")
    return 0


async def cmd_add(ctx: Context) -> int:
    """Add beads to a convoy: through the daemon when it runs, else in the store."""
    from tundra_tui.cli.reports import ask_daemon

    ids = [parse_bead_id(b) for b in ctx.args.beads]
    request = ConvoyAdd(convoy=ctx.args.name, beads=ids, actor=ctx.actor)
    changed: ConvoyChanged | None = await ask_daemon(ctx, request, required=False)
    store = await ctx.store()
    if changed is None:
        convoy = await store.convoys.add(ctx.args.name, ids, actor=ctx.actor)
    else:
        convoy = await store.convoys.get(changed.id)
    _print(ctx, convoy, "updated")
    return 0


async def cmd_start(ctx: Context) -> int:
    """Start a convoy: its beads join ready work."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not start convoys (the operator does)")
    store = await ctx.store()
    _print(ctx, await store.convoys.start(ctx.args.name, actor=ctx.actor), "started")
    return 0


async def cmd_pause(ctx: Context) -> int:
    """Pause a convoy: its backlog beads leave ready work."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not pause convoys (the operator does)")
    store = await ctx.store()
    _print(ctx, await store.convoys.pause(ctx.args.name, actor=ctx.actor), "paused")
    return 0


async def cmd_list(ctx: Context) -> int:
    """Every convoy with its progress."""
    store = await ctx.store()
    convoys = await store.convoys.all()
    if ctx.json:
        dump_json(convoys)
    elif convoys:
        table(
            ("NAME", "STATUS", "PROGRESS", "FAILED", "DESCRIPTION"),
            [
                (c.name, c.status.value, progress_bar(c), c.progress.failed, c.description)
                for c in convoys
            ],
            flex=4,
        )
    else:
        print("no convoys")
    return 0


async def cmd_show(ctx: Context) -> int:
    """One convoy with its beads."""
    store = await ctx.store()
    convoy = await store.convoys.get(ctx.args.name)
    beads = await store.beads.find(convoy_id=convoy.id)
    if ctx.json:
        dump_json({"convoy": convoy, "beads": beads})
        return 0
    key_values(
        [
            ("convoy", convoy.name),
            ("status", convoy.status.value),
            ("progress", progress_bar(convoy)),
            ("by grade", grade_summary(convoy.progress) or "-"),
            ("in flight", convoy.progress.in_flight),
            ("failed", convoy.progress.failed),
            ("created", convoy.created_at),
            ("started", convoy.started_at or "-"),
            ("completed", convoy.completed_at or "-"),
            ("description", convoy.description or "-"),
        ]
    )
    print()
    print_beads(ctx, beads)
    return 0
