"""Reading the requested command off each runtime's real approval screen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from at_cli import fake_cli_town, pending_approvals, wait_for

from tundra_tui.domain.firewall import denied_shape
from tundra_tui.session.requests import extract_request

SCREENS = Path(__file__).parent / "fixtures" / "screens"
CODEX_SCREENS = Path(__file__).parent / "helpers" / "codex_screen_agent.py"
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
LONG_COMMANDS: dict[str, str] = json.loads((LONG / "index.json").read_text())
WRAPPED = sorted(p for cli in ("codex", "opencode") for p in (LONG / cli).rglob("*.txt"))
"""Real approval screens of a command wider than the screen: CLIs with a `$ ` row."""


def _long_case(path: Path) -> tuple[str, list[str], str]:
    """(runtime, screen rows, the exact command the fake model asked to run)."""
    runtime = path.relative_to(LONG).parts[0]
    return runtime, path.read_text().splitlines(), LONG_COMMANDS[path.stem.split("-", 1)[1]]


@pytest.mark.parametrize("path", WRAPPED, ids=lambda p: str(p.relative_to(LONG)))
def test_a_wrapped_command_is_read_whole(path: Path) -> None:
    """Every row it wrapped onto, one line per row (a wrap dropped the space it broke at):
    the tail the screen shows is never left out."""
    runtime, lines, command = _long_case(path)
    tool, subject = extract_request(runtime, lines)
    assert tool == "shell" and "\n" in subject
    assert "".join(subject.split()) == "".join(command.split())
    assert command in _rejoined(subject.split("\n")), "rows joined as wrapped give the command"


def _rejoined(rows: list[str]) -> set[str]:
    """Every way to join `rows` back: a wrap dropped a space, or broke inside a word."""
    if len(rows) == 1:
        return {rows[0]}
    return {rows[0] + glue + rest for rest in _rejoined(rows[1:]) for glue in ("", " ")}


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
    assert extract_request("codex", lines) == ("shell", "echo one two\nthree-\nfour")
    opencode = ["┃  △ Permission required", *(f"┃{line}" for line in lines[1:5]), "┃ Allow once"]
    assert extract_request("opencode", opencode) == ("shell", "echo one two\nthree-\nfour")


def test_rows_are_never_joined_into_one_word() -> None:
    """A command holding a newline is drawn like one that wrapped: `rm -rf ~/` over
    `tmp/cache` is two lines to the operator and the deny-list, never `rm -rf ~/tmp/cache`
    (which the deny-list would pass while the shell runs `rm -rf ~/`)."""
    screen = [
        "┃  △ Permission required",
        "┃    # Shell command",
        "┃",
        "┃  $ rm -rf ~/",
        "┃  tmp/cache",
        "┃",
        "┃   Allow once   Allow always   Reject",
    ]
    tool, subject = extract_request("opencode", screen)
    assert (tool, subject) == ("shell", "rm -rf ~/\ntmp/cache")
    assert denied_shape(subject)


def test_a_pipe_ending_a_wrapped_row_is_the_commands() -> None:
    """`|` is also a frame character; at the end of a command's row it is the pipe."""
    lines = [
        "  Would you like to run the following command?",
        "  $ cat build.log |",
        "  grep -v warning",
        "",
        "› 1. Yes, proceed (y)",
    ]
    assert extract_request("codex", lines) == ("shell", "cat build.log |\ngrep -v warning")


def test_the_daemon_lists_the_whole_command_of_a_block_taller_than_detection_reads(
    tmp_path: Path,
) -> None:
    """At 80x24 a long command pushes Codex's "Would you like to run…" above the bottom
    rows detection reads; the request is read off the whole screen, not listed as the
    menu line the approval rule matched."""
    screen = LONG / "codex/0.169.0/80x24/awaiting_approval-long_words.txt"
    with fake_cli_town("codex", "cx", CODEX_SCREENS, "0.130.0") as town:
        (town / "ask-screen").write_text(str(screen))
        wait_for(lambda: len(pending_approvals(town)) == 1)
        (request,) = pending_approvals(town)
        assert request["tool"] == "shell"
        assert LONG_COMMANDS["long_words"] in _rejoined(request["subject"].split("\n"))
