"""Reading the requested command off each runtime's real approval screen."""

from __future__ import annotations

import json
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


LONG = SCREENS / "long_command"
LONG_COMMANDS: dict[str, str] = json.loads((LONG / "commands.json").read_text())
WRAPPED = sorted(p for cli in ("codex", "opencode") for p in (LONG / cli).rglob("*.txt"))
"""Real approval screens of a command wider than the screen: CLIs with a `$ ` row."""


def _long_case(path: Path) -> tuple[str, list[str], str]:
    """(runtime, screen rows, the exact command the fake model asked to run)."""
    runtime = path.relative_to(LONG).parts[0]
    return runtime, path.read_text().splitlines(), LONG_COMMANDS[path.stem.split("-", 1)[1]]


@pytest.mark.parametrize("path", WRAPPED, ids=lambda p: str(p.relative_to(LONG)))
def test_a_wrapped_command_is_read_whole(path: Path) -> None:
    runtime, lines, command = _long_case(path)
    assert extract_request(runtime, lines) == ("shell", command)


def test_long_command_screens_were_recorded() -> None:
    """Both `$ ` CLIs, both sizes, every command: the parametrized test cannot pass empty."""
    for cli in ("codex", "opencode"):
        for size in ("80x24", "200x50"):
            found = {p.stem.split("-", 1)[1] for p in (LONG / cli).glob(f"*/{size}/*.txt")}
            assert found == set(LONG_COMMANDS), (cli, size)


@pytest.mark.parametrize(
    "path",
    sorted(p for cli in ("claude", "gemini", "aider") for p in (LONG / cli).rglob("*.txt")),
    ids=lambda p: str(p.relative_to(LONG)),
)
def test_a_wrapped_command_without_dollar_rows_keeps_every_row(path: Path) -> None:
    """Claude, Gemini and Aider show the command on rows of its own; every row is kept (one
    per line), so no character of the command is lost, though wraps read as newlines."""
    runtime, lines, command = _long_case(path)
    tool, subject = extract_request(runtime, lines)
    assert tool == "shell"
    assert "".join(subject.split()) == "".join(command.split())


def test_opencode_sidebar_rows_are_not_part_of_the_command() -> None:
    """At 200 columns OpenCode draws its sidebar beside the box: the rows under
    `$ touch approved.txt` read `<work>:` and `master` far right, not the command."""
    path = SCREENS / "matrix/opencode/1.18.33/200x50/awaiting_approval-shell.txt"
    lines = path.read_text().splitlines()
    assert any(line.endswith("<work>:") for line in lines)
    assert extract_request("opencode", lines) == ("shell", "touch approved.txt")


def test_rows_after_a_short_command_at_its_column_are_its_wrap() -> None:
    """The rule is geometry: a row starting at the `$` column continues the command;
    one starting further right (a sidebar) or blank there ends it."""
    lines = [
        "  Would you like to run the following command?",
        "  $ echo one two",
        "  three-",
        "  four",
        "                              sidebar",
        "› 1. Yes, proceed (y)",
    ]
    assert extract_request("codex", lines) == ("shell", "echo one two three- four")
    opencode = ["┃  △ Permission required", *(f"┃{line}" for line in lines[1:5]), "┃ Allow once"]
    assert extract_request("opencode", opencode) == ("shell", "echo one two three-four")
