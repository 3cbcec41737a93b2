"""Who is on the other end of a daemon connection: the operator, or something inside an agent.

Only the operator approves, and nothing an agent runs may type into an agent
while a request waits. The kernel tells us the peer's pid and uid
(SO_PEERCRED); an agent's descendants carry its mark in their environment, or
have an agent (or, once orphaned, this daemon, their subreaper) among their
ancestors. A hook report must come from inside the very agent it names, with
that agent's own secret, so one agent cannot speak for another.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tundra_tui.session.pty import carries_mark

HOOK_SECRET_ENV = "TUNDRA_HOOK_SECRET"
"""Each agent's hooks prove who they speak for with this per-start secret."""


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a connection, as the kernel reports it."""

    pid: int | None
    uid: int | None


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    """The connected client's pid and uid (SO_PEERCRED); unknown where unavailable."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return Peer(None, None)
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return Peer(int(pid) or None, int(uid))


def ancestry(pid: int) -> list[int] | None:
    """`pid` and its parents up to (not including) init; None if the chain breaks first.

    A broken chain means a process in it is gone (or hidden from us): the peer that
    connected may have exited and left its socket to whatever it forked, so nothing
    can be concluded from it."""
    chain: list[int] = []
    while pid > 1 and pid not in chain:
        chain.append(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            pid = int(fields[1])
        except (OSError, IndexError, ValueError):
            return None
    return chain


def inside_an_agent(pid: int | None, agent_pids: Iterable[int]) -> bool:
    """True if `pid` runs inside an agent: its mark is in the environment, or its
    ancestry passes through an agent or this daemon (agents' orphans are ours).

    An unknown peer, or one whose ancestry cannot be read to the end (it exited after
    connecting and left the socket to a child), counts as inside: refuse rather than
    risk an agent answering itself.
    """
    chain = ancestry(pid) if pid is not None else None
    if chain is None:
        return True
    agents = set(agent_pids)
    me = os.getpid()
    return any(a in agents or a == me or carries_mark(a) for a in chain)


def inside(pid: int | None, agent_pid: int | None, mark: str) -> bool:
    """True if `pid` is the agent `agent_pid` or one of its descendants."""
    chain = ancestry(pid) if pid is not None else None
    if chain is None or agent_pid is None:
        return False
    return any(a == agent_pid or carries_mark(a, mark) for a in chain)


def new_hook_secret() -> str:
    """A fresh secret for one start of one agent."""
    return secrets.token_urlsafe(24)


def secret_matches(given: object, expected: str) -> bool:
    """Constant-time comparison; a missing or non-string secret never matches."""
    return isinstance(given, str) and bool(expected) and secrets.compare_digest(given, expected)
