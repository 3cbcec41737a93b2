"""`at agent list` and `at approvals` answered by the daemon alone (cli/quick.py).

They must print exactly what the full command prints (from the store, or the store and
the daemon), and import none of what makes the full command slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from at_cli import AT, at, daemon_town, wait_for

from tundra_tui.cli.quick import AGENT_LIST, APPROVALS, parse, tui_options, version_only

FULL = [
    sys.executable,
    "-c",
    "import sys; from tundra_tui.cli import _full; sys.exit(_full(sys.argv[1:]))",
]
"""The full CLI (argparse, asyncio, the store), never the quick path, whatever runs."""
HEAVY = ("asyncio", "tomlkit", "sqlite3", "aiosqlite", "textual", "argparse")
QUESTIONS = (
    ("agent", "list", "--json"),
    ("agent", "list"),
    ("approvals", "--json"),
    ("approvals",),
)


def run(argv: list[str], town: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, "--town", str(town), *args], capture_output=True, text=True, timeout=60
    )


def answers(town: Path, argv: list[str] = AT) -> dict[tuple[str, ...], str]:
    """What each question prints (stdout; it must succeed with nothing on stderr)."""
    found: dict[tuple[str, ...], str] = {}
    for question in QUESTIONS:
        done = run(argv, town, *question)
        assert (done.returncode, done.stderr) == (0, ""), question
        found[question] = done.stdout
    return found


def imported(town: Path | None, *args: str) -> set[str]:
    """The modules `at [--town TOWN] ARGS` imports (from -X importtime), once it succeeded."""
    argv = [sys.executable, "-X", "importtime", *AT[1:]]
    if town is not None:
        argv += ["--town", str(town)]
    done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def without_uptime(text: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(text)
    for row in rows:
        assert row.pop("uptime") is None or row["pid"], row
    return rows


def test_the_daemon_answers_as_the_store_did_and_as_the_full_command_does() -> None:
    with daemon_town() as town:
        at(
            town,
            "agent",
            "add",
            "m2",
            "--runtime",
            "claude",
            "--role",
            "polecat",
            "--model",
            "opus",
        )
        at(town, "bead", "add", "held")
        at(town, "bead", "add", "held too")
        at(town, "hook", "1", "m2")
        at(town, "hook", "2", "m2")
        before = answers(town)  # no daemon: the full command, from the store
        assert [r["holds"] for r in json.loads(before[QUESTIONS[0]]) if r["name"] == "m2"] == [
            [1, 2]
        ]
        at(town, "daemon", "start")
        assert answers(town) == before
        assert not set(HEAVY) & imported(town, "agent", "list", "--json"), "not the quick path"

        # An agent added to tundra.toml is listed at once (the daemon's copy is stale).
        at(town, "agent", "add", "late", "--runtime", "demo", "--model", "m-late")
        rows = json.loads(at(town, "agent", "list", "--json").stdout)
        assert rows[-1]["name"] == "late" and rows[-1]["model"] == "m-late"

        # A running agent with a request waiting: the same as the full command, asked
        # of the same daemon at the same moment (only uptime moves on in between).
        at(town, "agent", "start", "d1")
        wait_for(lambda: '"idle"' in at(town, "agent", "list", "--json").stdout)
        at(town, "send", "d1", "RUN: echo waiting for you")
        wait_for(lambda: "waiting for you" in at(town, "approvals").stdout)
        # The full command reads states from the store, which the daemon writes a moment later.
        wait_for(lambda: "awaiting_approval" in run(FULL, town, "agent", "list").stdout)
        quick, full = answers(town), answers(town, FULL)
        for question in QUESTIONS[2:]:
            assert quick[question] == full[question], (quick[question], full[question])
        assert without_uptime(quick[QUESTIONS[0]]) == without_uptime(full[QUESTIONS[0]])
        (d1,) = [r for r in json.loads(quick[QUESTIONS[0]]) if r["name"] == "d1"]
        assert d1["pid"] and d1["uptime"] is not None and d1["state"] == "awaiting_approval"


def test_a_broken_tundra_toml_is_one_line_and_exit_2_either_way() -> None:
    with daemon_town() as town:
        at(town, "daemon", "start")
        with (town / "tundra.toml").open("a") as config:
            config.write("\n[agents.broken]\nrole = 3\n")
        quick = run(AT, town, "agent", "list", "--json")
        full = run(FULL, town, "agent", "list", "--json")
        assert (quick.returncode, quick.stdout) == (2, "")
        assert quick.stderr == full.stderr and full.returncode == 2
        assert quick.stderr.startswith("at: ") and quick.stderr.count("\n") == 1


def test_the_quick_path_imports_nothing_of_the_full_cli() -> None:
    """A structural check, not a timing: what makes the full command slow is not loaded."""
    with daemon_town() as town:
        at(town, "daemon", "start")
        for question in QUESTIONS:
            loaded = imported(town, *question)
            assert "tundra_tui.daemon.oneshot" in loaded, question  # the daemon answered
            assert not set(HEAVY) & loaded, (question, set(HEAVY) & loaded)
    assert not {"msgspec", "typing", *HEAVY} & imported(town, "--version")


@pytest.mark.parametrize(
    ("argv", "words", "town", "as_json"),
    [
        (["agent", "list"], AGENT_LIST, None, False),
        (["--town", "/t", "agent", "list", "--json"], AGENT_LIST, "/t", True),
        (["agent", "--town=/a", "list", "--town", "/b", "--debug"], AGENT_LIST, "/b", False),
        (["--debug", "approvals", "--json", "--json"], APPROVALS, None, True),
    ],
)
def test_the_spellings_argparse_accepts_are_answered(
    argv: list[str], words: tuple[str, ...], town: str | None, as_json: bool
) -> None:
    question = parse(argv)
    assert question is not None
    assert (question.words, question.town, question.json) == (words, town, as_json)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["agent"],
        ["--json", "agent", "list"],  # argparse refuses --json before the command
        ["agent", "--json", "list"],
        ["agent", "list", "extra"],
        ["agent", "list", "--js"],  # an abbreviation: argparse's business
        ["approvals", "--help"],
        ["approvals", "--town"],
        ["approvals", "--town", "--json"],
        ["approve"],
        ["agent", "start", "d1"],
    ],
)
def test_anything_else_goes_to_the_full_cli(argv: list[str]) -> None:
    assert parse(argv) is None


def test_version_alone_is_answered_without_the_parser() -> None:
    assert version_only(["--version"])
    assert version_only(["--town", "/t", "--debug", "--version", "--town=/u"])
    for argv in ([], ["--version", "--version"], ["--town", "--version"], ["status", "--version"]):
        assert not version_only(argv), argv


def test_the_lean_json_path_knows_the_protocols_structs_and_frames() -> None:
    """`--json` is answered by the json module alone (daemon/oneshot.ask_json): its field
    tables, defaults and frames must be the protocol's own."""
    import msgspec

    from tundra_tui.cli.listing import AGENT_FIELDS, APPROVAL_FIELDS, WIRE_DEFAULTS
    from tundra_tui.daemon import oneshot
    from tundra_tui.daemon.protocol import (
        MAX_LINE,
        VERSION,
        AgentRow,
        Agents,
        ApprovalInfo,
        Approvals,
        request_frame,
    )

    assert (oneshot.WIRE_VERSION, oneshot.WIRE_MAX_LINE) == (VERSION, MAX_LINE)
    assert list(APPROVAL_FIELDS) == [f.name for f in msgspec.structs.fields(ApprovalInfo)]
    row_fields = {f.name: f for f in msgspec.structs.fields(AgentRow)}
    assert set(AGENT_FIELDS) <= set(row_fields)
    for struct in (AgentRow, ApprovalInfo):
        for f in msgspec.structs.fields(struct):
            if f.name in (*AGENT_FIELDS, *APPROVAL_FIELDS) and f.default is not msgspec.NODEFAULT:
                assert WIRE_DEFAULTS[f.name] == f.default, (struct.__name__, f.name)
    asked = ((Agents(roster=True), "agents", {"roster": True}), (Approvals(), "approvals", {}))
    for request, op, fields in asked:
        assert oneshot.json_request_frame(op, fields) == request_frame(request, oneshot.REQUEST_ID)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tui"], {"town": None, "demo": False, "no_watch": False, "debug": False}),
        (
            ["--debug", "tui", "--demo", "--town=/a", "--no-watch", "--town", "/b"],
            {"town": "/b", "demo": True, "no_watch": True, "debug": True},
        ),
        (["--demo", "tui"], None),  # argparse refuses a command's option before it
        (["tui", "--dem"], None),  # an abbreviation: argparse's to expand
        (["tui", "--help"], None),
        (["tui", "tui"], None),
        (["tui", "--town"], None),
        (["status"], None),
    ],
)
def test_at_tui_is_recognised_as_argparse_would_take_it(
    argv: list[str], expected: dict[str, object] | None
) -> None:
    assert tui_options(argv) == expected


def test_at_tui_starts_without_building_the_parser() -> None:
    """A structural check: `at tui` goes straight to its command (here refused: no tty)."""
    with daemon_town(demo_agent=False) as town:
        argv = [sys.executable, "-X", "importtime", *AT[1:], "--town", str(town), "tui"]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 2
        assert "at: at tui needs a terminal" in done.stderr
        loaded = {
            line.rsplit("|", 1)[1].strip()
            for line in done.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "tundra_tui.cli.tui" in loaded
        assert "tundra_tui.cli.parser" not in loaded


def test_the_control_room_loads_cost_reports_only_when_a_tab_needs_them() -> None:
    """A structural check on `at tui`'s first frame: the cost reports and their analysis
    (some 20 ms of imports, once pulled in by the title bar) load with the Costs and
    Analytics tabs, not with the app."""
    probe = (
        "import sys, tundra_tui.ui.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('tundra_tui.usage')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
