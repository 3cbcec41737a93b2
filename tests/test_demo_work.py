"""The demo agent does real work: given a bead it writes, commits and submits; it answers mail.

The daemon tests run real daemons in git towns with demo agents at speed 0, slinging with
`at sling` and answering approvals with `at approve`; they wait on what the store shows, with
deadlines. The pure parts are tested on their own and in a real git repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from at_cli import at, git, git_town, wait_for

from tundra_tui.demo_agent.work import (
    bead_file,
    commit_command,
    is_role_prompt,
    read_bead,
    reminders,
    reply_command,
    shell_env,
    to_answer,
)
from tundra_tui.domain.handover import MailLine, mail_text, parse_mail
from tundra_tui.orchestra.prompts import first_task
from tundra_tui.orchestra.witness import reminder

DEADLINE = 60.0


def crew(*args: str, start: bool = False) -> dict[str, Any]:
    """A demo agent with its own worktree, at speed 0, with these extra demo flags."""
    return {
        "role": "crew",
        "runtime": "demo",
        "worktree": True,
        "start": start,
        "args": ["--speed", "0", "--seed", "1", *args],
    }


def bead(town: Path, number: int) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(at(town, "bead", "show", str(number), "--json").stdout)
    return shown["bead"]


def events(town: Path, *kinds: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        at(town, "events", "--json", "--limit", "10000").stdout
    )
    return [e for e in found if not kinds or e["kind"] in kinds]


def mails(town: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        at(town, "mail", "list", "--json", "--limit", "1000").stdout
    )
    return listed


def approvals(town: Path) -> list[dict[str, Any]]:
    pending: list[dict[str, Any]] = json.loads(at(town, "approvals", "--json").stdout)
    return pending


# ---- the parts -------------------------------------------------------------------------------


def test_the_commit_is_made_once_with_the_agents_identity(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "first")
    (tmp_path / "beads").mkdir()
    (tmp_path / "beads" / "7.md").write_text(bead_file(7, "It's a (title)", "two\nlines"))
    command = commit_command(7, "It's a (title)", "polecat-2")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_GLOBAL": os.devnull}
    for _ in range(2):  # the second run is a re-dispatch: nothing to commit, and no error
        done = subprocess.run(
            ["/bin/sh", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    log = git(tmp_path, "log", "--format=%an <%ae>|%s", "main~1..main").splitlines()
    assert log == ["polecat-2 <polecat-2@demo.invalid>|bead #7: It's a (title)"]
    assert git(tmp_path, "show", "main:beads/7.md") == "# #7: It's a (title)\n\ntwo\nlines\n"


def test_only_questions_are_answered() -> None:
    messages = [
        MailLine(1, "mayor", "plan", "what next?"),
        MailLine(2, "witness", "#3 reminder", reminder(3)),
        MailLine(3, "daemon", "", "notice"),
        MailLine(4, "crew-1", "Re: plan", "done"),
        MailLine(5, "d1", "to myself", "hm"),
        MailLine(6, "operator", "", "hello"),
    ]
    assert [m.id for m in to_answer(messages, "d1")] == [1, 6]
    assert reminders(messages) == [3]
    typed = mail_text(messages, limit=4000)
    assert [m.id for m in to_answer(parse_mail(typed), "d1")] == [1, 6]


@pytest.mark.parametrize("role", ["mayor", "crew", "witness", "refinery"])
def test_a_role_prompt_is_taken_in_and_nothing_is_faked(role: str) -> None:
    import tundra_tui

    template = (Path(tundra_tui.__file__).parent / "prompts" / f"{role}.md").read_text()
    task = first_task(template, agent="a-1", target="main")
    assert is_role_prompt(task, "a-1") and not is_role_prompt(task, "a")


def test_a_reply_is_one_quoted_command() -> None:
    command = reply_command("mayor", "re: it's $(rm -rf /)", "Thanks; `x`")
    assert command == "at mail send mayor --subject 're: it'\"'\"'s $(rm -rf /)' -m 'Thanks; `x`'"


def test_the_bead_is_read_from_at_bead_show_json() -> None:
    shown = json.dumps({"bead": {"title": "T", "description": "D"}}, indent=2).splitlines()
    assert read_bead(shown) == ("T", "D")
    assert read_bead(["at: no bead #9"]) is None


def test_our_own_at_comes_first_on_path() -> None:
    env = shell_env({"PATH": "/usr/bin:/bin"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert shell_env(env)["PATH"] == env["PATH"]


# ---- in a town, for real ---------------------------------------------------------------------


def test_a_slung_bead_is_written_committed_and_submitted_without_asking_at_rate_0() -> None:
    with git_town(agents={"d1": crew("--approval-rate", "0")}) as town:
        at(town, "bead", "add", "Write the notes", "-d", "two\nlines")
        at(town, "sling", "1", "d1", timeout=DEADLINE)
        wait_for(lambda: bead(town, 1)["status"] == "review", DEADLINE)
        branch = bead(town, 1)["branch"]
        assert branch.endswith("/1")
        log = git(town, "log", "--format=%an|%s", f"main..{branch}").splitlines()
        assert log == ["d1|bead #1: Write the notes"]
        assert git(town, "show", "--name-only", "--format=", branch).split() == ["beads/1.md"]
        assert git(town, "show", f"{branch}:beads/1.md") == "# #1: Write the notes\n\ntwo\nlines\n"
        assert [e["actor"] for e in events(town, "bead.submit")] == ["d1"]
        assert events(town, "approval.requested") == []


def test_at_rate_1_at_submit_waits_for_the_operators_approval() -> None:
    with git_town(agents={"d1": crew("--approval-rate", "1")}) as town:
        at(town, "bead", "add", "Ask first")
        at(town, "sling", "1", "d1", timeout=DEADLINE)
        wait_for(lambda: bool(approvals(town)), DEADLINE)
        [asked] = approvals(town)
        assert asked["agent"] == "d1" and asked["subject"].startswith("at submit 1 -m ")
        assert bead(town, 1)["status"] == "slung"
        at(town, "approve", str(asked["id"]))
        wait_for(lambda: bead(town, 1)["status"] == "review", DEADLINE)


def test_mail_is_answered_once_and_an_answer_never() -> None:
    with git_town(agents={"d1": crew("--approval-rate", "0", start=True)}) as town:
        at(town, "up", timeout=DEADLINE)
        at(town, "mail", "send", "d1", "--subject", "hello", "-m", "are you there?")
        replies = lambda: [m for m in mails(town) if m["sender"] == "d1"]  # noqa: E731
        wait_for(lambda: len(replies()) == 1, DEADLINE)
        [reply] = replies()
        assert reply["recipient"] == "operator" and reply["subject"] == "re: hello"
        at(town, "mail", "send", "d1", "--subject", "re: thanks", "-m", "you're welcome")
        wait_for(lambda: all(m["read_at"] for m in mails(town) if m["recipient"] == "d1"), DEADLINE)
        # The answer was delivered; had d1 answered it, its reply would be typed by its shell
        # in that same turn: wait for the turn to end before counting.
        wait_for(lambda: "[demo] idle" in at(town, "peek", "d1").stdout, DEADLINE)
        assert len(replies()) == 1
        screen = at(town, "peek", "d1").stdout
        assert "Understood: I am d1." in screen  # its role prompt, from `at up`


def test_a_denied_submit_leaves_the_bead_slung_with_its_commit() -> None:
    with git_town(agents={"d1": crew("--approval-rate", "1")}) as town:
        at(town, "bead", "add", "Ask and be told no")
        at(town, "sling", "1", "d1", timeout=DEADLINE)
        wait_for(lambda: bool(approvals(town)), DEADLINE)
        at(town, "deny", str(approvals(town)[0]["id"]))
        wait_for(lambda: "Denied by operator." in at(town, "peek", "d1").stdout, DEADLINE)
        wait_for(lambda: "[demo] idle" in at(town, "peek", "d1").stdout, DEADLINE)
        assert bead(town, 1)["status"] == "slung"
        branch = bead(town, 1)["branch"]
        assert len(git(town, "log", "--format=%s", f"main..{branch}").splitlines()) == 1


def test_a_refused_submit_is_shown_and_the_bead_failed_with_the_reason() -> None:
    """main already holds the very file the demo writes: nothing to commit, so `at submit`
    is refused (no commit beyond main) and the agent fails the bead, saying why."""
    with git_town(agents={"d1": crew("--approval-rate", "0")}) as town:
        at(town, "bead", "add", "Already done")
        (town / "beads").mkdir()
        (town / "beads" / "1.md").write_text(bead_file(1, "Already done", ""))
        git(town, "add", "beads/1.md")
        git(town, "commit", "-q", "-m", "the bead's file, before any agent")
        at(town, "sling", "1", "d1", timeout=DEADLINE)
        wait_for(lambda: bead(town, 1)["status"] == "failed", DEADLINE)
        [failed] = events(town, "bead.fail")
        assert failed["actor"] == "d1"
        assert failed["data"]["reason"].startswith("at submit refused: ")
        assert "no commit beyond" in failed["data"]["reason"]
        assert "at submit refused" in at(town, "peek", "d1").stdout


def test_a_witness_reminder_takes_a_denied_submit_up_again() -> None:
    """Denied once, the bead stays slung; the witness's reminder, delivered at the next idle
    moment, makes the agent report again (its commit is already made), and this time the
    operator approves."""
    witness = {"idle_nudge_seconds": 1, "max_nudges": 3}
    with git_town(agents={"d1": crew("--approval-rate", "1")}, witness=witness) as town:
        at(town, "bead", "add", "Remind me")
        at(town, "sling", "1", "d1", timeout=DEADLINE)
        wait_for(lambda: bool(approvals(town)), DEADLINE)
        at(town, "deny", str(approvals(town)[0]["id"]))
        wait_for(lambda: bool(events(town, "witness.nudged")), DEADLINE)
        wait_for(lambda: bool(approvals(town)), DEADLINE)
        [asked] = approvals(town)
        assert asked["subject"].startswith("at submit 1 -m ")
        at(town, "approve", str(asked["id"]))
        wait_for(lambda: bead(town, 1)["status"] == "review", DEADLINE)
        branch = bead(town, 1)["branch"]
        assert len(git(town, "log", "--format=%s", f"main..{branch}").splitlines()) == 1
