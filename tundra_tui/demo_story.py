"""What happened in the demo town: its beads, convoys, mail and how each agent works.

Pure data, read by `demo_history`, which writes it into a store. Times are days before the
history ends (mapped onto working hours there); beads are named by key, and `{key}` in mail
becomes the bead's `#id`, because ids follow creation order.
"""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.domain.beads import Action, Lane

OPERATOR = "operator"


@dataclass(frozen=True)
class StoryBead:
    """One bead's story: when it was created (days ago) and each move after."""

    key: str
    title: str
    lane: Lane
    priority: int
    labels: tuple[str, ...]
    created: float
    assignee: str = ""
    steps: tuple[tuple[float, Action], ...] = ()
    blocked_by: tuple[str, ...] = ()
    reason: str = ""
    by: str = OPERATOR


_C, _S, _X = Lane.CRITICAL, Lane.STANDARD, Lane.EXPERIMENTAL
_H, _SL, _SU, _D = Action.HOOK, Action.SLING, Action.SUBMIT, Action.DONE
_RW, _F, _E = Action.REWORK, Action.FAIL, Action.ESCALATE

_B = StoryBead

# fmt: off
BEADS: tuple[StoryBead, ...] = (
    _B("flaky-ci", "Fix the flaky test_storage timeout on CI", _C, 0, ("ci", "tests"), 13.2,
       "polecat-1", ((12.7, _H), (12.6, _SL), (12.3, _SU), (12.1, _D))),
    _B("witness-model", "Evaluate a cheaper model for the witness", _X, 3, ("costs", "spike"),
       13.0, "mayor", ((12.9, _H), (12.8, _SL), (9.6, _SU), (9.5, _D))),
    _B("lifecycle-doc", "Document the bead lifecycle", _S, 3, ("docs",), 5.0, "witness",
       ((4.6, _H), (4.5, _SL), (3.9, _SU), (3.8, _D))),
    _B("sqlite", "Upgrade the SQLite driver", _S, 2, ("deps",), 3.0, "crew-1",
       ((2.6, _H), (2.5, _SL), (2.3, _SU), (2.2, _D))),
    _B("cookies", "login-v2: keep session tokens in HttpOnly cookies", _C, 1,
       ("auth", "security"), 10.8, "polecat-1",
       ((10.2, _H), (10.1, _SL), (9.6, _SU), (9.1, _D))),
    _B("rotation", "login-v2: rotate refresh tokens on every use", _C, 1, ("auth",), 10.7,
       "crew-1", ((9.0, _H), (8.9, _SL), (8.0, _SU), (7.5, _RW), (6.8, _SU), (6.5, _D)),
       blocked_by=("cookies",), by="mayor"),
    _B("lockout", "login-v2: lock an account after five failed logins", _S, 1, ("auth",), 10.69,
       "polecat-1", ((1.4, _H), (1.2, _SL), (1.0, _SU)), blocked_by=("cookies",), by="mayor"),
    _B("migrate", "login-v2: migrate existing sessions", _S, 2, ("auth", "migration"), 10.6,
       blocked_by=("rotation", "lockout"), by="mayor"),
    _B("tree-sitter", "Try a tree-sitter outline in the file picker", _X, 3, ("spike",), 6.9,
       "crew-1", ((6.3, _H), (6.2, _SL), (5.5, _F)),
       reason="the grammar wheels do not build on musl"),
    _B("audit-pages", "Paginate the audit log endpoint", _S, 2, ("api",), 6.4, "polecat-1",
       ((6.0, _H), (5.8, _SL), (4.5, _SU))),
    _B("remove-v1", "Remove the deprecated v1 endpoints", _S, 2, ("api", "cleanup"), 6.3,
       blocked_by=("audit-pages",), by="mayor"),
    _B("md-cache", "Cache rendered markdown previews", _S, 2, ("perf",), 5.2, "crew-1",
       ((4.8, _H), (4.7, _SL), (1.9, _SU))),
    _B("bom", "Crash when tundra.toml starts with a BOM", _C, 0, ("bug", "config"), 3.5,
       "polecat-1", ((3.4, _H), (3.3, _SL), (2.9, _E)),
       reason="no report after 2 reminders"),
    _B("markup", "Show titles like [bold]x[/bold] literally in every pane", _X, 3, ("ui",),
       3.1),
    _B("pyproject", "Read [tool.tundra] from pyproject.toml", _X, 4, ("config",), 2.8),
    _B("quickstart", "docs-refresh: rewrite the quick start", _S, 2, ("docs",), 2.4),
    _B("screenshots", "docs-refresh: a screenshot of every tab", _X, 3, ("docs",), 2.39,
       blocked_by=("quickstart",)),
    _B("faq", "docs-refresh: an FAQ on approvals", _S, 3, ("docs",), 2.38),
    _B("list-speed", "Speed up `at bead list` on ten thousand beads", _C, 1, ("perf", "cli"),
       1.3, "crew-1", ((1.0, _H), (0.9, _SL), (0.5, _SU))),
    # The live backlog. Labels script the demo agents (demo_agent/work.py): the first two beads
    # dispatch hands out (the critical bug, then webhooks) both add a CHANGELOG.md line from the
    # same main, so the second to merge conflicts and is reworked; the weekly report leaves a
    # TODO that fails the gate once.
    _B("report", "Weekly report: beads done and cost per agent", _S, 2,
       ("ops", "demo-gate-fails-once"), 0.9, by="mayor"),
    _B("webhooks", "Retry webhooks with exponential backoff", _S, 1,
       ("webhooks", "demo-changelog"), 0.8, by="mayor"),
    # A chain in a started convoy, and a critical bug for crew-1's lane.
    _B("search-index", "search: index bead titles and descriptions", _S, 1, ("search",), 0.2,
       by="mayor"),
    _B("search-key", "search: a / key that filters the Beads tab", _S, 2, ("search", "ui"),
       0.19, blocked_by=("search-index",), by="mayor"),
    _B("search-marks", "search: highlight the matches", _X, 3, ("search", "ui"), 0.18,
       blocked_by=("search-key",), by="mayor"),
    _B("blank-title", "Crash when a bead's title is only spaces", _C, 0,
       ("bug", "demo-changelog"), 0.12),
)

DISPATCHED = frozenset({"polecat-1", "crew-1"})
"""Agents the daemon's dispatch hands beads to; the others got theirs from the operator's
`at sling`."""
WITNESS = "witness"
"""Who escalates a bead: the daemon's witness, after its reminders went unanswered."""

CONVOYS: tuple[tuple[str, str, float, tuple[str, ...], float | None], ...] = (
    # name, description, created (days ago), beads, started (days ago) or None
    ("login-v2", "Cookie sessions, token rotation and lockout", 10.55,
     ("cookies", "rotation", "lockout", "migrate"), 10.5),
    ("docs-refresh", "Docs for the first public release", 2.3,
     ("quickstart", "screenshots", "faq"), None),
    ("search", "Find beads by text", 0.17, ("search-index", "search-key", "search-marks"), 0.15),
)

MAIL: tuple[tuple[float, str, str, str, str, bool, bool], ...] = (
    # days ago, from, to, subject, body, urgent, read
    (10.45, OPERATOR, "mayor", "login-v2 first",
     "Please get login-v2 moving this week: cookies first, the rest depends on it.", False, True),
    (9.05, "mayor", "crew-1", "{rotation} is unblocked",
     "Cookies ({cookies}) are done, so refresh-token rotation is ready, in your lane.", False,
     True),
    (5.45, "crew-1", "mayor", "tree-sitter spike failed",
     "The grammar wheels do not build on musl; I stopped. Notes are on the bead.", False, True),
    (3.2, "polecat-1", OPERATOR, "{bom} needs your call",
     "A tundra.toml that starts with a UTF-8 BOM crashes the loader. Strip the BOM, or refuse "
     "the file with a clear error?", True, False),
    (3.1, "witness", "polecat-1", "{bom} is still yours",
     "Report on {bom} with at submit, or at done --fail with a reason.", False, True),
    (2.9, "witness", OPERATOR, "{bom} escalated",
     "polecat-1 sent no report after 2 reminders.", False, True),
    (1.15, "mayor", OPERATOR, "Plan for login-v2",
     "Lockout ({lockout}) is next in the queue; the session migration ({migrate}) waits on it "
     "and on rotation.", False, True),
    (0.5, "crew-1", OPERATOR, "{list-speed} is in review",
     "`at bead list` on ten thousand beads now takes 0.2 s instead of 1.6 s.", False, False),
    (0.2, OPERATOR, "crew-1", "Re: {md-cache}",
     "Your patch shows `[red]` tags literally now. Good; review is next on my list.", False,
     False),
    (0.1, OPERATOR, "mayor", "docs-refresh",
     "Shall we start docs-refresh once the search convoy is in review?", False, False),
)
# fmt: on

COMMANDS = ("git status --short", "pytest -q tests/test_auth.py", "ruff check src", "git diff")
RISKY = "rm -rf build/"


@dataclass(frozen=True)
class Habit:
    """How an agent works: minutes between model calls, tokens per call, approvals per block."""

    pace: tuple[float, float]
    output: tuple[int, int]
    approvals: float


HABITS = {
    "mayor": Habit((6.0, 14.0), (400, 2200), 0.15),
    "polecat-1": Habit((2.0, 6.0), (150, 1600), 0.6),
    "witness": Habit((8.0, 16.0), (60, 500), 0.1),
    "crew-1": Habit((3.0, 8.0), (150, 1400), 0.3),
}
