"""The version matrix (issue 14): real captures of several released versions per CLI.

Every screen in tests/fixtures/screens/matrix/<cli>/<version>/<size>/ is read as the
session host reads it (its bottom rows) by its CLI's runtime, and must be detected as
labelled, except the misses listed in `known_misses.txt` (each an xfail that fails once
fixed, so the list only shrinks). Precision has no exceptions: no screen that is not an
approval is ever called one. Re-record with `python -m tests.real_agents.record_matrix`.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from detect_scores import MATRIX, TARGETS, Case, matrix_cases, matrix_scores, matrix_table

sys.path.insert(0, str(Path(__file__).resolve().parent / "real_agents"))
from screen_ansi import strip

from tundra_tui.session.detect import MATRIX_VERSIONS, Detected, detect_screen, detection_rows
from tundra_tui.session.emulator import Emulator
from tundra_tui.session.recording import bottom_rows
from tundra_tui.usage.limits import parse_reset

CASES = matrix_cases()
KNOWN_MISSES = {
    line.split("#", 1)[0].strip()
    for line in (MATRIX / "known_misses.txt").read_text().splitlines()
    if line.split("#", 1)[0].strip()
}


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    if case.id in KNOWN_MISSES:
        return [pytest.mark.xfail(strict=True, reason="known miss (known_misses.txt)")]
    return []


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.id, marks=_marks(case)) for case in CASES]
)
def test_matrix_screen_detected_as_labelled(case: Case) -> None:
    detection = detect_screen(case.runtime, case.lines())
    assert detection.state is case.expected, (detection.evidence, case.lines()[-8:])


def test_known_misses_name_real_captures() -> None:
    assert {case.id for case in CASES} >= KNOWN_MISSES


def test_no_matrix_screen_is_a_false_approval() -> None:
    """Precision first, on every capture, known misses included."""
    for case in CASES:
        if case.expected is not Detected.AWAITING_APPROVAL:
            got = detect_screen(case.runtime, case.lines())
            assert got.state is not Detected.AWAITING_APPROVAL, (case.id, got.evidence)


def test_matrix_scores_meet_the_issue_targets() -> None:
    """Approval recall, false-approval rate and accuracy over the whole matrix (printed
    per CLI and version with -s)."""
    by_key = matrix_scores()
    print(matrix_table(by_key))
    whole = by_key["all"]
    assert whole.approval_recall >= TARGETS["approval_recall"], matrix_table(by_key)
    assert whole.false_approval_rate <= TARGETS["false_approval_rate"]
    assert whole.accuracy >= TARGETS["accuracy"], matrix_table(by_key)


def test_index_lists_every_capture_and_why_a_scenario_was_skipped() -> None:
    indexes = [json.loads(path.read_text()) for path in MATRIX.glob("*/index.json")]
    captures = [entry for index in indexes for entry in index["captures"]]
    skipped = [entry for index in indexes for entry in index["skipped"]]
    assert {entry["file"] for entry in captures} == {
        str(case.path.relative_to(MATRIX)) for case in CASES
    }
    for entry in captures:
        assert entry["file"] == (
            f"{entry['cli']}/{entry['version']}/{entry['size']}/"
            f"{entry['state']}-{entry['scenario']}.txt"
        )
    assert all(entry["reason"] for entry in skipped)


def test_each_version_is_captured_at_both_sizes_in_every_live_state() -> None:
    seen: dict[tuple[str, str], set[tuple[str, Detected]]] = {}
    for case in CASES:
        seen.setdefault((case.runtime, case.version), set()).add((case.size, case.expected))
    for (cli, version), have in seen.items():
        for size in ("80x24", "200x50"):
            for state in (Detected.IDLE, Detected.WORKING, Detected.AWAITING_APPROVAL):
                assert (size, state) in have, f"{cli} {version} {size}: no {state.value} screen"


def test_each_rule_names_the_matrix_versions_it_was_verified_on() -> None:
    """A runtime rule's evidence names exactly the versions of the matrix on which it
    decided a capture rightly (`MATRIX_VERSIONS`); generic rules claim none."""
    verified: dict[str, set[str]] = {}
    for case in CASES:
        evidence = detect_screen(case.runtime, case.lines()).evidence
        assert evidence is not None
        if evidence.rule != "none" and not evidence.rule.startswith("generic."):
            got = detect_screen(case.runtime, case.lines()).state
            if got is case.expected:
                verified.setdefault(evidence.rule, set()).add(case.version)
    named = {
        rule: set(versions.split(" ", 1)[1].split(", "))
        for rule, versions in MATRIX_VERSIONS.items()
    }
    assert named == verified


def test_a_rate_limit_screen_that_shows_its_reset_is_read_by_the_limit_parser() -> None:
    """Item 5 on real captures: the fake server's 429 says `try again in 60m0s`; wherever a
    version shows that, issue 13's parser reads a reset at most an hour ahead (an hour, or
    the newer `Retrying in 16.0 seconds...` Aider prints under it); where it shows no time
    (a retry spinner, `exceeded retry limit`), none."""
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    shown = 0
    for case in CASES:
        if case.path.stem.endswith("-rate_limit_429"):
            screen = "\n".join(case.lines())
            reset, _ = parse_reset(screen, now, UTC)
            says = "try again in 60m0s" in " ".join(screen.split())
            if says:
                assert reset is not None and now < reset <= now + timedelta(hours=1), case.id
            else:
                assert reset is None, case.id
            shown += says
    assert shown >= 4


COLOURED = ("aider", "claude", "codex", "gemini", "opencode")
"""The CLIs recorded with colour sidecars, every version and capture of them: all five."""


def test_every_coloured_capture_has_a_sidecar_that_is_its_text_in_colour() -> None:
    """A capture's ``.ansi`` (recorder's ``screen_ansi``) gives its ``.txt`` back exactly
    once its SGRs are stripped. Sidecars are required for the CLIs whose index lists
    them: COLOURED (all five CLIs: each capture has one); and each CLI's sidecars keep
    some style, not only resets."""
    with_colour, coloured, listed = set(), set(), set()
    for path in sorted(MATRIX.glob("*/index.json")):
        captures = json.loads(path.read_text())["captures"]
        if any("ansi" in entry for entry in captures):
            with_colour.add(path.parent.name)
            for entry in captures:
                assert entry.get("ansi") == entry["file"].removesuffix(".txt") + ".ansi", entry
                text = (MATRIX / entry["file"]).read_text(encoding="utf-8")
                sidecar = (MATRIX / entry["ansi"]).read_text(encoding="utf-8")
                assert strip(sidecar) == text, entry["ansi"]
                listed.add(entry["ansi"])
                if re.search(r"\x1b\[(?!0m)[0-9;]+m", sidecar):
                    coloured.add(path.parent.name)
    assert with_colour == set(COLOURED)
    assert coloured == with_colour  # some style was really kept, not only resets
    assert {str(p.relative_to(MATRIX)) for p in MATRIX.glob("*/*/*/*.ansi")} == listed


def test_codex_is_read_from_its_last_prompt_on_a_tall_screen() -> None:
    """Codex 0.169 at 200x50 streams 41 rows under its prompt with no status line: the
    emulator's bottom rows are read from that prompt down (so: working), and only from
    there (an older turn stays out); another runtime's rows stay the bottom ones."""
    capture = MATRIX / "codex" / "0.169.0" / "200x50" / "working-streaming.txt"
    emulator = Emulator(200, 50)
    emulator.feed("\r\n".join(capture.read_text().splitlines()).encode())
    rows = detection_rows("codex", emulator.bottom, 20)
    assert rows[0].startswith("› SLOW hello") and len(rows) > 20
    assert detect_screen("codex", rows).state is Detected.WORKING
    assert detect_screen("codex", emulator.bottom(20)).state is Detected.IDLE
    assert detection_rows("claude", emulator.bottom, 20) == emulator.bottom(20)
    older = ["› an older prompt", "• its answer", "", "› a newer one", *[""] * 30, "› Ask Codex"]
    assert detection_rows("codex", partial(bottom_rows, older), 20)[0] == "› a newer one"
    # Two `›` lines in the bottom rows already show the turn: nothing more is read.
    both = ["› old", *[""] * 30, "› RUN: x", "• answer", "› Ask Codex"]
    assert detection_rows("codex", partial(bottom_rows, both), 20) == both[-20:]
