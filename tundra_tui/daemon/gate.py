"""Who may do what: the operator answers approvals and types freely; an agent may not.

A caller's connection is checked once (its process ancestry), and every request
that types into an agent or speaks for one is checked here: raw keys from inside
an agent are refused, text from inside an agent is refused while a request waits
(checked again right before each write), and a hook report must come from inside
the agent it names and carry the secret that agent was started with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.peers import inside, inside_an_agent, new_hook_secret, secret_matches
from tundra_tui.daemon.transport import Caller
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.session.host import SessionHost


class Gate:
    """The trust checks every operation that could answer an approval goes through."""

    def __init__(
        self,
        host: SessionHost,
        book: ApprovalBook,
        refused: Callable[[str, Mapping[str, object]], None],
    ) -> None:
        self.host = host
        self.book = book
        self._refused = refused
        """Records a refusal (an audit event)."""
        self._secrets: dict[str, str] = {}

    def inside(self, caller: Caller) -> bool:
        """Whether the caller runs inside an agent, worked out once per connection. A
        process's ancestry only changes by its parent dying, which leaves it an orphan of
        ours: inside, as cached or not."""
        if caller.inside is None:
            pids = (s.pid for s in self.host.sessions() if s.pid)
            caller.inside = inside_an_agent(caller.peer.pid, pids)
        return caller.inside

    def agent_of(self, caller: Caller) -> str | None:
        """The agent the caller runs inside: the one live session whose process tree (its
        pid or its mark) holds the caller's pid. None for the operator, and for a caller
        that cannot be tied to exactly one agent. The environment (`TUNDRA_ACTOR`) is
        never trusted: any process can set it."""
        found = [
            s.name
            for s in self.host.sessions()
            if s.pid and s.pty is not None and inside(caller.peer.pid, s.pid, s.pty.mark)
        ]
        return found[0] if len(found) == 1 else None

    def input(self, caller: Caller, target: str, *, raw: bool) -> Callable[[], None] | None:
        """Check input for `target` now; for an agent's input, also the check to repeat
        right before each write (a prompt may open while it is typed)."""
        from_agent = self.inside(caller)
        self.book.check_input(target, from_agent=from_agent, raw=raw)
        if not from_agent:
            return None
        return lambda: self.book.check_input(target, from_agent=True, raw=raw)

    def operator_only(self, caller: Caller, op: str, reason: str) -> None:
        """Refuse `op` (with `reason`) to a caller inside an agent."""
        if self.inside(caller):
            self._refused("daemon.agent_refused", {"pid": caller.peer.pid, "op": op})
            raise TundraError(reason)

    def new_secret(self, agent: str) -> str:
        """A fresh hook secret for an agent being started (kept once it has started)."""
        return new_hook_secret()

    def started(self, agent: str, secret: str) -> None:
        self._secrets[agent] = secret

    def forget(self, agent: str) -> None:
        self._secrets.pop(agent, None)

    def hook_caller(self, caller: Caller, agent: str, secret: str, event: str) -> None:
        """A hook report speaks for one agent: it must come from inside that agent's own
        process tree and carry the secret that agent was started with."""
        try:
            session = self.host.session(agent)
        except NotFound:
            raise TundraError(f"agent {agent!r} is not running here") from None
        pty = session.pty
        from_inside = pty is not None and inside(caller.peer.pid, session.pid, pty.mark)
        expected = self._secrets.get(agent, "")
        if not from_inside or not secret_matches(secret, expected):
            data = {"agent": agent, "pid": caller.peer.pid, "event": event[:100]}
            self._refused("daemon.hook_refused", data)
            raise TundraError(f"refused: this hook report does not come from agent {agent!r}")
