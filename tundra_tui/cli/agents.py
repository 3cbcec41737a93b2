"""`at agent add|list|remove`: the team in tundra.toml. Running agents comes later."""

from __future__ import annotations

from tundra_tui.cli.context import Context
from tundra_tui.cli.listing import print_agents
from tundra_tui.config import add_agent, remove_agent
from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable
from tundra_tui.daemon.protocol import AgentAdd, AgentList, AgentRow, Agents
from tundra_tui.domain.agents import AgentState, validate_agent_name
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.output import dump_json


async def cmd_add(ctx: Context) -> int:
    """Register an agent in the project file, keeping its comments: through the daemon
    when it runs (every client hears of it), else here."""
    from tundra_tui.cli.reports import ask_daemon

    a = ctx.args
    name = validate_agent_name(a.name)
    if name == OPERATOR:
        raise TundraError(f"{OPERATOR!r} is reserved for the human at the keyboard")
    request = AgentAdd(name=name, runtime=a.runtime, role=a.role, model=a.model)
    if await ask_daemon(ctx, request, required=False) is None:
        add_agent(ctx.town(), name, runtime=a.runtime, role=a.role, model=a.model)
    ctx.reload_config()
    store = await ctx.store()
    agent = await store.agents.get(name)
    if ctx.json:
        dump_json(agent)
    else:
        print(f"added agent {name} ({agent.role.value}, {agent.runtime.value}) to tundra.toml")
    return 0


async def cmd_list(ctx: Context) -> int:
    """The roster with each agent's last recorded state and the beads it holds.

    With a daemon running, cli/quick.py has the daemon answer this instead (daemon/roster.py
    builds the same rows); this is the path without one, and both print through listing.
    """
    store = await ctx.store()
    specs = ctx.config().agents()
    listing = await store.agents.listing()
    live = await _live_sessions(ctx)
    rows: list[AgentRow] = []
    for name, spec in specs.items():
        state, pid = listing.states.get(name, (AgentState.STOPPED, None))
        rows.append(
            AgentRow(
                name=name,
                role=spec.role.value,
                runtime=spec.runtime.value,
                model=spec.model,
                state=state.value,
                glyph=state.glyph,
                pid=pid,
                holds=listing.held.get(name, []),
                command=spec.command,
                uptime=live[name].uptime if name in live else None,
            )
        )
    print_agents(rows, ctx.json)
    return 0


async def _live_sessions(ctx: Context) -> dict[str, AgentRow]:
    """The daemon's view of running agents, if a daemon runs (one is never started here)."""
    try:
        client = await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        return {}
    try:
        listed: AgentList = await client.call(Agents())
    finally:
        await client.close()
    return {s.name: s for s in listed.agents}


async def cmd_remove(ctx: Context) -> int:
    """Remove an agent from the project file unless it is running or holds work."""
    name = ctx.args.name
    store = await ctx.store()
    await store.agents.ensure_removable(name)
    remove_agent(ctx.town(), name)
    ctx.reload_config()
    await ctx.sync_roster()
    print(f"removed agent {name} from tundra.toml")
    return 0
