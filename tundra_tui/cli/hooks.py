"""`at hook-event EVENT`: called by an agent CLI's own hooks (Claude Code), never by people.

Not to be confused with `at hook BEAD AGENT`, which pins work. State events are
appended to the audit log, where the session host picks them up. A
PermissionRequest becomes a pending approval; this process waits for the
operator's answer and prints it in the form Claude Code expects. Anything that
goes wrong (no town, no database, no answer in time) answers deny: without a
human, nothing is approved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
from tundra_tui.domain.errors import IllegalTransition, TundraError
from tundra_tui.session.hooks import (
    PERMISSION_EVENT,
    PERMISSION_TIMEOUT_S,
    permission_ask,
    permission_reply,
    state_payload,
)

MAX_PAYLOAD = 1024 * 1024
POLL_INTERVAL_S = 0.1
HELP = "report an agent hook (called by agent CLIs' hooks, not by people)"


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Register `at hook-event EVENT [--agent NAME] [--timeout S]`."""
    parser = commands.add_parser("hook-event", help=HELP, description=__doc__)
    if common is not None:
        common(parser)
    parser.add_argument("event", help="the hook's event name, e.g. PermissionRequest")
    parser.add_argument("--agent", help="the agent's name (default: $TUNDRA_AGENT)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=PERMISSION_TIMEOUT_S - 60,
        help="seconds to wait for an answer (shorter than the agent's own hook timeout, so "
        "the request is closed here, not abandoned)",
    )
    parser.set_defaults(handler=cmd_hook_event)


def _read_payload() -> dict[str, Any]:
    raw = sys.stdin.buffer.read(MAX_PAYLOAD + 1)
    if len(raw) > MAX_PAYLOAD:
        raise TundraError("hook payload exceeds 1 MiB")
    try:
        payload = json.loads(raw.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError as error:
        raise TundraError(f"hook payload is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise TundraError("hook payload is not a JSON object")
    return payload


async def cmd_hook_event(ctx: Context) -> int:
    """Record a state event, or hold a permission request until the operator answers."""
    event = ctx.args.event
    if event == PERMISSION_EVENT:
        allow, message = await _permission(ctx)
        print(json.dumps(permission_reply(allow, message)), flush=True)
        return 0
    try:
        payload = _read_payload()
        agent = _agent(ctx)
        store = await ctx.store()
        await store.events.record(
            "agent.hook", actor=agent, agent=agent, data=state_payload(event, payload)
        )
    except TundraError as error:
        # A state report that cannot be recorded must not disturb the agent.
        print(f"at hook-event: {error}", file=sys.stderr)
    return 0


def _agent(ctx: Context) -> str:
    agent = ctx.args.agent or ctx.env.get("TUNDRA_AGENT", "")
    if not agent:
        raise TundraError("no agent name: pass --agent or set TUNDRA_AGENT")
    return str(agent)


async def _permission(ctx: Context) -> tuple[bool, str]:
    """(allow, message). Every failure path denies."""
    try:
        payload = _read_payload()
        agent = _agent(ctx)
        ask = permission_ask(payload)
        store = await ctx.store()
        approval = await store.approvals.request(
            agent=agent,
            runtime="claude",
            subject=ask.subject,
            tool=ask.tool,
            cwd=ask.cwd,
            source=ApprovalSource.HOOK,
            evidence={
                "source": "hook",
                "rule": "claude.hook.permission_request",
                "matched": f"{ask.tool}: {ask.subject[:200]}",
            },
            actor=agent,
        )
        deadline = time.monotonic() + ctx.args.timeout
        while time.monotonic() < deadline:
            current = await store.approvals.get(approval.id)
            if current.status is ApprovalStatus.APPROVED:
                return True, ""
            if current.status is not ApprovalStatus.PENDING:
                return False, f"The operator answered {current.status.value}."
            await asyncio.sleep(POLL_INTERVAL_S)
        try:
            await store.approvals.decide(approval.id, ApprovalStatus.EXPIRED, actor="at")
        except IllegalTransition:
            # Answered in the last instant: honour the answer.
            answered = await store.approvals.get(approval.id)
            return answered.status is ApprovalStatus.APPROVED, ""
        return False, "No answer from the operator in time."
    except Exception as error:  # every failure denies: nothing is approved without a human
        print(f"at hook-event: {error}; denying", file=sys.stderr)
        return False, f"auto-tundra could not ask the operator ({error})."
