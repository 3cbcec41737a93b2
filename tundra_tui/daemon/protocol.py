"""Every message between the daemon and its clients, typed, with the protocol version.

One JSON object per line, each a `Frame`:

    client → daemon   {"v": 2, "id": 7, "req": {"op": "spawn", "name": "alice"}}
                      {"v": 2, "req": {"op": "send_keys", ...}}         (no id: no reply)
    daemon → client   {"v": 2, "id": 7, "ok": {"kind": "spawned", ...}}
                      {"v": 2, "id": 7, "error": "one line"}
                      {"v": 2, "ev": {"event": "state", ...}}            (after `subscribe`)

Requests carry ids and are answered as they finish, so replies may come out of
order and a slow `stop` never holds up a key. Input to one agent keeps its
order. `docs/protocol.md` is written from this module.

A peer speaking another version gets one error line and is disconnected, so a
stale client never misreads a newer daemon (or the reverse).
"""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar, Literal

import msgspec

from tundra_tui.domain.approvals import Approval
from tundra_tui.domain.beads import PRIORITY_DEFAULT, Action, Lane
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.firewall import AllowRule, denied_shape

VERSION = 2
MAX_LINE = 16 * 1024 * 1024
"""The longest line either side accepts; a full screen of a large terminal fits easily."""

Run = tuple[str, str, str, bool, bool, bool, bool]
"""Neighbouring cells of one style: text, fg, bg, bold, italics, underscore, reverse."""


class ProtocolError(TundraError):
    """A malformed line, an unknown operation or a version mismatch."""


class _Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every typed message: immutable, keyword-built, defaults left off the wire."""

    def to_wire(self) -> dict[str, Any]:
        """This message as JSON-ready builtins (with its tag)."""
        wire: dict[str, Any] = msgspec.to_builtins(self)
        return wire

    @classmethod
    def from_wire(cls, data: Any) -> Any:
        """Validate builtins (as `to_wire` gives) back into this type; ProtocolError if bad."""
        try:
            return msgspec.convert(data, type=cls, strict=False)
        except msgspec.ValidationError as error:
            raise ProtocolError(f"malformed {cls.__name__}: {error}") from error


# ---- replies --------------------------------------------------------------------------------


class Reply(_Message, frozen=True, tag_field="kind"):
    """What a request answers with when it succeeds."""


class Done(Reply, frozen=True, tag="done"):
    """Nothing to say but that it was done."""


class Pong(Reply, frozen=True, tag="pong"):
    pid: int
    version: str


class StatusReply(Reply, frozen=True, tag="status"):
    pid: int
    version: str
    uptime: float
    town: str
    live: int
    queued: list[str]
    subscribers: int
    pending_writes: int
    store_error: str
    approvals: int
    connections: int = 0
    resyncs: int = 0
    """Times a subscriber fell behind and was sent a fresh snapshot."""
    protocol: int = VERSION


class AgentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One agent as `at agent list` and the control room show it."""

    name: str
    state: str
    glyph: str
    runtime: str
    pid: int | None = None
    uptime: float | None = None
    exit: str | None = None
    rss_kib: int | None = None
    cpu_seconds: float | None = None
    trouble: str = ""
    shown: bool = False
    """Emulated as shown: some client shows its screen (hidden agents are emulated lazily)."""
    role: str = ""
    """From tundra.toml, like `model` and `command`; filled in answers to `Agents(roster=True)`."""
    model: str = ""
    command: str = ""
    holds: list[int] = []
    """Ids of the unfinished beads assigned to it (in answers to `Agents(roster=True)`)."""


class AgentList(Reply, frozen=True, tag="agents"):
    agents: list[AgentRow]


class ApprovalInfo(Reply, frozen=True, tag="approval"):
    """One approval as every client reads it (the CLI, the TUI, `at approvals --json`)."""

    id: int
    agent: str
    runtime: str
    status: str
    subject: str
    tool: str
    cwd: str
    source: str
    evidence: dict[str, Any] = {}
    created_at: str = ""
    decided_at: str = ""
    decided_by: str = ""
    denied_shape: str = ""
    """The deny-list's name for what this command does (`rm -rf /`, a force push): no
    rule ever answers it, and every client flags it."""

    @classmethod
    def of(cls, approval: Approval) -> ApprovalInfo:
        """The wire form of a stored or pending approval."""
        return cls(
            id=approval.id,
            agent=approval.agent,
            runtime=approval.runtime,
            status=approval.status.value,
            subject=approval.subject,
            tool=approval.tool,
            cwd=approval.cwd,
            source=approval.source.value,
            evidence=approval.evidence,
            created_at=approval.created_at,
            decided_at=approval.decided_at,
            decided_by=approval.decided_by,
            denied_shape=denied_shape(approval.subject),
        )


class ApprovalList(Reply, frozen=True, tag="approvals"):
    approvals: list[ApprovalInfo]


class RuleInfo(Reply, frozen=True, tag="rule"):
    """An always-allow rule: this agent's requests with exactly these words are approved
    by the daemon (`subject` as shown, secrets redacted)."""

    id: int
    agent: str
    tool: str
    subject: str
    created_at: str
    created_by: str

    @classmethod
    def of(cls, rule: AllowRule) -> RuleInfo:
        return cls(
            id=rule.id,
            agent=rule.agent,
            tool=rule.tool,
            subject=rule.subject,
            created_at=rule.created_at,
            created_by=rule.created_by,
        )


class RuleList(Reply, frozen=True, tag="rules"):
    rules: list[RuleInfo]


class Spawned(Reply, frozen=True, tag="spawned"):
    name: str
    state: str
    cwd: str


class Stopped(Reply, frozen=True, tag="stopped"):
    exit: str | None = None


class Restarted(Reply, frozen=True, tag="restarted"):
    state: str


class Delivered(Reply, frozen=True, tag="delivered"):
    delivered: bool
    attempts: int = 0
    evidence: str = ""


class Sent(Reply, frozen=True, tag="sent"):
    sent: int


class ScreenText(Reply, frozen=True, tag="screen"):
    """An agent's screen as text (a stopped agent's is the one the store kept)."""

    lines: list[str]
    cursor: tuple[int, int]
    title: str
    state: str
    stored: bool = False


class Recorded(Reply, frozen=True, tag="recorded"):
    """Where `record` wrote the recording, and the verdict and label it holds."""

    path: str
    state: str
    rule: str
    label: str


class Explained(Reply, frozen=True, tag="explained"):
    """Which channel decided an agent's state: its evidence, since when, and the structured
    channel its launch wired (`none (the screen only)` where the CLI has none)."""

    state: str
    source: str
    rule: str
    matched: str = ""
    versions: str = ""
    since: float = 0.0
    """Unix time the agent entered this state."""
    channel: str = ""


class HistoryReply(Reply, frozen=True, tag="history"):
    """Scrollback lines `start` to `start + len(lines)`, 0 being the oldest still kept."""

    total: int
    start: int
    lines: list[list[Run]]
    dropped: int = 0
    """Lines that scrolled off before line 0: line `i` stays line `dropped + i` of the
    agent's output however many scroll off later (a page read while it prints lands right)."""


class Subscribed(Reply, frozen=True, tag="subscribed"):
    pass


class Stopping(Reply, frozen=True, tag="stopping"):
    stopping: int


class HookReply(Reply, frozen=True, tag="hook"):
    """A hook's answer: `allow` for a permission request, `used` for a Codex notify."""

    allow: bool | None = None
    status: str | None = None
    used: bool | None = None
    block: str | None = None
    """For a `Stop` hook: text the agent takes as its next input (mail between turns);
    the hook prints `{"decision": "block", "reason": block}` so the agent goes on."""


# ---- requests -------------------------------------------------------------------------------


class Request(_Message, frozen=True, tag_field="op"):
    """One operation asked of the daemon. `answer` is the reply type it succeeds with."""

    answer: ClassVar[type[Reply]] = Done
    quiet: ClassVar[bool] = False
    """Too frequent (polls, keystrokes) to log when it succeeds."""
    input_to: ClassVar[bool] = False
    """Input to the agent named `name`: kept in order with that agent's other input."""


class Ping(Request, frozen=True, tag="ping"):
    answer = Pong
    quiet = True


class Status(Request, frozen=True, tag="status"):
    answer = StatusReply
    quiet = True


class Agents(Request, frozen=True, tag="agents"):
    """The daemon's sessions; with `roster`, the team as `at agent list` shows it instead:
    every agent tundra.toml names, in its order, running or not, with role, model, command
    and held beads but no process figures (a session no longer in tundra.toml is left out)."""

    answer = AgentList
    quiet = True
    roster: bool = False


class Approvals(Request, frozen=True, tag="approvals"):
    answer = ApprovalList
    quiet = True


class Spawn(Request, frozen=True, tag="spawn"):
    answer = Spawned
    name: str
    cwd: str | None = None
    bead: int | None = None
    task: str | None = None


class Stop(Request, frozen=True, tag="stop"):
    answer = Stopped
    name: str
    grace: float = 3.0


class Restart(Request, frozen=True, tag="restart"):
    answer = Restarted
    name: str


class SendText(Request, frozen=True, tag="send_text"):
    """A prompt typed like a person types it, then checked to have been taken."""

    answer = Delivered
    input_to = True
    name: str
    text: str


class SendKeys(Request, frozen=True, tag="send_keys"):
    """Raw keys, byte for byte (base64 on the wire). Often sent without an id."""

    answer = Sent
    quiet = True
    input_to = True
    name: str
    data: bytes


class Nudge(Request, frozen=True, tag="nudge"):
    """A short message now: interrupt a working agent, never type over a prompt."""

    answer = Delivered
    input_to = True
    name: str
    text: str


class Resize(Request, frozen=True, tag="resize"):
    quiet = True
    name: str
    columns: int
    rows: int


class Approve(Request, frozen=True, tag="approve"):
    """`seen` is the subject the operator was shown: the answer applies to it only."""

    answer = ApprovalInfo
    id: int
    actor: str = "operator"
    seen: str | None = None


class Deny(Request, frozen=True, tag="deny"):
    answer = ApprovalInfo
    id: int
    actor: str = "operator"
    seen: str | None = None


class Rules(Request, frozen=True, tag="rules"):
    """The live always-allow rules, oldest first. Operator only."""

    answer = RuleList


class RuleAdd(Request, frozen=True, tag="rule_add"):
    """Always allow the command of pending request `id` (in the words `seen`) for its
    agent, and approve that request. Refused for a deny-listed command. Operator only."""

    answer = RuleInfo
    id: int
    actor: str = "operator"
    seen: str | None = None


class RuleRevoke(Request, frozen=True, tag="rule_revoke"):
    """Revoke a rule: its command waits for the operator again. Operator only."""

    answer = RuleInfo
    id: int
    actor: str = "operator"


class Screen(Request, frozen=True, tag="screen"):
    answer = ScreenText
    quiet = True
    name: str


class Record(Request, frozen=True, tag="record"):
    """Save a running agent's screen, its verdict and the operator's `label` (the right
    state; the verdict's when None) as a file under `.tundra/recordings/`
    (`at detect --replay` scores it again). Operator only."""

    answer = Recorded
    name: str
    label: Literal["idle", "working", "awaiting_approval", "unknown"] | None = None


class Explain(Request, frozen=True, tag="explain"):
    """Why a running agent has its state: the deciding channel (hook, notify or screen rule)."""

    answer = Explained
    quiet = True
    name: str


class History(Request, frozen=True, tag="history"):
    """Scrollback of a running agent, oldest first; `start` < 0 counts from the newest."""

    answer = HistoryReply
    quiet = True
    name: str
    start: int
    count: int


class Subscribe(Request, frozen=True, tag="subscribe"):
    """Turn on events for this connection (`agents` None: every agent). Requests go on."""

    answer = Subscribed
    agents: list[str] | None = None
    show: list[str] = []
    """Agents whose screens this connection shows (see `Show`)."""
    glance: list[str] = []
    """Of `show`, those shown only at a glance (see `Show`)."""


class Show(Request, frozen=True, tag="show"):
    """The agents whose screens this connection shows now: only they get screen events,
    and an agent nobody shows is emulated lazily. New ones get a full screen first."""

    quiet = True
    agents: list[str]
    glance: list[str] = []
    """Of `agents`, those shown only at a glance (a tile behind the one being typed into):
    an agent every client only glances at is emulated and framed a few times a second."""


class Shutdown(Request, frozen=True, tag="shutdown"):
    answer = Stopping


class Hook(Request, frozen=True, tag="hook"):
    """An agent's hook reporting; a permission request waits for the operator's answer."""

    answer = HookReply
    name: str
    event: str
    payload: dict[str, Any]
    secret: str = ""
    timeout: float | None = None


# ---- events ---------------------------------------------------------------------------------


class Event(_Message, frozen=True, tag_field="event"):
    """Pushed to subscribed connections."""


class Snapshot(Event, frozen=True, tag="snapshot"):
    """Starts every snapshot: what follows is everything still true (drop what you held).
    `agents` names every agent the daemon has (of those subscribed to): any other a
    client holds is gone."""

    resync: bool = False
    agents: list[str] = []


class StateEvent(Event, frozen=True, tag="state"):
    agent: str
    state: str
    glyph: str
    evidence: dict[str, Any] = {}


class ScreenEvent(Event, frozen=True, tag="screen"):
    """Changed rows of a shown agent's screen (all rows when `full`), at most ~30 a second."""

    agent: str
    rows: dict[int, list[Run]]
    cursor: tuple[int, int]
    size: tuple[int, int]
    full: bool = False


class ApprovalEvent(Event, frozen=True, tag="approval"):
    """A request opened, or upgraded in place (same id, more exact subject)."""

    approval: ApprovalInfo


class ApprovalResolvedEvent(Event, frozen=True, tag="approval_resolved"):
    approval: ApprovalInfo


class ExitedEvent(Event, frozen=True, tag="exited"):
    agent: str
    code: int | None = None
    signal: int | None = None


class TroubleEvent(Event, frozen=True, tag="trouble"):
    """`kind` is rate_limited or auth_failed while the screen shows it, empty once cleared."""

    agent: str
    kind: str
    matched: str = ""


class RemovedEvent(Event, frozen=True, tag="removed"):
    """Taken out of tundra.toml and no longer running: gone from every list."""

    agent: str


class StoreEvent(Event, frozen=True, tag="store"):
    """Writes waiting on the database (`error` says why), or flowing again (empty)."""

    pending: int
    error: str


class ChangedEvent(Event, frozen=True, tag="changed"):
    """Stored data changed through the daemon: beads, convoys, config, usage, metrics,
    mail, dispatch, refinery or brake. A client reloads what shows `what` once per event.
    `ids` name what changed, in `what`'s own ids, and may be empty (all of it, or not
    said): bead ids for beads, dispatch, refinery and usage (the beads whose spend
    changed), convoy ids for convoys, message ids for mail (sent, or receipts set)."""

    what: str
    ids: list[int] = []


class AttentionEvent(Event, frozen=True, tag="attention"):
    """Something the operator should look at (the witness's findings: an approval waiting
    too long, an escalated bead; the refinery's, with `agent` "refinery" or the bead's
    agent: target red, escalated, needs gates, refinery error, checkout behind; the
    brake's, with `agent` "costs": budget warning, budget stop; rate limited, with the agent
    that showed the limit); `bell`
    asks a client to ring the terminal bell once."""

    agent: str
    kind: str
    reason: str
    bead: int | None = None
    approval: int | None = None
    bell: bool = False


class LinkEvent(Event, frozen=True, tag="link"):
    """Made by a client's link, never sent: the connection came up or went down.
    `stopped` means the operator stopped the daemon (`at daemon stop`)."""

    up: bool
    error: str = ""
    stopped: bool = False


# ---- board ----------------------------------------------------------------------------------
# Changes to beads, convoys and configuration made through the daemon, so that every client
# hears of them (one `ChangedEvent` per operation) instead of each re-reading the store.


class BeadChanged(Reply, frozen=True, tag="bead"):
    """A bead as an operation left it. `warning` says which part of the operation did not
    happen (the bead was created but could not be hooked, say); the rest did."""

    id: int
    ref: str
    status: str
    assignee: str = ""
    warning: str = ""


class ConvoyChanged(Reply, frozen=True, tag="convoy"):
    """A convoy as an operation left it. `warning` says which part did not happen (the
    convoy was created but a bead could not be added, say); the rest did."""

    id: int
    name: str
    status: str
    warning: str = ""


class AgentAdded(Reply, frozen=True, tag="agent_added"):
    """The agent an `agent_add` registered, and the file it was written to."""

    name: str
    role: str
    runtime: str
    path: str
    model: str = ""


class ConfigWritten(Reply, frozen=True, tag="config_written"):
    """The layer file a `config_set` or `config_unset` wrote."""

    key: str
    layer: str
    path: str


class BeadCreate(Request, frozen=True, tag="bead_create"):
    """A new backlog bead; with `assignee` it is hooked to that agent too."""

    answer = BeadChanged
    title: str
    description: str = ""
    lane: Lane = Lane.STANDARD
    priority: int = PRIORITY_DEFAULT
    labels: list[str] = []
    blocked_by: list[int] = []
    assignee: str = ""
    actor: str = "operator"


class BeadUpdate(Request, frozen=True, tag="bead_update"):
    """Change a bead's fields (None leaves one as it is). A different `assignee` hooks,
    unhooks or re-hooks the bead ("" for nobody), as the bead's status allows."""

    answer = BeadChanged
    id: int
    title: str | None = None
    description: str | None = None
    lane: Lane | None = None
    priority: int | None = None
    assignee: str | None = None
    actor: str = "operator"


class BeadApply(Request, frozen=True, tag="bead_apply"):
    """Move a bead along one edge of its state machine (`agent` for hook and sling)."""

    answer = BeadChanged
    id: int
    action: Action
    agent: str | None = None
    reason: str = ""
    actor: str = "operator"


class BeadMove(Request, frozen=True, tag="bead_move"):
    """Move a kanban card one column left (-1) or right (+1) from where it is now."""

    answer = BeadChanged
    id: int
    step: Literal[-1, 1]
    actor: str = "operator"


class ConvoyMove(Request, frozen=True, tag="convoy_move"):
    """Start a convoy (its beads become ready work) or pause it; `convoy` is a name or id."""

    answer = ConvoyChanged
    convoy: str
    verb: Literal["start", "pause"]
    actor: str = "operator"


class ConvoyCreate(Request, frozen=True, tag="convoy_create"):
    """A new pending convoy, filled with `beads`. A bead that cannot be added (in another
    convoy, say) leaves the convoy created with none of them, and the reply's `warning`
    says why."""

    answer = ConvoyChanged
    name: str
    description: str = ""
    beads: list[int] = []
    actor: str = "operator"


class ConvoyAdd(Request, frozen=True, tag="convoy_add"):
    """Put beads into a convoy (`convoy` a name or id); a bead belongs to one convoy at most."""

    answer = ConvoyChanged
    convoy: str
    beads: list[int]
    actor: str = "operator"


class AgentAdd(Request, frozen=True, tag="agent_add"):
    """Register an agent: an `[agents.NAME]` table appended to tundra.toml, and the roster
    synced before the answer. A name any layer has is refused. Operator only."""

    answer = AgentAdded
    name: str
    runtime: str
    role: str = "crew"
    model: str = ""


class ConfigSet(Request, frozen=True, tag="config_set"):
    """Set `key` in one layer's file from TOML text (`8`, `true`, `["a"]` or plain text)."""

    answer = ConfigWritten
    key: str
    value: str
    layer: str


class ConfigUnset(Request, frozen=True, tag="config_unset"):
    answer = ConfigWritten
    key: str
    layer: str


# ---- town -----------------------------------------------------------------------------------
# Starting and stopping the town, dispatch, hand-over and the reports agents make from inside.


class UpReply(Reply, frozen=True, tag="up"):
    """What `Up` did: agents it started, ones already running, ones that failed (why),
    and dispatch's state ("running", "paused: reason")."""

    started: list[str]
    running: list[str]
    failed: dict[str, str] = {}
    dispatch: str = ""


class DownReply(Reply, frozen=True, tag="down"):
    stopped: list[str]


class DispatchRow(msgspec.Struct, frozen=True, kw_only=True):
    """One open dispatch: the bead, who holds it, and since when (ISO time)."""

    bead: int
    agent: str
    kind: str
    state: str
    branch: str = ""
    since: str = ""


class WaitingRow(msgspec.Struct, frozen=True, kw_only=True):
    """A backlog bead dispatch is not taking, with the reason (`WaitReason`)."""

    bead: int
    title: str
    reason: str
    detail: str = ""


class BudgetRow(msgspec.Struct, frozen=True, kw_only=True):
    """One budget and its spend (priced only): `scope` day, month or convoy; `level` ok,
    warn or stop; `key` the config key that raises it; `text` says it in words."""

    scope: str
    name: str
    spent_usd: float
    budget_usd: float
    percent: float
    level: str
    unpriced_tokens: int = 0
    key: str = ""
    text: str = ""


class PauseRow(msgspec.Struct, frozen=True, kw_only=True):
    """An account dispatch waits for after a rate-limit screen; `shown` is the screen's raw
    text (sanitize before showing), `parsed` whether its reset time was read from it."""

    account: str
    runtime: str
    agent: str
    until: str
    shown: str = ""
    parsed: bool = False
    text: str = ""


class DispatchStatus(Reply, frozen=True, tag="dispatch_status"):
    up: bool
    paused: bool
    pause_reason: str = ""
    polecats: int = 0
    max_polecats: int = 0
    ptys: int = 0
    max_ptys: int = 0
    active: list[DispatchRow] = []
    waiting: list[WaitingRow] = []
    budgets: list[BudgetRow] = []
    pauses: list[PauseRow] = []
    override_until: str = ""
    override_reason: str = ""


class SlingReply(Reply, frozen=True, tag="sling"):
    """A bead handed to an agent: whether the agent had to be started, and whether the
    work prompt was taken (with the evidence, or why not)."""

    bead: int
    agent: str
    started: bool = False
    delivered: bool = False
    attempts: int = 0
    evidence: str = ""


class DispatchSwitched(Reply, frozen=True, tag="dispatch_switched"):
    """Dispatch's switch after a `dispatch_control`; `changed` False: it already was so
    (pausing again only updates the reason)."""

    paused: bool
    reason: str = ""
    changed: bool = False


class MailSent(Reply, frozen=True, tag="mail_sent"):
    id: int
    to: str


class MailReceipts(Reply, frozen=True, tag="mail_receipts"):
    """The messages whose read receipt a `mail_read` set (those read before are left)."""

    read: list[int] = []


class Up(Request, frozen=True, tag="up"):
    """Start the town: mark it up, start the agents marked to start (or wanted back), and
    let dispatch run. Idempotent."""

    answer = UpReply


class Down(Request, frozen=True, tag="down"):
    """Stop every agent and dispatch; all state (beads, dispatches, wanted agents) is kept."""

    answer = DownReply
    grace: float = 3.0


class DispatchQuery(Request, frozen=True, tag="dispatch_status"):
    answer = DispatchStatus
    quiet = True


class DispatchControl(Request, frozen=True, tag="dispatch_control"):
    """Pause dispatch (once this is answered no bead is claimed; one being handed over
    completes) or resume it. Operator only."""

    answer = DispatchSwitched
    verb: Literal["pause", "resume"]
    reason: str = ""


class Sling(Request, frozen=True, tag="sling"):
    """Hand bead `bead` to `agent` (the operator only): started if stopped, the work
    prompt typed and verified."""

    answer = SlingReply
    bead: int
    agent: str
    actor: str = "operator"


class Report(Request, frozen=True, tag="report"):
    """An agent reporting on the bead on its own hook (the caller is named by process
    ancestry, never by what it claims): submit for review, fail with a reason, or a note.
    `bead` None means the caller's own bead."""

    answer = BeadChanged
    kind: Literal["submit", "fail", "note"]
    bead: int | None = None
    text: str = ""


class MailSend(Request, frozen=True, tag="mail_send"):
    """Mail from the caller (an agent, named by process ancestry, or the operator).
    `sender` "" means the caller; an agent naming anyone but itself is refused, the
    operator may send as any agent on the roster (`at mail send --from`)."""

    answer = MailSent
    to: str
    body: str
    subject: str = ""
    urgent: bool = False
    sender: str = ""


class MailRead(Request, frozen=True, tag="mail_read"):
    """Set the read receipts of messages to the caller (the operator, or the agent the
    caller runs inside): only a message's recipient sets its receipt, since mail to an
    agent read by anyone else would never be delivered to it. Every client hears
    `changed mail`."""

    answer = MailReceipts
    ids: list[int]


# ---- refinery -------------------------------------------------------------------------------
# The merge queue: what it is doing, what waits, what it did lately. Gate output (`tail`),
# titles and reasons are raw text an agent may have written: clients sanitize them.


class GateRow(msgspec.Struct, frozen=True, kw_only=True):
    """One gate on an attempt: `ok` None while it runs (or when a crash cut it)."""

    command: str
    ok: bool | None = None
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    tail: str = ""


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    """One merge attempt: `commits` are [sha, subject] pairs; `state` running, merging or
    closed; `outcome` empty while open."""

    id: int
    bead: int
    title: str
    n: int
    agent: str = ""
    branch: str = ""
    strategy: str = "rebase"
    target: str = ""
    target_before: str = ""
    result_commit: str = ""
    state: str
    outcome: str = ""
    reason: str = ""
    conflicts: list[str] = []
    commits: list[list[str]] = []
    gates: list[GateRow] = []
    started_at: str = ""
    finished_at: str = ""


class QueueRow(msgspec.Struct, frozen=True, kw_only=True):
    """A bead waiting in the merge queue; `waiting` says why it is held back, if it is
    (e.g. "retry in 30 s: <error>")."""

    bead: int
    title: str
    lane: str
    priority: int
    agent: str = ""
    branch: str = ""
    submitted_at: str = ""
    attempts: int = 0
    waiting: str = ""


class RefineryStatus(Reply, frozen=True, tag="refinery_status"):
    """The refinery's state (a `RefineryState` value) and its detail, the attempt running
    now with its current step, the queue and the recent attempts (newest first).
    `gates` None: `refinery.gates` is unset. `checkout_behind`: the operator's checkout is
    on the target and was moved under it (`at refinery sync`)."""

    state: str
    detail: str = ""
    paused: bool = False
    pause_reason: str = ""
    target: str = ""
    target_commit: str = ""
    gates: list[str] | None = None
    strategy: str = "rebase"
    max_attempts: int = 3
    step: str = ""
    step_since: str = ""
    current: AttemptRow | None = None
    queue: list[QueueRow] = []
    recent: list[AttemptRow] = []
    checkout_behind: bool = False


class RefineryQuery(Request, frozen=True, tag="refinery_status"):
    """The refinery's status, with the last `recent` attempts."""

    answer = RefineryStatus
    quiet = True
    recent: int = 10


class RefineryControl(Request, frozen=True, tag="refinery_control"):
    """Pause or resume the merge queue, or retry bead `bead` (its counted attempts are
    zeroed; an escalated bead returns to review). The operator only."""

    answer = RefineryStatus
    verb: Literal["pause", "resume", "retry"]
    bead: int | None = None
    reason: str = ""


# ---- frames ---------------------------------------------------------------------------------

AnyRequest = (
    Ping
    | Status
    | Agents
    | Approvals
    | Spawn
    | Stop
    | Restart
    | SendText
    | SendKeys
    | Nudge
    | Resize
    | Approve
    | Deny
    | Rules
    | RuleAdd
    | RuleRevoke
    | Screen
    | Record
    | Explain
    | History
    | Subscribe
    | Show
    | Shutdown
    | Hook
    | BeadCreate
    | BeadUpdate
    | BeadApply
    | BeadMove
    | ConvoyMove
    | ConvoyCreate
    | ConvoyAdd
    | AgentAdd
    | ConfigSet
    | ConfigUnset
    | Up
    | Down
    | DispatchQuery
    | DispatchControl
    | Sling
    | Report
    | MailSend
    | MailRead
    | RefineryQuery
    | RefineryControl
)
AnyReply = (
    Done
    | Pong
    | StatusReply
    | AgentList
    | ApprovalInfo
    | ApprovalList
    | RuleInfo
    | RuleList
    | Spawned
    | Stopped
    | Restarted
    | Delivered
    | Sent
    | ScreenText
    | Recorded
    | Explained
    | HistoryReply
    | Subscribed
    | Stopping
    | HookReply
    | BeadChanged
    | ConvoyChanged
    | AgentAdded
    | ConfigWritten
    | UpReply
    | DownReply
    | DispatchStatus
    | DispatchSwitched
    | SlingReply
    | MailSent
    | MailReceipts
    | RefineryStatus
)
AnyEvent = (
    Snapshot
    | StateEvent
    | ScreenEvent
    | ApprovalEvent
    | ApprovalResolvedEvent
    | ExitedEvent
    | TroubleEvent
    | RemovedEvent
    | StoreEvent
    | ChangedEvent
    | AttentionEvent
    | LinkEvent
)


class Frame(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line on the socket: a request, a reply (`ok` or `error`), or an event."""

    v: int
    id: int | None = None
    req: AnyRequest | None = None
    ok: AnyReply | None = None
    error: str | None = None
    ev: AnyEvent | None = None


class _Version(msgspec.Struct):
    v: Any = None


_ENCODER = msgspec.json.Encoder()
_VERSION_DECODER = msgspec.json.Decoder(_Version)


@cache
def _decoder() -> msgspec.json.Decoder[Frame]:
    """Made on the first decode, not at import: it resolves the annotations of every message
    type, which took a client a few percent of its first frame (the control room draws it
    before its first message arrives)."""
    return msgspec.json.Decoder(Frame)


def encode(frame: Frame) -> bytes:
    """One line of JSON; control characters in strings stay escaped."""
    return _ENCODER.encode(frame) + b"\n"


def encode_event(event: Event) -> bytes:
    """An event's line, made once and written to every client that wants it."""
    return encode(Frame(v=VERSION, ev=event))  # type: ignore[arg-type]


def decode(line: bytes) -> Frame:
    """Parse and validate one line; ProtocolError (one line, says why) if it is not a Frame."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message exceeds {MAX_LINE} bytes")
    try:
        frame = _decoder().decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _version_problem(line) or ProtocolError(f"malformed message: {error}") from error
    if frame.v != VERSION:
        raise _version_problem(line) or ProtocolError("unsupported protocol version")
    return frame


def _version_problem(line: bytes) -> ProtocolError | None:
    try:
        version = _VERSION_DECODER.decode(line).v
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if version == VERSION:
        return None
    return ProtocolError(
        f"protocol version {version!r} is not supported (this side speaks {VERSION}); "
        "upgrade or restart auto-tundra so both sides match"
    )


def request_frame(request: Request, request_id: int | None) -> bytes:
    """A request's line; without an id the daemon sends no reply."""
    return encode(Frame(v=VERSION, id=request_id, req=request))  # type: ignore[arg-type]


def reply_frame(request_id: int | None, reply: Reply) -> bytes:
    return encode(Frame(v=VERSION, id=request_id, ok=reply))  # type: ignore[arg-type]


def error_frame(request_id: int | None, error: str) -> bytes:
    return encode(Frame(v=VERSION, id=request_id, error=error))


REQUESTS: dict[str, type[Request]] = {
    str(cls.__struct_config__.tag): cls for cls in AnyRequest.__args__
}
"""Every operation by its wire name (`at` and the docs list them from here)."""
EVENTS: dict[str, type[Event]] = {str(cls.__struct_config__.tag): cls for cls in AnyEvent.__args__}
