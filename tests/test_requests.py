"""Reading the requested command off each runtime's real approval screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tundra_tui.session.requests import extract_request

SCREENS = Path(__file__).parent / "fixtures" / "screens"
RECORDED = sorted(SCREENS.glob("*/awaiting_approval-recorded-*.txt"))


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recorded_approval_screens_give_the_exact_command(path: Path) -> None:
    runtime = path.parent.name
    lines = path.read_text().splitlines()
    tool, subject = extract_request(runtime, lines)
    assert (tool, subject) == ("shell", "touch approved.txt")


def test_demo_screen() -> None:
    lines = ["Allow this command?", "  rm -rf build", "❯ 1. Yes", "  2. No"]
    assert extract_request("demo", lines) == ("shell", "rm -rf build")


def test_no_block_gives_nothing() -> None:
    assert extract_request("claude", ["nothing to see"]) == ("", "")
    assert extract_request("custom", ["Allow this command?"]) == ("", "")
