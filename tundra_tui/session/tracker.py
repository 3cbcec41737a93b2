"""Combining detections over time into the state an agent is published in.

Structured signals (hooks, notify) outrank the screen while fresh; a screen
that keeps changing counts as working for runtimes that do not always show it;
idle is published only after it has held for a moment; leaving an approval is
immediate. Time is passed in, never read, so every rule is testable exactly.
"""

from __future__ import annotations

from tundra_tui.session.detect import Detected, Detection, Evidence

ACTIVITY_RULE = "activity.screen_changed"
"""The rule of a working state inferred only from a changing screen: weak evidence."""


def only_activity(rule: str) -> bool:
    """True when a decision rests on nothing but screen activity (no rule, no hook)."""
    return rule == ACTIVITY_RULE


ACTIVITY_RUNTIMES = frozenset({"claude", "codex", "aider", "custom"})
"""Runtimes whose working state is not always on screen (real-agents.md §8 lesson 3):
Codex shows no status while text streams, Aider only the growing text, Claude Code
only `●`; for custom we cannot know. For them a changing screen is working evidence."""

_START = Detection(Detected.UNKNOWN, Evidence("process", "tracker.start", "", "nothing observed"))


class StateTracker:
    """Combines screen detections and structured signals into one published state.

    - A structured `awaiting_approval` holds until a later structured signal, or
      until the screen shows the prompt gone (it showed the prompt, then a definite
      other state; or it shows idle). Other structured signals win while fresh.
    - A screen approval is published at once.
    - For `ACTIVITY_RUNTIMES`, a screen that changed within `activity_window`
      seconds counts as working.
    - A screen-derived idle (or unknown) replaces a different state only after it
      has held for `idle_debounce`, because prompts flash into view between tool
      calls. Leaving an approval is immediate: a stale approval is worse than a flicker.
    Time is always passed in, so tests drive it exactly.
    """

    def __init__(
        self,
        runtime: str,
        *,
        activity_window: float = 0.6,
        idle_debounce: float = 0.5,
        structured_ttl: float = 2.0,
        activity_means_working: bool | None = None,
    ) -> None:
        self.runtime = runtime
        self.activity_window = activity_window
        self.idle_debounce = idle_debounce
        self.structured_ttl = structured_ttl
        self.activity_means_working = (
            runtime in ACTIVITY_RUNTIMES
            if activity_means_working is None
            else activity_means_working
        )
        self._screen: Detection | None = None
        self._screen_since = 0.0
        self._changed_at: float | None = None
        self._structured: Detection | None = None
        self._structured_at = 0.0
        self._approval_on_screen = False
        self._published = _START
        self._settling_since: float | None = None

    def observe_screen(self, detection: Detection, now: float, screen_changed: bool) -> Detection:
        """Record a screen detection taken at `now`; returns the published state."""
        if self._screen is None or detection.state is not self._screen.state:
            self._screen_since = now
        self._screen = detection
        if screen_changed:
            self._changed_at = now
        structured = self._structured
        if structured is not None and structured.state is Detected.AWAITING_APPROVAL:
            if detection.state is Detected.AWAITING_APPROVAL:
                self._approval_on_screen = True
            elif detection.state is Detected.IDLE or (
                self._approval_on_screen and detection.state is Detected.WORKING
            ):
                self._structured = None
        return self.current(now)

    def observe_structured(self, detection: Detection, now: float) -> Detection:
        """Record a hook or notify detection received at `now`; returns the published state."""
        self._structured = detection
        self._structured_at = now
        self._approval_on_screen = False
        return self.current(now)

    def current(self, now: float) -> Detection:
        """The state to publish at `now`, with its evidence."""
        candidate, settles = self._candidate(now)
        previous = self._published
        if (
            settles
            and candidate.state is not previous.state
            and previous.state is not Detected.AWAITING_APPROVAL
        ):
            if self._settling_since is None:
                self._settling_since = self._settle_start(now)
            if now - self._settling_since < self.idle_debounce:
                return previous
        self._settling_since = None
        self._published = candidate
        return candidate

    def _candidate(self, now: float) -> tuple[Detection, bool]:
        """The state the inputs point to now, and whether it must settle before publishing."""
        structured, screen = self._structured, self._screen
        if structured is not None and structured.state is Detected.AWAITING_APPROVAL:
            return structured, False
        if screen is not None and screen.state is Detected.AWAITING_APPROVAL:
            return screen, False
        if structured is not None and now - self._structured_at <= self.structured_ttl:
            return structured, False
        if self._active(now) and (screen is None or screen.state is not Detected.WORKING):
            assert self._changed_at is not None
            shown = screen.evidence.rule if screen and screen.evidence else "none"
            return Detection(
                Detected.WORKING,
                Evidence(
                    "screen",
                    ACTIVITY_RULE,
                    "",
                    f"screen changed {now - self._changed_at:.2f}s ago; screen rule {shown}",
                ),
            ), False
        if screen is None:
            return _START, False
        return screen, screen.state in (Detected.IDLE, Detected.UNKNOWN)

    def _active(self, now: float) -> bool:
        return (
            self.activity_means_working
            and self._changed_at is not None
            and now - self._changed_at <= self.activity_window
        )

    def _settle_start(self, now: float) -> float:
        """When the current screen-derived candidate really began, not when we noticed it."""
        start = self._screen_since
        if self.activity_means_working and self._changed_at is not None:
            start = max(start, self._changed_at + self.activity_window)
        if self._structured is not None:
            start = max(start, self._structured_at + self.structured_ttl)
        return min(start, now)
