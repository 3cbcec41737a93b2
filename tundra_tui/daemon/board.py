"""The board operations: beads, convoys and configuration changed through the daemon.

Clients send these instead of writing the store or the layer files themselves, so every
client hears of a change as one `ChangedEvent` and reloads once. Validation is the store's
and the config module's, as for the CLI; a refusal is a TundraError with a one-line reason,
which the daemon answers as an error frame. An operation of several steps (create then
hook, edit then re-hook) that fails half-way still announces what it did write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tundra_tui.config import add_agent, load_config, set_value, unset_value
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.protocol import (
    AgentAdd,
    AgentAdded,
    BeadApply,
    BeadChanged,
    BeadCreate,
    BeadMove,
    BeadUpdate,
    ChangedEvent,
    ConfigSet,
    ConfigUnset,
    ConfigWritten,
    ConvoyAdd,
    ConvoyChanged,
    ConvoyCreate,
    ConvoyMove,
    Event,
    Request,
)
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.domain.agents import validate_agent_name
from tundra_tui.domain.beads import ACTIONS_NEEDING_ASSIGNEE, Action, Bead, kanban_move
from tundra_tui.domain.convoys import Convoy
from tundra_tui.domain.errors import IllegalTransition, TundraError
from tundra_tui.domain.kanban import BeadDraft, draft_edits, reassignment
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.store import RosterEntry, Store
from tundra_tui.town import Town


class BoardOps:
    """Handlers for the board: each awaits the store, then publishes one `ChangedEvent`."""

    def __init__(
        self,
        town: Town,
        store: Store,
        publish: Callable[[Event], None],
        gate: Gate | None = None,
    ) -> None:
        self.town = town
        self.store = store
        self.publish = publish
        self.gate = gate
        """Refuses status moves and hand-outs from inside agents: they report (`Report`)."""
        self._beads = asyncio.Lock()
        """One bead operation at a time: a move reads the bead, then applies to what it read,
        and the steps of one operation must not interleave with another's."""
        self._config = asyncio.Lock()
        """One layer-file edit at a time: each reads, changes and rewrites a whole file."""

    def handlers(self) -> dict[type[Request], Handler]:
        return {
            BeadCreate: self.bead_create,
            BeadUpdate: self.bead_update,
            BeadApply: self.bead_apply,
            BeadMove: self.bead_move,
            ConvoyMove: self.convoy_move,
            ConvoyCreate: self.convoy_create,
            ConvoyAdd: self.convoy_add,
            AgentAdd: self.agent_add,
            ConfigSet: self.config_set,
            ConfigUnset: self.config_unset,
        }

    # ---- beads ---------------------------------------------------------------------------------

    async def bead_create(self, req: BeadCreate, caller: Caller | None = None) -> BeadChanged:
        """Create in backlog; hook it if an agent was named (a refused hook is the warning).
        An agent may plan (create beads) but not hand them out."""
        if req.assignee:
            self._operator_only(caller, "bead_create")
        actor = self._actor(caller, req.actor)
        beads = self.store.beads
        async with self._beads:
            bead = await beads.add(
                req.title,
                actor=actor,
                description=req.description,
                lane=req.lane,
                priority=req.priority,
                labels=req.labels,
                blocked_by=req.blocked_by,
            )
            warning = ""
            if req.assignee:
                try:
                    bead = await beads.apply(bead.id, Action.HOOK, actor=actor, agent=req.assignee)
                except TundraError as error:
                    warning = f"created {bead.ref} in backlog but did not hook it: {error}"
            self._changed("beads", bead.id)
        return _bead_reply(bead, warning)

    async def bead_update(self, req: BeadUpdate, caller: Caller | None = None) -> BeadChanged:
        """Edit the fields given, then move the bead to the agent given, as the form does."""
        beads = self.store.beads
        actor = self._actor(caller, req.actor)
        async with self._beads:
            bead = await beads.get(req.id)
            if req.assignee is not None and req.assignee != bead.assignee:
                self._operator_only(caller, "bead_update")
            draft = BeadDraft(
                title=bead.title if req.title is None else req.title,
                description=bead.description if req.description is None else req.description,
                lane=bead.lane if req.lane is None else req.lane,
                priority=bead.priority if req.priority is None else req.priority,
                assignee=bead.assignee if req.assignee is None else req.assignee,
            )
            moves = reassignment(bead.status, bead.assignee, draft.assignee)
            wrote = False
            try:
                if changes := draft_edits(bead, draft):
                    bead = await beads.edit(req.id, actor=actor, **changes)
                    wrote = True
                for action, agent in moves:
                    bead = await beads.apply(req.id, action, actor=actor, agent=agent or None)
                    wrote = True
            finally:
                if wrote:  # also when a later step was refused: the earlier ones happened
                    self._changed("beads", req.id)
        return _bead_reply(bead)

    async def bead_apply(self, req: BeadApply, caller: Caller | None = None) -> BeadChanged:
        self._operator_only(caller, "bead_apply")
        async with self._beads:
            bead = await self.store.beads.apply(
                req.id, req.action, actor=req.actor, agent=req.agent, reason=req.reason
            )
            self._changed("beads", bead.id)
        return _bead_reply(bead)

    async def bead_move(self, req: BeadMove, caller: Caller | None = None) -> BeadChanged:
        """The legal move to the neighbouring column from the bead's status now."""
        self._operator_only(caller, "bead_move")
        beads = self.store.beads
        async with self._beads:
            bead = await beads.get(req.id)
            action = kanban_move(bead.status, req.step)
            if action in ACTIONS_NEEDING_ASSIGNEE:
                raise IllegalTransition(
                    f"{bead.ref} needs an agent to be hooked: edit it (e) and pick one"
                )
            bead = await beads.apply(req.id, action, actor=req.actor)
            self._changed("beads", bead.id)
        return _bead_reply(bead)

    # ---- convoys -------------------------------------------------------------------------------

    async def convoy_move(self, req: ConvoyMove, caller: object = None) -> ConvoyChanged:
        convoys = self.store.convoys
        async with self._beads:
            if req.verb == "start":
                convoy = await convoys.start(req.convoy, actor=req.actor)
            else:
                convoy = await convoys.pause(req.convoy, actor=req.actor)
            self._changed("convoys", convoy.id)
        return _convoy_reply(convoy)

    async def convoy_create(self, req: ConvoyCreate, caller: Caller | None = None) -> ConvoyChanged:
        """Create, then fill: a refused bead is the warning (the convoy stays, empty)."""
        convoys = self.store.convoys
        actor = self._actor(caller, req.actor)
        async with self._beads:
            convoy = await convoys.create(req.name, actor=actor, description=req.description)
            warning = ""
            if req.beads:
                try:
                    convoy = await convoys.add(convoy.id, req.beads, actor=actor)
                except TundraError as error:
                    warning = f"created convoy {convoy.name} but added no bead: {error}"
            self._changed("convoys", convoy.id)
        return _convoy_reply(convoy, warning)

    async def convoy_add(self, req: ConvoyAdd, caller: Caller | None = None) -> ConvoyChanged:
        actor = self._actor(caller, req.actor)
        async with self._beads:
            convoy = await self.store.convoys.add(req.convoy, req.beads, actor=actor)
            self._changed("convoys", convoy.id)
        return _convoy_reply(convoy)

    # ---- configuration -------------------------------------------------------------------------

    async def config_set(self, req: ConfigSet, caller: object = None) -> ConfigWritten:
        """Checked by loading the whole result first: a refused value writes nothing. Only
        the operator: an agent that could write the config could name what agents run."""
        self._config_by_operator(caller, "config_set")
        async with self._config:
            path = await asyncio.to_thread(set_value, self.town, req.key, req.value, req.layer)
            self._changed("config")
        return ConfigWritten(key=req.key, layer=req.layer, path=str(path))

    async def config_unset(self, req: ConfigUnset, caller: object = None) -> ConfigWritten:
        self._config_by_operator(caller, "config_unset")
        async with self._config:
            path = await asyncio.to_thread(unset_value, self.town, req.key, req.layer)
            self._changed("config")
        return ConfigWritten(key=req.key, layer=req.layer, path=str(path))

    async def agent_add(self, req: AgentAdd, caller: object = None) -> AgentAdded:
        """Append the agent's table to tundra.toml, then sync the roster before answering,
        so whoever asked finds it in the store at once."""
        self._config_by_operator(caller, "agent_add")
        name = validate_agent_name(req.name)
        if name == OPERATOR:
            raise TundraError(f"{OPERATOR!r} is reserved for the human at the keyboard")
        town = self.town
        async with self._config:
            await asyncio.to_thread(
                add_agent, town, name, runtime=req.runtime, role=req.role, model=req.model
            )
            try:
                specs = (await asyncio.to_thread(load_config, town)).agents()
                roster = [RosterEntry(s.name, s.role, s.runtime, s.model) for s in specs.values()]
                await self.store.agents.sync_roster(roster, actor=OPERATOR)
            finally:  # the file was written whatever the store said
                self._changed("config")
        spec = specs[name]
        return AgentAdded(
            name=name,
            role=spec.role.value,
            runtime=spec.runtime.value,
            model=spec.model,
            path=str(town.config_path),
        )

    def _config_by_operator(self, caller: object, op: str) -> None:
        if self.gate is not None and isinstance(caller, Caller):
            self.gate.operator_only(caller, op, "refused: agents do not change the configuration")

    def _operator_only(self, caller: Caller | None, op: str) -> None:
        if self.gate is not None and caller is not None:
            self.gate.operator_only(
                caller,
                op,
                "refused: agents do not move beads or hand them out; "
                "report with `at submit` or `at done N --fail --reason WHY`",
            )

    def _actor(self, caller: Caller | None, claimed: str) -> str:
        """Who an edit is recorded as: an agent is named by its process ancestry, whatever
        the request claims; the operator's client names its actor."""
        if self.gate is None or caller is None or not self.gate.inside(caller):
            return claimed
        agent = self.gate.agent_of(caller)
        if agent is None:
            self.gate.operator_only(caller, "board", "refused: cannot tell which agent this is")
        return agent or claimed

    def _changed(self, what: str, *ids: int) -> None:
        self.publish(ChangedEvent(what=what, ids=list(ids)))


def _convoy_reply(convoy: Convoy, warning: str = "") -> ConvoyChanged:
    return ConvoyChanged(
        id=convoy.id,
        name=convoy.name,
        status=convoy.status.value,
        warning=warning,
    )


def _bead_reply(bead: Bead, warning: str = "") -> BeadChanged:
    return BeadChanged(
        id=bead.id,
        ref=bead.ref,
        status=bead.status.value,
        assignee=bead.assignee,
        warning=warning,
    )
