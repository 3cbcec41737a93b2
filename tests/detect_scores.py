"""Detection scores over the screen fixtures: accuracy, approval recall, false-approval rate.

The fixtures are tests/fixtures/screens/<runtime>/<state>-*.txt, each read by its own
runtime, and tests/fixtures/screens/generic/<state>-*.txt, hand-written screens in
other versions' wording, each read by runtimes that have no rule written for it
(`ROUTES`). Issue 14 asks for these figures per CLI; print them with
`.venv/bin/python -m tests.detect_scores` from the repository root.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tundra_tui.session.detect import SCREEN_RULES, Detected, detect_screen

SCREENS = Path(__file__).parent / "fixtures" / "screens"
STATES = {state.value for state in Detected}
GENERIC = "generic"

UNNAMED_ROUTE = ("custom", "demo", "claude", "codex", "gemini", "opencode")
"""Runtimes a generic fixture that names no CLI is read by. Not aider: its streaming
rule reads any screen under a `word> text` line as text streaming in (its own
screens are in aider/)."""


def routes(path: Path) -> tuple[str, ...]:
    """The runtimes a generic fixture is read by: `custom` and the CLI its name mimics
    (`awaiting_approval-claude-1.0-bash.txt`), whose own rules may answer first;
    `UNNAMED_ROUTE` when it names none. Another CLI's own rules legitimately read
    one CLI's words differently (Gemini's `esc to cancel` means working)."""
    parts = path.stem.split("-")
    named = [part for part in parts[1:] if part in SCREEN_RULES and part != "custom"]
    return ("custom", named[0]) if named else UNNAMED_ROUTE


@dataclass(frozen=True)
class Case:
    """One screen read by one runtime, and the state a person sees on it."""

    runtime: str
    path: Path
    expected: Detected

    @property
    def id(self) -> str:
        return f"{self.runtime}:{self.path.parent.name}/{self.path.stem}"

    def lines(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines()


def cases() -> list[Case]:
    """Every labelled fixture with each runtime that reads it."""
    found = []
    for path in sorted(SCREENS.glob("*/*.txt")):
        prefix = path.name.split("-", 1)[0]
        if prefix not in STATES:
            continue
        runtimes = routes(path) if path.parent.name == GENERIC else (path.parent.name,)
        found.extend(Case(runtime, path, Detected(prefix)) for runtime in runtimes)
    return found


@dataclass
class Score:
    """Tallies for one runtime (or all)."""

    screens: int = 0
    correct: int = 0
    approvals: int = 0
    approvals_found: int = 0
    others: int = 0
    false_approvals: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.screens if self.screens else 1.0

    @property
    def approval_recall(self) -> float:
        return self.approvals_found / self.approvals if self.approvals else 1.0

    @property
    def false_approval_rate(self) -> float:
        """Screens that are not an approval but were called one, over all such screens."""
        return self.false_approvals / self.others if self.others else 0.0

    def add(self, case: Case, got: Detected) -> None:
        self.screens += 1
        self.correct += got is case.expected
        if got is not case.expected:
            self.misses.append(f"{case.id}: {got.value}")
        if case.expected is Detected.AWAITING_APPROVAL:
            self.approvals += 1
            self.approvals_found += got is Detected.AWAITING_APPROVAL
        else:
            self.others += 1
            self.false_approvals += got is Detected.AWAITING_APPROVAL


def scores(selected: list[Case] | None = None) -> dict[str, Score]:
    """Per runtime, plus `all`: what detection got right over `selected` (default: every case)."""
    tally: dict[str, Score] = defaultdict(Score)
    for case in cases() if selected is None else selected:
        got = detect_screen(case.runtime, case.lines()).state
        tally[case.runtime].add(case, got)
        tally["all"].add(case, got)
    return dict(sorted(tally.items(), key=lambda item: (item[0] == "all", item[0])))


def table(by_runtime: dict[str, Score]) -> str:
    """The figures as a plain-text table."""
    rows = [f"{'runtime':<10} {'screens':>7} {'accuracy':>8} {'recall':>7} {'false appr':>10}"]
    for runtime, score in by_runtime.items():
        rows.append(
            f"{runtime:<10} {score.screens:>7} {score.accuracy:>8.3f} "
            f"{score.approval_recall:>7.3f} {score.false_approval_rate:>10.3f}"
        )
    misses = [miss for runtime, s in by_runtime.items() if runtime != "all" for miss in s.misses]
    return "\n".join(rows + [f"miss {miss}" for miss in misses])


def generic_alone() -> list[Case]:
    """Every labelled screen read as `custom`: what the generic layer tells with no rule
    written for the CLI (idle is never its answer, so idle screens count as misses)."""
    return [
        Case("custom", case.path, case.expected) for case in cases() if case.runtime != "custom"
    ]


if __name__ == "__main__":
    print(table(scores()))
    print("\nthe generic layer alone (every other screen read as custom):")
    print(table({"alone": scores(generic_alone())["all"]}).split("\nmiss ")[0])
