"""`HostDriver`: a real agent CLI run through our own `SessionHost`, not tmux.

The CLI runs in a PTY owned by :class:`tundra_tui.session.host.SessionHost`,
its screen is our emulator, its state is what our detector publishes, and
approvals are rows in a real store (a temp town made by ``init_town``). The host
is asyncio; the tests are plain functions, so the host lives on an event loop
in a background thread and every call hops onto that loop.

It satisfies the same ``Driver`` protocol as ``TmuxDriver`` (``start``,
``send_text``, ``send_key``, ``screen``, ``close``) and adds what only our host
can answer: the published state, ``submit`` with a ``Delivery``, approvals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.approvals import Approval, ApprovalSource
from tundra_tui.domain.events import Event
from tundra_tui.session.adapters import adapter_for
from tundra_tui.session.adapters.base import keys_from_config
from tundra_tui.session.agent import AgentConfig, AgentSession
from tundra_tui.session.events import HostEvent, StateChanged
from tundra_tui.session.host import Delivery, SessionHost
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town, init_town

T = TypeVar("T")

COLUMNS, ROWS = 120, 40
AGENT = "agent"

TIMINGS: dict[str, list[tuple[str, float]]] = {}
"""Per test: (step, seconds), printed in pytest's terminal summary."""


@dataclass(frozen=True)
class Transition:
    """One state the host published, when (seconds since start) and why."""

    at: float
    state: AgentState
    evidence: dict[str, object]

    def __str__(self) -> str:
        rule = self.evidence.get("rule", "")
        matched = str(self.evidence.get("matched", ""))[:60]
        return f"{self.at:7.2f}s {self.state.value:<18} {rule} {matched!r}"


class HostDriver:
    """One agent CLI (name ``agent``) in our SessionHost, with a real town and store.

    ``send_key`` takes the same key names as ``TmuxDriver`` (``Enter``, ``Escape``,
    ``1``, ``y``). Hooks report to a town daemon, so agents with hooks run through
    ``daemon_town.DaemonTown`` instead.
    """

    def __init__(
        self,
        runtime: Runtime,
        town_dir: Path,
        *,
        columns: int = COLUMNS,
        rows: int = ROWS,
    ) -> None:
        self.runtime = runtime
        self.columns = columns
        self.rows = rows
        self.name = AGENT
        self.transitions: list[Transition] = []
        self.t0 = time.monotonic()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.town: Town = init_town(town_dir)[0]
        self.store: Store = self.run(open_store(self.town.db_path))
        self.host: SessionHost = self.run(self._make_host())
        self.writer = StoreWriter()
        self.book = ApprovalBook(self.host, self.store, self.writer)
        self.run(self._open_book())
        self.host.subscribe(self._on_event)
        self.started = False

    async def _make_host(self) -> SessionHost:
        return SessionHost(self.store)

    async def _open_book(self) -> None:
        """The daemon's approval book, wired as the daemon wires it."""
        self.writer.start()
        await self.book.load()

    def _on_event(self, event: HostEvent) -> None:
        if isinstance(event, StateChanged) and event.agent == self.name:
            self.transitions.append(
                Transition(time.monotonic() - self.t0, event.state, dict(event.evidence))
            )

    # ---- running on the host's loop ------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the host's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run a plain function on the host's loop (the emulator is not thread-safe)."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped(), timeout)

    @property
    def session(self) -> AgentSession:
        return self.host.session(self.name)

    # ---- the Driver protocol ---------------------------------------------------------------

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        """Start ``argv`` with exactly ``env`` (like ``env -i``), as the runtime's adapter would."""
        adapter = adapter_for(self.runtime)
        launch = adapter.launch(
            command=shlex.join(argv[:1]), args=list(argv[1:]), env=dict(env), cwd=cwd, base_env={}
        )
        self.start_config(AgentConfig(self.name, adapter, launch, self.columns, self.rows))

    def start_config(self, config: AgentConfig) -> None:
        """Start a config built elsewhere (e.g. by ``tundra_tui.session.launch.agent_config``)."""
        assert config.name == self.name, config.name
        self.t0 = time.monotonic()
        self.run(self.host.start(config))
        self.started = True

    def send_text(self, text: str) -> None:
        """Literal text, no Enter (the Driver protocol); see :meth:`submit` for prompts."""
        self.call(lambda: self.host.send_keys(self.name, text.encode()))

    def send_key(self, key: str) -> None:
        self.call(lambda: self.host.send_keys(self.name, keys_from_config(key)))

    def screen(self) -> str:
        return self.call(lambda: self.session.emulator.text())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.run(self._shutdown(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    async def _shutdown(self) -> None:
        await self.host.close()
        await self.writer.close()
        await self.store.close()

    def timed(self, step: str, seconds: float) -> float:
        """Note how long a step took (shown in the terminal summary)."""
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0].split("::")[-1]
        TIMINGS.setdefault(test, []).append((step, seconds))
        return seconds

    # ---- what only our host can answer -----------------------------------------------------

    def state(self) -> AgentState:
        return self.call(lambda: self.session.state)

    def submit(self, text: str) -> Delivery:
        """``host.send_text``: typed text, a pause, Enter, and a check the agent took it."""
        return self.run(self.host.send_text(self.name, text))

    def wait_state(
        self,
        want: AgentState | Callable[[AgentState], bool],
        timeout: float = 30.0,
        what: str = "",
        *,
        screen: Callable[[str], bool] | None = None,
    ) -> float:
        """Poll until the published state matches (and ``screen`` holds); returns seconds taken."""
        pred = (lambda s: s is want) if isinstance(want, AgentState) else want
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            state, text = self.call(lambda: (self.session.state, self.session.emulator.text()))
            if pred(state) and (screen is None or screen(text)):
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what or want}; "
            f"state {self.state().value}\n{self.describe()}"
        )

    def pending_approval(
        self, timeout: float = 15.0, *, source: ApprovalSource | None = None
    ) -> Approval:
        """The request the host says the agent waits on (of ``source``, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            approval_id = self.call(lambda: self.book.pending_for(self.name))
            if approval_id is not None:
                approval = self.call(lambda found=approval_id: self.book.get(found))
                if approval is not None and (source is None or approval.source is source):
                    return approval
            time.sleep(0.05)
        raise AssertionError(
            f"no pending approval (source {source}) for {self.name}\n{self.describe()}"
        )

    def pending_for_agent(self) -> int | None:
        """``book.pending_for(agent)``."""
        return self.call(lambda: self.book.pending_for(self.name))

    def approve(self, approval_id: int) -> Approval:
        return self.run(self.book.approve(approval_id, actor="operator"))

    def deny(self, approval_id: int) -> Approval:
        return self.run(self.book.deny(approval_id, actor="operator"))

    def approval(self, approval_id: int) -> Approval:
        self.run(self.writer.drain(10.0))
        return self.run(self.store.approvals.get(approval_id))

    def pending(self) -> list[Approval]:
        return self.call(lambda: self.book.pending())

    def all_approvals(self) -> list[Approval]:
        """Every request ever recorded, oldest first."""
        ids = [int(e.data["id"]) for e in self.events("approval.requested")]
        return [self.approval(i) for i in ids]

    def events(self, kind_prefix: str = "") -> list[Event]:
        self.run(self.writer.drain(10.0))
        return self.run(self.store.events.find(kind_prefix=kind_prefix, limit=1000))

    def describe(self) -> str:
        """Transitions and the bottom of the screen, for failure messages."""
        lines = "\n".join(str(t) for t in self.transitions[-25:])
        try:
            bottom = "\n".join(self.call(lambda: self.session.screen_lines()))
        except Exception as error:  # the loop may be gone
            bottom = f"(no screen: {error})"
        return f"transitions:\n{lines}\nbottom of screen:\n{bottom}"
