"""When a crashed agent is started again, and when it is left failed (pure policy).

Modelled on supervisord: an exit within `start_seconds` of a start is a failed
start; every unexpected exit is retried after a delay that doubles each time;
more than `max_restarts` restarts within `window` seconds, or `max_failed_starts`
failed starts in a row, and the agent stays failed, visibly, until someone
starts it again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one exit: restart after `delay` seconds, or give up saying why."""

    restart: bool
    delay: float = 0.0
    reason: str = ""


@dataclass
class RestartPolicy:
    """Per-agent restart bookkeeping; time is passed in, never read, so tests are exact."""

    max_restarts: int = 5
    window: float = 300.0
    start_seconds: float = 3.0
    max_failed_starts: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    _restarts: deque[float] = field(default_factory=deque)
    _failed_starts: int = 0
    _started_at: float = 0.0

    def started(self, now: float) -> None:
        """Record a start (by the operator or by a restart)."""
        self._started_at = now

    def reset(self) -> None:
        """The operator started or stopped the agent by hand: forget past crashes."""
        self._restarts.clear()
        self._failed_starts = 0

    def exited(self, now: float, *, code: int | None, signal: int | None) -> Decision:
        """Decide about an exit nobody asked for."""
        while self._restarts and now - self._restarts[0] > self.window:
            self._restarts.popleft()
        early = now - self._started_at < self.start_seconds
        self._failed_starts = self._failed_starts + 1 if early else 0
        what = f"killed by signal {signal}" if signal else f"exit {code}"
        if self._failed_starts >= self.max_failed_starts:
            return Decision(
                False,
                reason=f"{what} within {self.start_seconds:g} s of starting, "
                f"{self._failed_starts} times in a row",
            )
        if len(self._restarts) >= self.max_restarts:
            return Decision(
                False,
                reason=f"{what}; already restarted {len(self._restarts)} times "
                f"in {self.window:g} s",
            )
        delay = min(self.base_delay * 2 ** len(self._restarts), self.max_delay)
        self._restarts.append(now)
        return Decision(True, delay, f"{what}; restart {len(self._restarts)} in {delay:g} s")
