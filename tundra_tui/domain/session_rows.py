"""Agent sessions as the Sessions tab lists them: the daemon's processes merged with the roster.

The daemon's `agents` answer arrives typed (checked at the wire), but its text is
another process's and is made safe here; agents it does not run are listed with the
store's last known state.
CPU use is the change in the process's CPU seconds over the change in its uptime
between two answers, both measured by the daemon.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tundra_tui.domain.agents import Agent, AgentState
from tundra_tui.domain.readout import cpu_percent
from tundra_tui.domain.sanitize import visible


class DaemonRow(Protocol):
    """What the daemon says of one running session (`daemon.protocol.AgentRow` is one;
    the domain names only the fields it reads, and imports nothing of the daemon's)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def runtime(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def uptime(self) -> float | None: ...
    @property
    def exit(self) -> str | None: ...
    @property
    def rss_kib(self) -> int | None: ...
    @property
    def cpu_seconds(self) -> float | None: ...
    @property
    def trouble(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One agent's session: its process figures are None when not running or not reported.

    `name` is the raw key (for requests and lookups); every other text is safe to show.
    """

    name: str
    state: AgentState
    runtime: str
    pid: int | None = None
    cpu: float | None = None
    rss_kib: int | None = None
    uptime: float | None = None
    tokens: int | None = None
    note: str = ""
    running: bool = False
    """True when the figures came from the daemon just now."""

    @property
    def label(self) -> str:
        """The name made safe to show."""
        return visible(self.name, single_line=True, limit=64)

    def matches(self, needle: str) -> bool:
        """Whether a search for `needle` (casefolded) finds this row."""
        text = f"{self.label} {self.state.value} {self.runtime} {self.pid or ''} {self.note}"
        return needle in text.casefold()


def _state(value: str) -> AgentState:
    try:
        return AgentState(value)
    except ValueError:
        return AgentState.UNKNOWN


class CpuMeter:
    """Remembers each process's last reading to turn the next one into a percent."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, float, float, float | None]] = {}

    def sample(
        self, name: str, pid: int | None, cpu: float | None, uptime: float | None
    ) -> float | None:
        """Record one (cpu seconds, uptime) reading; the percent since the previous one.

        None on a process's first reading. Showing the same reading again (a reload
        between two polls) keeps the percent it gave the first time.
        """
        if pid is None or cpu is None or uptime is None:
            self._last.pop(name, None)
            return None
        last = self._last.get(name)
        if last is not None and last[:3] == (pid, cpu, uptime):
            return last[3]
        before = (last[1], last[2]) if last is not None and last[0] == pid else None
        share = cpu_percent(before, (cpu, uptime))
        self._last[name] = (pid, cpu, uptime, share)
        return share


def session_rows(
    daemon: Iterable[DaemonRow],
    stored: Iterable[Agent],
    tokens: Mapping[str, int],
    meter: CpuMeter,
) -> list[SessionRow]:
    """Every agent: the daemon's sessions first-hand, the rest from the store, by name.

    `daemon` is the `agents` op's answer, or empty when the daemon is unreachable.
    """
    rows: dict[str, SessionRow] = {}
    runtimes = {agent.name: agent.runtime.value for agent in stored}
    for item in daemon:
        name = item.name
        pid = item.pid
        uptime = item.uptime
        cpu = meter.sample(name, pid, item.cpu_seconds, uptime)
        note = item.trouble or item.exit or ""
        rows[name] = SessionRow(
            name=name,
            state=_state(item.state),
            runtime=visible(item.runtime or runtimes.get(name, "?"), single_line=True),
            pid=pid,
            cpu=cpu,
            rss_kib=item.rss_kib,
            uptime=uptime if pid is not None else None,
            tokens=tokens.get(name),
            note=visible(note, single_line=True, limit=80),
            running=pid is not None,
        )
    for agent in stored:
        if agent.name not in rows:
            ended = agent.exit_status not in (None, 0) and agent.state is not AgentState.STOPPED
            note = f"exit {agent.exit_status}" if ended else ""
            rows[agent.name] = SessionRow(
                name=agent.name,
                state=agent.state,
                runtime=agent.runtime.value,
                tokens=tokens.get(agent.name),
                note=note,
            )
    return [rows[name] for name in sorted(rows)]
