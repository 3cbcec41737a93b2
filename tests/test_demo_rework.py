"""The demo agent's rework: labels that script the demo's story, rework from mail or a note,
and a rebase onto the target that resolves CHANGELOG.md and nothing else.

No daemon: `Shell` is a `Hands` that runs every command with /bin/sh in a real temporary
repository (with no git identity, as an agent's env has none), except `at`, whose answers
are the daemon's own JSON shapes and whose calls are recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from at_cli import git

from tundra_tui.demo_agent.work import (
    CHANGELOG,
    FAILS_ALWAYS,
    FAILS_ONCE,
    SILENT_SENDERS,
    TODO_LINE,
    answer_mail,
    changelog_line,
    do_bead,
    read_card,
    reworks,
    to_answer,
    wants_todo,
    with_line,
)
from tundra_tui.domain.handover import MailLine, rework_subject


class Shell:
    """A demo agent's hands in `repo`: git and sh for real; `at` answered from `beads`."""

    def __init__(self, repo: Path, beads: dict[int, dict[str, Any]], name: str = "p1") -> None:
        self.repo = repo
        self.beads = beads
        self.name = name
        self.at: list[str] = []
        self.ran: list[str] = []
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(repo.parent),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def say(self, text: str, tools: list[dict[str, Any]]) -> None:
        pass

    def show(self, text: str) -> None:
        pass

    def may_run(self, command: str) -> bool:
        return True

    def shell(self, command: str, *, shown: int) -> tuple[int, list[str]]:
        if command.startswith("at "):
            self.at.append(command)
            words = command.split()
            if words[1:3] == ["bead", "show"]:
                return 0, json.dumps(self.beads[int(words[3])], indent=2).splitlines()
            return 0, []
        self.ran.append(command)
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).splitlines()


def shown(
    bead_id: int, title: str, labels: tuple[str, ...] = (), notes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`at bead show --json` as the CLI prints it (only the keys the agent reads)."""
    return {
        "bead": {"id": bead_id, "title": title, "description": "", "labels": list(labels)},
        "target": "main",
        "notes": [
            {"id": i + 1, "bead_id": bead_id, "author": "refinery", "body": body}
            for i, body in enumerate(notes)
        ],
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main with a CHANGELOG.md and a README, checked out; the cwd (the agent writes there)."""
    root = tmp_path / "work"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / CHANGELOG).write_text("# Changelog\n")
    (root / "README.md").write_text("demo\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    monkeypatch.chdir(root)
    return root


def land_on_main(repo: Path, files: dict[str, str], message: str) -> None:
    """What the refinery does meanwhile: another bead merges into main (main not checked
    out here: the agent's worktree is on its branch)."""
    git(repo, "checkout", "-q", "main")
    for path, text in files.items():
        (repo / path).parent.mkdir(exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def own_commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s|%an|%cn", "main..HEAD").splitlines()


# ---- the pure parts --------------------------------------------------------------------------


def test_labels_say_when_a_todo_is_left() -> None:
    assert not wants_todo((), None)
    assert wants_todo((FAILS_ONCE,), None)
    assert wants_todo((FAILS_ONCE,), (7, "conflict"))
    assert not wants_todo((FAILS_ONCE,), (7, "gate"))
    assert wants_todo((FAILS_ALWAYS,), (7, "gate"))


def test_rework_comes_from_refinery_mail_once_per_bead() -> None:
    messages = [
        MailLine(1, "refinery", rework_subject(4, "gate"), "exit 1"),
        MailLine(2, "mayor", rework_subject(5, "gate"), "not the refinery"),
        MailLine(3, "refinery", rework_subject(4, "conflict"), "later"),
        MailLine(4, "refinery", "merged #6", "a notice"),
    ]
    assert reworks(messages) == [(4, "conflict")]
    assert "refinery" in SILENT_SENDERS and to_answer(messages, "p1") == [messages[1]]


def test_rework_comes_from_the_newest_refinery_note_of_this_bead() -> None:
    lines = json.dumps(shown(3, "T", notes=("rework #3: conflict\n…", "rework #3: gate\n…")))
    card = read_card(lines.splitlines(), 3)
    assert card is not None and card.rework == (3, "gate") and card.target == "main"
    other = read_card(json.dumps(shown(3, "T", notes=("rework #9: gate",))).splitlines(), 3)
    assert other is not None and other.rework is None
    assert read_card(["at: no bead #3"], 3) is None


def test_a_changelog_line_is_added_once() -> None:
    line = changelog_line(2, "Y ")
    assert with_line("# Changelog\n", line) == "# Changelog\n- #2 Y\n"
    assert with_line(with_line("# Changelog\n", line), line) == "# Changelog\n- #2 Y\n"


# ---- on a real repository --------------------------------------------------------------------


def test_a_first_submission_never_rebases(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "polecat/p1/1")
    base = git(repo, "rev-parse", "HEAD").strip()
    land_on_main(repo, {"beads/2.md": "# #2: Y\n"}, "bead #2: Y")
    git(repo, "checkout", "-q", "polecat/p1/1")
    hands = Shell(repo, {1: shown(1, "X", ("demo-changelog",))})
    do_bead(hands, 1)
    assert git(repo, "rev-parse", "HEAD~1").strip() == base
    assert (repo / CHANGELOG).read_text() == "# Changelog\n- #1 X\n"
    assert not any("rebase" in c for c in hands.ran)
    assert hands.at[-1].startswith("at submit 1 ")


def test_a_conflict_in_the_changelog_is_resolved_by_rebasing(repo: Path) -> None:
    """X and Y both add a changelog line from the same main; Y merged first; X's rework mail
    makes it rebase, keep Y's line, add its own, and resubmit one commit."""
    git(repo, "checkout", "-q", "-b", "polecat/p1/1")
    hands = Shell(repo, {1: shown(1, "X", ("demo-changelog",))})
    do_bead(hands, 1)
    land_on_main(repo, {"beads/2.md": "# #2: Y\n", CHANGELOG: "# Changelog\n- #2 Y\n"}, "Y")
    git(repo, "checkout", "-q", "polecat/p1/1")
    answer_mail(hands, [MailLine(5, "refinery", rework_subject(1, "conflict"), "CHANGELOG.md")])
    assert git(repo, "show", "HEAD:CHANGELOG.md") == "# Changelog\n- #2 Y\n- #1 X\n"
    assert own_commits(repo) == ["bead #1: X|p1|p1"]
    assert git(repo, "status", "--porcelain") == ""
    assert [c.split(" -m")[0] for c in hands.at] == [
        "at bead show 1 --json",
        "at submit 1",
        "at bead show 1 --json",
        "at submit 1",
    ]


def test_any_other_conflict_aborts_and_reports_the_failure(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "polecat/p1/1")
    (repo / "README.md").write_text("mine\n")
    git(repo, "commit", "-q", "-am", "touch the readme")
    tip = git(repo, "rev-parse", "HEAD").strip()
    land_on_main(repo, {"README.md": "theirs\n"}, "someone else's readme")
    git(repo, "checkout", "-q", "polecat/p1/1")
    hands = Shell(repo, {1: shown(1, "X")})
    do_bead(hands, 1, rework=(1, "conflict"))
    assert git(repo, "rev-parse", "HEAD").strip() == tip
    assert not (repo / ".git" / "rebase-merge").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert hands.at[-1].startswith("at done 1 --fail --reason 'rebase onto main conflicts in")
    assert "README.md" in hands.at[-1]


def test_a_gate_rework_fixes_the_file_in_the_same_commit(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "polecat/p1/1")
    notes: tuple[str, ...] = ()
    hands = Shell(repo, {1: shown(1, "Z", (FAILS_ONCE,))})
    do_bead(hands, 1)
    assert TODO_LINE in (repo / "beads/1.md").read_text()
    land_on_main(repo, {"beads/2.md": "# #2: W\n"}, "bead #2: W")
    git(repo, "checkout", "-q", "polecat/p1/1")
    notes = ("rework #1: gate\nexit 1",)  # given back through backlog: the note says why
    hands.beads[1] = shown(1, "Z", (FAILS_ONCE,), notes)
    do_bead(hands, 1)
    assert TODO_LINE not in git(repo, "show", "HEAD:beads/1.md")
    assert own_commits(repo) == ["bead #1: Z|p1|p1"]
    assert git(repo, "merge-base", "--is-ancestor", "main", "HEAD") == ""


def test_an_always_failing_bead_keeps_its_todo(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "polecat/p1/1")
    hands = Shell(repo, {1: shown(1, "E", (FAILS_ALWAYS,))})
    do_bead(hands, 1)
    do_bead(hands, 1, rework=(1, "gate"))
    assert TODO_LINE in git(repo, "show", "HEAD:beads/1.md")
    assert hands.at[-1].startswith("at submit 1 ")
