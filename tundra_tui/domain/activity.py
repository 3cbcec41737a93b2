"""One readable line per audit-log event, for activity feeds and timelines.

Event data was written by agents and users as much as by us, so every value is
made visible through the sanitizer and the whole line is kept to one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.beads import format_bead_id
from tundra_tui.domain.events import Event
from tundra_tui.domain.sanitize import visible

MAX_SUMMARY = 200
"""Characters of a summary; feeds cut it shorter to their width."""

_VALUE_LIMIT = 80


def _v(value: object, limit: int = _VALUE_LIMIT) -> str:
    return visible(str(value), single_line=True, limit=limit)


def _bead(event: Event) -> str:
    return format_bead_id(event.bead_id) if event.bead_id is not None else "a bead"


def _who(event: Event) -> str:
    """The agent an event is about, named only when someone else acted on it."""
    return f"{_v(event.agent)} " if event.agent and event.agent != event.actor else ""


def _convoy(event: Event, names: Mapping[int, str]) -> str:
    name = event.data.get("convoy") or event.data.get("name")
    if not name and event.convoy_id is not None:
        name = names.get(event.convoy_id, f"#{event.convoy_id}")
    return f"convoy {_v(name or '?')}"


def _bead_line(event: Event, verb: str) -> str:
    data = event.data
    bead = _bead(event)
    if verb == "created":
        return f"created {bead} “{_v(data.get('title', ''))}”"
    if verb == "hook":
        claimed = data.get("claim") and data.get("assignee") == event.actor
        if claimed:
            return f"claimed {bead}"
        return f"hooked {bead} to {_v(data.get('assignee', '?'))}"
    if verb == "sling":
        return f"slung {bead} to {_v(data.get('assignee', '?'))}"
    if verb in ("blocked", "unblocked"):
        blocker = data.get("blocker")
        by = format_bead_id(blocker) if isinstance(blocker, int) else "?"
        return f"{bead} {'blocked' if verb == 'blocked' else 'unblocked'} by {by}"
    phrase = {
        "unhook": f"unhooked {bead}",
        "submit": f"submitted {bead} for review",
        "done": f"done {bead}",
        "rework": f"sent {bead} back for rework",
        "fail": f"failed {bead}",
        "escalate": f"escalated {bead}",
        "reopen": f"reopened {bead}",
        "edited": f"edited {bead}",
        "return": f"returned {bead} to backlog",
        "retry": f"retry the merge of {bead}",
    }.get(verb, f"{_v(verb)} {bead}")
    if verb == "done" and data.get("merged_commit"):
        return f"done {bead}: merged as {_sha(data['merged_commit'])}"
    if verb == "note":
        return f"note on {bead}: “{_v(data.get('excerpt', ''), 60)}”"
    reason = data.get("reason")
    return f"{phrase}: {_v(reason)}" if reason else phrase


def _is_live(state: str) -> bool | None:
    """Whether a stored `agent.state` value is a running one; None if it names no state."""
    try:
        return AgentState(state).is_live
    except ValueError:
        return None


def _agent_line(event: Event, verb: str) -> str:
    data, who = event.data, _v(event.agent or "?")
    if verb == "state":
        before, after = str(data.get("from", "?")), str(data.get("to", "?"))
        if _is_live(before) is False and _is_live(after):
            # A start, not a change of mind: "stopped → unknown" read like a fault.
            return f"{who} started" + ("" if after == "unknown" else f", {_v(after)}")
        return f"{who} {_v(before)} → {_v(after)}"
    if verb in ("added", "changed"):
        return f"{verb} agent {who} ({_v(data.get('role', '?'))}, {_v(data.get('runtime', '?'))})"
    if verb == "removed":
        return f"removed agent {who}"
    if verb == "trouble":
        return f"{who} trouble: {_v(data.get('kind', '?'))}"
    if verb == "crashed":
        if data.get("restart"):
            return f"{who} crashed, restart in {_v(data.get('delay', '?'))}s"
        return f"{who} crashed: {_v(data.get('reason', 'left failed'))}"
    if verb == "task":
        delivered = "delivered" if data.get("delivered") else "not delivered"
        return f"task {delivered} to {who}"
    if verb == "hook":
        return f"{who} hook {_v(data.get('event', '?'))}"
    if verb == "notify":
        return f"{who} notify {_v(data.get('type', '?'))}"
    return f"{who} {_v(verb)}"


def _approval_line(event: Event, verb: str) -> str:
    data = event.data
    if verb == "requested":
        tool = _v(data.get("tool", ""), 30)
        subject = _v(data.get("subject", ""))
        return f"{_who(event) or _v(event.agent or '?') + ' '}asks: {tool} {subject}".rstrip()
    return f"{_v(verb)} request #{_v(data.get('id', '?'))}"


def _convoy_line(event: Event, verb: str, names: Mapping[int, str]) -> str:
    convoy = _convoy(event, names)
    if verb == "bead_added":
        return f"added {_bead(event)} to {convoy}"
    words = {
        "created": f"created {convoy}",
        "start": f"started {convoy}",
        "pause": f"paused {convoy}",
        "completed": f"{convoy} completed",
        "reopened": f"{convoy} reopened",
    }
    return words.get(verb, f"{_v(verb)} {convoy}")


def _mail_line(event: Event, verb: str) -> str:
    data = event.data
    if verb == "sent":
        urgent = "urgent " if data.get("urgent") else ""
        return f"{urgent}mail {_v(data.get('from', '?'))} → {_v(data.get('to', '?'))}"
    if verb == "read":
        return f"read mail #{_v(data.get('id', '?'))}"
    if verb in ("delivered", "undelivered"):
        ids = data.get("ids")
        count = len(ids) if isinstance(ids, list) else 0
        what = f"{count} message{'' if count == 1 else 's'}" if count else "mail"
        to = _v(event.agent or "?")
        if verb == "delivered":
            via = " at its Stop hook" if data.get("via") == "stop_hook" else ""
            return f"delivered {what} to {to}{via}"
        return _with_reason(f"{what} to {to} not delivered", data)
    return f"mail {_v(verb)}"


def _with_reason(phrase: str, data: Mapping[str, object]) -> str:
    reason = data.get("reason")
    return f"{phrase}: {_v(reason)}" if reason else phrase


def _dispatch_line(event: Event, verb: str) -> str:
    """The daemon's hand-outs: one line per step of a bead's way to an agent."""
    data, bead, agent = event.data, _bead(event), _v(event.agent or "?")
    if verb == "claimed":
        if data.get("kind") == "sling":
            return f"handing {bead} to {agent}"
        return f"dispatched {bead} to {agent}"
    if verb == "delivered":
        attempts = data.get("attempts")
        tries = f" ({_v(attempts)} attempts)" if isinstance(attempts, int) and attempts > 1 else ""
        latency = data.get("latency_s")
        after = (
            f" {_duration(float(latency))} after it was ready"
            if isinstance(latency, int | float) and _is_number(latency)
            else ""
        )
        return f"{agent} took the work for {bead}{after}{tries}"
    if verb == "returned":
        return _with_reason(f"{bead} back to backlog from {agent}", data)
    if verb == "failed":
        return _with_reason(f"hand-over of {bead} to {agent} failed", data)
    if verb == "worktree_dirty":
        return f"{bead}: {_v(data.get('left', '?'))} left dirty, {agent} starts a new branch"
    if verb in ("paused", "resumed"):
        return _with_reason(f"dispatch {verb}", data)
    return _with_reason(f"dispatch {_v(verb)} {bead}", data)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _duration(seconds: float) -> str:
    """`1.3s`, `42s`, `12 min`, `5 h`, `3 days`: a bead ready for days before the town came
    up is not worth counting in seconds."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _town_line(event: Event, verb: str) -> str:
    return _with_reason(f"town {_v(verb)}", event.data)


def _polecat_line(event: Event, verb: str) -> str:
    agent, bead = _v(event.agent or "?"), _bead(event)
    if verb in ("started", "reused"):
        return f"{verb} {agent} for {bead}"
    return _with_reason(f"{_v(verb)} {agent}", event.data)


def _witness_line(event: Event, verb: str) -> str:
    """What the witness found and did; the reason says why, in its words."""
    data, agent, bead = event.data, _v(event.agent or "?"), _bead(event)
    if verb == "nudged":
        count = data.get("nudges")
        nth = f" (reminder {_v(count)})" if isinstance(count, int) else ""
        return f"reminded {agent} of {bead}{nth}"
    if verb == "escalated":
        return _with_reason(f"escalated {bead} held by {agent}", data)
    if verb == "stalled":
        return _with_reason(f"{agent} stalled", data)
    if verb == "approval_wait":
        approval = data.get("approval")
        which = f" #{_v(approval)}" if approval is not None else ""
        return _with_reason(f"{agent}'s approval{which} waits too long", data)
    if verb == "agent_died":
        return f"{agent} died holding {bead}; the bead goes back to backlog"
    if verb == "agent_stopped":
        return f"{agent} was stopped holding {bead}; the bead goes back to backlog"
    if verb == "notify_failed":
        error = data.get("error") or data.get("reason")
        return f"notify command failed: {_v(error or '?')}"
    return _with_reason(f"{agent} {_v(verb)}", data)


def _sha(value: object) -> str:
    return _v(value, 40)[:7] or "?"


def _seconds(value: object) -> str:
    if isinstance(value, int | float) and _is_number(value):
        return f" {_duration(float(value))}"
    return ""


_OUTCOME_WORDS = {
    "conflict": "conflict",
    "gate_failed": "gate failed",
    "target_moved": "the target moved",
    "withdrawn": "withdrawn",
    "interrupted": "interrupted",
    "error": "error",
}
_PATH_WORDS = {"mail": "rework by mail", "backlog": "back to backlog", "escalated": "escalated"}


def _refinery_line(event: Event, verb: str) -> str:
    """The merge queue's steps: each says which bead, what happened and why."""
    data, bead = event.data, _bead(event)
    if verb == "started":
        n = data.get("n")
        nth = f" (attempt {_v(n)})" if isinstance(n, int) and n > 1 else ""
        return f"merging {bead}{nth}"
    if verb == "gate":
        idx = data.get("idx")
        which = f"gate {idx + 1}" if isinstance(idx, int) else "gate"
        command = _v(data.get("command", ""), 40)
        if data.get("timed_out"):
            verdict = "✗ timed out"
        elif data.get("ok"):
            verdict = "✓"
        else:
            verdict = f"✗ exit {_v(data.get('exit', '?'))}"
        line = f"{bead} {which} {verdict}{_seconds(data.get('seconds'))}"
        return f"{line}: {command}" if command else line
    if verb == "verified":
        result = data.get("result_commit") or data.get("result")
        return f"verified {bead}" + (f": gates green on {_sha(result)}" if result else "")
    if verb == "merged":
        target = _v(data.get("target", "the target"), 40).removeprefix("refs/heads/")
        return f"merged {bead} into {target} as {_sha(data.get('result', ''))}"
    if verb == "merged_late":
        return _with_reason(f"{bead} landed after it was moved by hand", data)
    if verb == "closed":
        outcome = _OUTCOME_WORDS.get(str(data.get("outcome")), _v(data.get("outcome", "?")))
        return _with_reason(f"merge of {bead} stopped ({outcome})", data)
    if verb == "rejected":
        outcome = _OUTCOME_WORDS.get(str(data.get("outcome")), _v(data.get("outcome", "?")))
        conflicts = data.get("conflicts")
        where = ""
        if isinstance(conflicts, list) and conflicts:
            shown = ", ".join(_v(path, 40) for path in conflicts[:3])
            where = f" in {shown}" + (f" +{len(conflicts) - 3}" if len(conflicts) > 3 else "")
        then = _PATH_WORDS.get(str(data.get("path")), "")
        return f"{bead} rejected: {outcome}{where}" + (f" → {then}" if then else "")
    if verb == "escalated":
        return _with_reason(f"escalated {bead} after its merge attempts", data)
    if verb in ("target_red", "target_green"):
        target = _v(data.get("target", "target"), 40).removeprefix("refs/heads/")
        commit = data.get("commit")
        at = f" at {_sha(commit)}" if commit else ""
        colour = "red: its gates fail" if verb == "target_red" else "green again"
        return f"{target}{at} {colour}"
    if verb in ("paused", "resumed"):
        return _with_reason(f"refinery {verb}", data)
    if verb == "retry":
        return f"retry the merge of {bead}"
    if verb == "cleaned":
        return f"tidied {bead}'s worktree and branch"
    if verb == "cleanup_left":
        return _with_reason(f"left {bead}'s worktree in place", data)
    if verb == "error":
        return _with_reason(
            f"refinery error on {bead}" if event.bead_id else "refinery error", data
        )
    return _with_reason(f"refinery {_v(verb)} {bead}", data)


def _generic(event: Event) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    pairs = " ".join(f"{_v(key, 20)}={_v(value, 30)}" for key, value in data.items())
    return f"{_v(event.kind)} {pairs}".rstrip()


_FAMILIES: dict[str, Callable[[Event, str], str]] = {
    "bead": _bead_line,
    "agent": _agent_line,
    "approval": _approval_line,
    "mail": _mail_line,
    "dispatch": _dispatch_line,
    "town": _town_line,
    "polecat": _polecat_line,
    "witness": _witness_line,
    "refinery": _refinery_line,
}


def summarize(event: Event, convoy_names: Mapping[int, str] | None = None) -> str:
    """A short sentence for one event, e.g. `hooked #42 to mayor`; always one visible line."""
    family, _, verb = event.kind.partition(".")
    try:
        if family == "convoy":
            line = _convoy_line(event, verb, convoy_names or {})
        elif family in _FAMILIES:
            line = _FAMILIES[family](event, verb)
        else:
            line = _generic(event)
    except (TypeError, ValueError, AttributeError):
        line = _generic(event)
    return visible(line, single_line=True, limit=MAX_SUMMARY)


SYSTEM_ACTORS = frozenset({"daemon"})
"""Actors not worth naming in a feed: the summary already says which agent changed."""


def byline(event: Event, summary: str) -> str:
    """Who to name before a summary in a feed: `mayor` in `mayor done #42`, or nobody
    when the actor is the daemon or the summary already starts with them."""
    actor = visible(event.actor, single_line=True, limit=24)
    if event.actor in SYSTEM_ACTORS or summary.startswith(f"{actor} "):
        return ""
    return actor


def matches(event: Event, summary: str, needle: str) -> bool:
    """Whether a search for `needle` (already casefolded) finds this event."""
    haystack = f"{event.actor} {event.agent} {event.kind} {summary}".casefold()
    return needle in haystack
