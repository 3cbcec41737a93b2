"""Detection scores over the screen fixtures: accuracy, approval recall, false-approval rate.

The fixtures are tests/fixtures/screens/<runtime>/<state>-*.txt, each read by its own
runtime, and tests/fixtures/screens/generic/<state>-*.txt, hand-written screens in
other versions' wording, each read by runtimes that have no rule written for it
(`ROUTES`). Issue 14 asks for these figures per CLI; print them with
`.venv/bin/python -m tests.detect_scores` from the repository root.

The version matrix (`matrix/<cli>/<version>/<size>/<state>-<scenario>.txt`, real
captures of several released versions, tests/real_agents/record_matrix.py) is scored
apart, per CLI and per version: `matrix_cases()`, `matrix_table()`. Each matrix screen is
read as the session host reads it: its bottom `BOTTOM_ROWS` rows (`detection_rows`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tundra_tui.session.detect import SCREEN_RULES, Detected, detect_screen, detection_rows
from tundra_tui.session.recording import bottom_rows

SCREENS = Path(__file__).parent / "fixtures" / "screens"
MATRIX = SCREENS / "matrix"
BOTTOM_ROWS = 20  # tundra_tui.session.agent.BOTTOM_LINES: the rows the host's detector reads
TARGETS = {"accuracy": 0.95, "approval_recall": 0.98, "false_approval_rate": 0.01}
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
    version: str = ""  # matrix captures only: the CLI's version, and the terminal's size
    size: str = ""

    @property
    def id(self) -> str:
        if self.version:
            return f"{self.runtime}:{self.version}/{self.size}/{self.path.stem}"
        return f"{self.runtime}:{self.path.parent.name}/{self.path.stem}"

    def lines(self) -> list[str]:
        rows = self.path.read_text(encoding="utf-8").splitlines()
        if not self.version:
            return rows
        return detection_rows(self.runtime, partial(bottom_rows, rows), BOTTOM_ROWS)


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


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def matrix_cases() -> list[Case]:
    """Every capture of the version matrix, read by its own CLI's runtime."""
    found = []
    for path in MATRIX.glob("*/*/*/*.txt"):
        prefix = path.name.split("-", 1)[0]
        if prefix in STATES:
            size, version, cli = path.parent.name, path.parent.parent.name, path.parents[2].name
            found.append(Case(cli, path, Detected(prefix), version, size))
    return sorted(found, key=lambda c: (c.runtime, _version_key(c.version), c.size, c.path.name))


def matrix_scores(selected: list[Case] | None = None) -> dict[str, Score]:
    """Per CLI, per `cli version`, and `all`, over the matrix (default: all of it)."""
    tally: dict[str, Score] = {}
    for case in matrix_cases() if selected is None else selected:
        got = detect_screen(case.runtime, case.lines()).state
        for key in (case.runtime, f"{case.runtime} {case.version}", "all"):
            tally.setdefault(key, Score()).add(case, got)

    def order(key: str) -> tuple[bool, str, tuple[int, ...]]:
        cli, _, version = key.partition(" ")
        return (key == "all", cli, _version_key(version) if version else (1_000_000,))

    return {key: tally[key] for key in sorted(tally, key=order)}


def matrix_table(by_key: dict[str, Score]) -> str:
    """Per CLI and version: screens, accuracy, approval recall, false-approval rate."""
    rows = [
        "| CLI / version | screens | approvals | accuracy | approval recall | false approval |",
        "|---|---|---|---|---|---|",
    ]
    for key, score in by_key.items():
        name = key if " " in key else f"**{key}** (all versions)"
        rows.append(
            f"| {name} | {score.screens} | {score.approvals} | {score.accuracy:.3f} "
            f"| {score.approval_recall:.3f} | {score.false_approval_rate:.3f} |"
        )
    misses = [miss for key, s in by_key.items() if " " in key for miss in s.misses]
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
    print("\nthe version matrix (real captures, tests/fixtures/screens/matrix):")
    print(matrix_table(matrix_scores()))
