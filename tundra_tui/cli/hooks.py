"""`at hook-event EVENT`: called by an agent CLI's own hooks (Claude Code), never by people.

Not to be confused with `at hook BEAD AGENT`, which pins work. The report goes
to the town's daemon over its socket (a daemon is never started for it: the
agent it reports on runs inside one). State events return at once. A
PermissionRequest waits in the daemon for the operator's answer, which is
printed in the form Claude Code expects. Anything that goes wrong (no town, no
daemon, no answer in time) answers deny: without a human, nothing is approved.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.peers import HOOK_SECRET_ENV
from tundra_tui.daemon.protocol import Hook, HookReply
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.hooks import (
    PERMISSION_EVENT,
    PERMISSION_TIMEOUT_S,
    permission_reply,
)

MAX_PAYLOAD = 1024 * 1024
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
    parser.add_argument(
        "payload", nargs="?", help="the event as JSON (Codex passes it here; default: stdin)"
    )
    parser.add_argument("--agent", help="the agent's name (default: $TUNDRA_AGENT)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=PERMISSION_TIMEOUT_S - 60,
        help="seconds to wait for an answer (shorter than the agent's own hook timeout, so "
        "the request is closed here, not abandoned)",
    )
    parser.set_defaults(handler=cmd_hook_event)


def _read_payload(given: str | None = None) -> dict[str, Any]:
    raw = given.encode() if given is not None else sys.stdin.buffer.read(MAX_PAYLOAD + 1)
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
        payload = _read_payload(ctx.args.payload)
        reply = await _report(ctx, event, payload)
        if reply.block:
            # A Stop hook's continuation (mail between turns): the agent goes on with it.
            print(json.dumps({"decision": "block", "reason": reply.block}), flush=True)
    except TundraError as error:
        # A state report that cannot be delivered must not disturb the agent.
        print(f"at hook-event: {error}", file=sys.stderr)
    return 0


async def _report(ctx: Context, event: str, payload: dict[str, Any]) -> HookReply:
    client = await DaemonClient.connect(ctx.town())
    try:
        reply: HookReply = await client.call(
            Hook(
                name=_agent(ctx),
                event=event,
                payload=payload,
                timeout=ctx.args.timeout,
                # Proves the report comes from the agent it names (set by the daemon at start).
                secret=ctx.env.get(HOOK_SECRET_ENV, ""),
            )
        )
        return reply
    finally:
        await client.close()


def _agent(ctx: Context) -> str:
    agent = ctx.args.agent or ctx.env.get("TUNDRA_AGENT", "")
    if not agent:
        raise TundraError("no agent name: pass --agent or set TUNDRA_AGENT")
    return str(agent)


async def _permission(ctx: Context) -> tuple[bool, str]:
    """(allow, message). Every failure path denies."""
    try:
        payload = _read_payload(ctx.args.payload)
        result = await _report(ctx, PERMISSION_EVENT, payload)
        if result.allow is True:
            return True, ""
        return False, f"The operator answered {result.status or 'no'}."
    except Exception as error:  # every failure denies: nothing is approved without a human
        print(f"at hook-event: {error}; denying", file=sys.stderr)
        return False, f"auto-tundra could not ask the operator ({error})."
