"""Every action by name: the `:` palette's verbs (`sling`, `nudge`, `agent stop`, …) and
"agent NAME" jumps, with their arguments picked from lists (ui/modals/picker.py).

Each verb makes the request the CLI's own verb makes (`op`), so the daemon's rules hold
(operator-only ops, refusals), every client hears of the change, and the outcome is one
notification line. Nothing here writes the store or tundra.toml. The palette's search reads
nothing: lists are read when a verb is chosen. Escape at any step backs out, sending nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape
from textual.screen import ModalScreen

from tundra_tui.daemon.protocol import (
    AgentAdd,
    AgentAdded,
    BeadApply,
    ConvoyChanged,
    ConvoyCreate,
    ConvoyMove,
    DispatchControl,
    MailSend,
    Nudge,
    RefineryControl,
    Report,
    Request,
    Restart,
    Sling,
    SlingReply,
    Spawn,
    Stop,
)
from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Action, Bead, BeadStatus
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.usage.reports import GROUPS

if TYPE_CHECKING:
    from tundra_tui.ui.app import TundraApp

JUMP_WAIT_S = 5.0
"""How long "agent NAME" waits for the Agents tab to list its agents (first shown)."""
DONE_PICKING = "\x00done"
"""The picker value that ends picking beads for a new convoy."""


class Back(Exception):
    """The operator backed out (escape): the verb sends nothing."""


def _one_line(text: str) -> str:
    return visible(text, single_line=True, limit=300)


class Flow:
    """One verb's run: its pickers and its one request, on the app's link."""

    def __init__(self, app: TundraApp) -> None:
        self.app = app
        self.services = app.services

    async def ask(self, screen: ModalScreen[Any]) -> Any:
        answer = await self.app.push_screen_wait(screen)
        if answer is None:
            raise Back
        return answer

    async def text(self, title: str, placeholder: str = "", *, allow_empty: bool = False) -> str:
        from tundra_tui.ui.modals.picker import TextModal

        answer: str = await self.ask(
            TextModal(title, placeholder=placeholder, allow_empty=allow_empty)
        )
        return answer

    async def pick(self, title: str, choices: list[tuple[str, str]], none: str) -> str:
        """One of `choices`; `none` is said (and the verb ends) when there is nothing to pick."""
        from tundra_tui.ui.modals.picker import PickerModal

        if not choices:
            self.app.notify(none)
            raise Back
        answer: str = await self.ask(PickerModal(title, choices))
        return answer

    async def beads(self, statuses: Iterable[BeadStatus]) -> list[Bead]:
        wanted = set(statuses)
        return [b for b in await self.services.store.beads.find() if b.status in wanted]

    async def pick_bead(self, title: str, statuses: Iterable[BeadStatus], none: str) -> int:
        beads = await self.beads(statuses)
        choices = [(str(b.id), _bead_label(b)) for b in beads]
        return int(await self.pick(title, choices, none))

    def agents(self, *, running: bool | None = None) -> list[tuple[str, str]]:
        """The roster (and sessions no longer on it), as (name, "name  state  role runtime")."""
        live = self.services.live.agents
        specs = self.services.config.agents()
        rows: list[tuple[str, str]] = []
        for name in [*specs, *(n for n in live if n not in specs)]:
            agent = live.get(name)
            state = agent.state if agent is not None else AgentState.STOPPED
            is_running = agent is not None and state is not AgentState.STOPPED
            if running is not None and is_running != running:
                continue
            spec = specs.get(name)
            what = f"{spec.role.value}, {spec.runtime.value}" if spec is not None else ""
            rows.append((name, f"{name}  {state.value}  {what}".rstrip()))
        return rows

    async def pick_agent(self, title: str, *, running: bool | None = None) -> str:
        none: dict[bool | None, str] = {
            True: "no agent is running",
            False: "every agent is running",
        }
        return await self.pick(
            title, self.agents(running=running), none.get(running, "no agent in tundra.toml")
        )

    async def confirm(self, question: str, items: list[str], yes: str) -> None:
        from tundra_tui.ui.modals.confirm import ConfirmModal

        if not await self.app.push_screen_wait(ConfirmModal(question, items, yes=yes)):
            raise Back

    async def send(self, request: Request, done: str | Callable[[Any], str]) -> Any:
        """Send the request; say how it went in one line (the daemon's refusal, if so)."""
        try:
            reply = await self.services.link.call(request)
        except TundraError as error:
            op = request.to_wire()["op"]
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.app.notify(f"{op}: {_one_line(first)}", severity="error")
            return None
        self.app.notify(_one_line(done(reply) if callable(done) else done), timeout=4)
        return reply


def _bead_label(bead: Bead) -> str:
    holder = f" ({bead.assignee})" if bead.assignee else ""
    return f"{bead.ref}  {bead.status.value}{holder}  {bead.title}"


_B, _H, _S, _R, _E = (
    BeadStatus.BACKLOG,
    BeadStatus.HOOKED,
    BeadStatus.SLUNG,
    BeadStatus.REVIEW,
    BeadStatus.ESCALATED,
)


# ---- the verbs --------------------------------------------------------------------------------


async def _sling(flow: Flow) -> None:
    bead = await flow.pick_bead("Sling which bead?", (_B, _E, _H), "no bead can be slung")
    agent = await flow.pick_agent(f"Sling #{bead} to which agent?")

    def said(reply: SlingReply) -> str:
        if reply.delivered:
            started = " (started)" if reply.started else ""
            return f"slung #{reply.bead} to {reply.agent}{started}: the work prompt was taken"
        return f"#{reply.bead} was not handed to {reply.agent}: {reply.evidence}"

    await flow.send(Sling(bead=bead, agent=agent, actor=flow.services.actor), said)


async def _hook(flow: Flow) -> None:
    bead = await flow.pick_bead("Hook which bead?", (_B, _E), "no bead can be hooked")
    agent = await flow.pick_agent(f"Hook #{bead} to which agent?")
    request = BeadApply(id=bead, action=Action.HOOK, agent=agent, actor=flow.services.actor)
    await flow.send(request, f"hooked #{bead} to {agent}")


async def _submit(flow: Flow) -> None:
    bead = await flow.pick_bead("Submit which bead for review?", (_S,), "no bead is slung")
    await flow.send(Report(kind="submit", bead=bead), f"submitted #{bead} for review")


async def _done(flow: Flow) -> None:
    bead = await flow.pick_bead("Mark which bead done?", (_S, _R), "no bead can be marked done")
    request = BeadApply(id=bead, action=Action.DONE, actor=flow.services.actor)
    await flow.send(request, f"#{bead} done")


async def _nudge(flow: Flow) -> None:
    agent = await flow.pick_agent("Nudge which agent?", running=True)
    text = await flow.text(f"Nudge {agent}: what to say", "a short message, sent now")
    await flow.send(Nudge(name=agent, text=text), f"nudged {agent}")


async def _mail(flow: Flow) -> None:
    to = await flow.pick_agent("Mail to which agent?")
    subject = await flow.text(f"Mail to {to}: subject", "optional", allow_empty=True)
    body = await flow.text(f"Mail to {to}: message", "delivered at its next turn")
    await flow.send(MailSend(to=to, subject=subject, body=body), f"mail sent to {to}")


async def _convoy_create(flow: Flow) -> None:
    name = await flow.text("New convoy: its name")
    picked: list[int] = []
    # A bead belongs to one convoy at most: those in one are not offered.
    beads = [b for b in await flow.beads((_B, _H, _S, _R, _E)) if b.convoy_id is None]
    while True:
        rest = [(str(b.id), _bead_label(b)) for b in beads if b.id not in picked]
        if not rest:
            break
        done = f"— done: create {name} with {len(picked)} bead(s) —"
        choice = await flow.pick(
            f"Convoy {name}: add which bead?", [(DONE_PICKING, done), *rest], ""
        )
        if choice == DONE_PICKING:
            break
        picked.append(int(choice))

    def said(reply: ConvoyChanged) -> str:
        return reply.warning or f"created convoy {reply.name} with {len(picked)} bead(s)"

    await flow.send(ConvoyCreate(name=name, beads=picked, actor=flow.services.actor), said)


async def _convoy_start(flow: Flow) -> None:
    convoys = await flow.services.store.convoys.all()
    choices = [
        (c.name, f"{c.name}  {c.status.value}  {len(c.bead_ids)} bead(s)")
        for c in convoys
        if c.status in (ConvoyStatus.PENDING, ConvoyStatus.PAUSED)
    ]
    name = await flow.pick("Start which convoy?", choices, "no convoy is pending or paused")
    await flow.send(
        ConvoyMove(convoy=name, verb="start", actor=flow.services.actor), f"started convoy {name}"
    )


async def _agent_add(flow: Flow) -> None:
    name = await flow.text("New agent: its name", "letters, digits, - and _")
    runtime = await flow.pick(f"{name}: which runtime?", [(r.value, r.value) for r in Runtime], "")
    role = await flow.pick(f"{name}: which role?", [(r.value, r.value) for r in Role], "")

    def said(reply: AgentAdded) -> str:
        return f"added agent {reply.name} ({reply.role}, {reply.runtime}) to tundra.toml"

    await flow.send(AgentAdd(name=name, runtime=runtime, role=role), said)


async def _agent_start(flow: Flow) -> None:
    agent = await flow.pick_agent("Start which agent?", running=False)
    await flow.send(Spawn(name=agent), f"started {agent}")


def _summary(flow: Flow, name: str) -> str:
    return next((label for value, label in flow.agents() if value == name), name)


async def _agent_stop(flow: Flow) -> None:
    agent = await flow.pick_agent("Stop which agent?", running=True)
    await flow.confirm(f"Stop {agent}?", [_summary(flow, agent)], "Stop")
    await flow.send(Stop(name=agent), f"stopped {agent}")


async def _agent_restart(flow: Flow) -> None:
    agent = await flow.pick_agent("Restart which agent?")
    if any(value == agent for value, _ in flow.agents(running=True)):
        await flow.confirm(f"Restart {agent}?", [_summary(flow, agent)], "Restart")
    await flow.send(Restart(name=agent), f"restarted {agent}")


async def _dispatch(flow: Flow, verb: Literal["pause", "resume"]) -> None:
    reason = "from the control room" if verb == "pause" else ""
    await flow.send(DispatchControl(verb=verb, reason=reason), f"dispatch {verb}d")


async def _refinery(flow: Flow, verb: str) -> None:
    if verb == "retry":
        bead = await flow.pick_bead(
            "Retry the merge of which bead?", (_R, _E), "no bead is in review or escalated"
        )
        await flow.send(
            RefineryControl(verb="retry", bead=bead), f"#{bead}: the merge is tried again"
        )
        return
    request = RefineryControl(
        verb="pause" if verb == "pause" else "resume", reason="from the control room"
    )
    await flow.send(request, f"refinery {verb}d")


async def _costs(flow: Flow, group: str) -> None:
    from tundra_tui.ui.panes.costs import CostsPane

    app = flow.app
    app.action_show_tab("costs")
    pane = app.pane("costs")
    if isinstance(pane, CostsPane):
        pane.group = group
        app.reload_pane(pane)


async def jump_to_agent(app: TundraApp, name: str) -> None:
    """Show the Agents tab with `name` selected (its list is loaded on first show)."""
    from tundra_tui.ui.widgets.agent_list import AgentList

    app.action_show_tab("agents")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JUMP_WAIT_S
    while True:
        try:
            listed = app.pane("agents").query_one(AgentList)
        except Exception:  # not mounted yet
            listed = None
        if listed is not None:
            names = [row.name for row in listed.rows]
            if name in names:
                listed.highlighted = names.index(name)
                listed.focus()
                return
        if loop.time() > deadline:
            app.notify(f"no agent {_one_line(name)} on the Agents tab")
            return
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Verb:
    """A palette verb: `op` is the daemon request it makes (None: `via` says what it does
    instead, "view": it shows a view and sends nothing); `run` picks the arguments and makes it."""

    name: str
    help: str
    op: type[Request] | None
    run: Callable[[Flow], Awaitable[None]]
    via: str = ""


VERBS: tuple[Verb, ...] = (
    Verb("sling", "hand a bead to an agent (at sling)", Sling, _sling),
    Verb("hook", "pin a bead to an agent (at hook)", BeadApply, _hook),
    Verb("submit", "submit a slung bead for review (at submit)", Report, _submit),
    Verb("done", "mark a bead done (at done)", BeadApply, _done),
    Verb("nudge", "say something to a running agent now (at nudge)", Nudge, _nudge),
    Verb("mail", "send mail to an agent (at mail send)", MailSend, _mail),
    Verb(
        "convoy create",
        "a new convoy and its beads (at convoy create, add)",
        ConvoyCreate,
        _convoy_create,
    ),
    Verb("convoy start", "release a convoy's beads (at convoy start)", ConvoyMove, _convoy_start),
    Verb("agent add", "register an agent in tundra.toml (at agent add)", AgentAdd, _agent_add),
    Verb("agent start", "start an agent (at agent start)", Spawn, _agent_start),
    Verb("agent stop", "stop a running agent, after asking (at agent stop)", Stop, _agent_stop),
    Verb(
        "agent restart",
        "restart an agent, asking if it runs (at agent restart)",
        Restart,
        _agent_restart,
    ),
    Verb(
        "dispatch pause",
        "claim no more beads (at dispatch pause)",
        DispatchControl,
        partial(_dispatch, verb="pause"),
    ),
    Verb(
        "dispatch resume",
        "claim beads again (at dispatch resume)",
        DispatchControl,
        partial(_dispatch, verb="resume"),
    ),
    Verb(
        "refinery pause",
        "pause the merge queue (at refinery pause)",
        RefineryControl,
        partial(_refinery, verb="pause"),
    ),
    Verb(
        "refinery resume",
        "resume the merge queue (at refinery resume)",
        RefineryControl,
        partial(_refinery, verb="resume"),
    ),
    Verb(
        "refinery retry",
        "retry a bead's merge (at refinery retry)",
        RefineryControl,
        partial(_refinery, verb="retry"),
    ),
    *(
        Verb(
            f"cost by {group}",
            f"the Costs tab grouped by {group} (at cost --by {group})",
            None,
            partial(_costs, group=group),
            via="view",
        )
        for group in GROUPS
    ),
)
"""Every verb the palette offers, in the order it lists them."""


class VerbProvider(Provider):
    """The palette's verbs and "agent NAME" jumps. Searching matches names only (the roster
    from the loaded config and the live model): nothing is read per keystroke."""

    @property
    def tundra(self) -> TundraApp:
        return self.app  # type: ignore[return-value]

    def _entries(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.tundra
        entries: list[tuple[str, str, Callable[[], Any]]] = [
            (verb.name, verb.help, partial(run_verb, app, verb)) for verb in VERBS
        ]
        for name, label in Flow(app).agents():
            entries.append(
                (
                    f"agent {visible(name, single_line=True, limit=60)}",
                    f"show {label} on the Agents tab",
                    partial(_jump, app, name),
                )
            )
        return entries

    async def discover(self) -> Hits:
        for text, help, command in self._entries():
            yield DiscoveryHit(Content(text), command, text=text, help=escape(help))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help, command in self._entries():
            score, offsets = matcher.fuzzy_search.match(query, text)
            if score > 0:
                # Content, not markup (the palette reads a str prompt and help as markup).
                prompt = Content(text)
                for offset in offsets:
                    prompt = prompt.stylize("bold underline", offset, offset + 1)
                yield Hit(score, prompt, command, text=text, help=escape(help))


def run_verb(app: TundraApp, verb: Verb) -> None:
    """Run a verb's pickers and request in a worker (pickers wait for their answer)."""

    async def flow() -> None:
        try:
            await verb.run(Flow(app))
        except Back:
            pass
        except TundraError as error:  # a list that could not be read
            app.notify(f"{verb.name}: {_one_line(str(error))}", severity="error")

    app.run_worker(flow(), group="verb", exclusive=True, exit_on_error=False)


def _jump(app: TundraApp, name: str) -> None:
    app.run_worker(jump_to_agent(app, name), group="verb", exclusive=True, exit_on_error=False)
