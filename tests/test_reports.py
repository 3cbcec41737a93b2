"""Reports from inside agents: `at submit`, `at done --fail`, `at bead note`, `at mail send`.

An agent reports on the bead on its own hook only, and is known by its process
ancestry in the daemon, never by its environment. A submit needs a branch with work
on it and nothing left uncommitted. The branch checks run on real repositories; the
reports run through a real daemon, from inside real agents (`helpers/shell_agent.py`
runs what it is typed with `sh -c`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from at_cli import at, git, git_town, wait_for

from tundra_tui.domain.beads import Bead, BeadStatus
from tundra_tui.orchestra.branches import default_target, submit_problem, worktree_holding
from tundra_tui.orchestra.notices import notice


def commit(repo: Path, name: str, text: str = "x") -> None:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "README")
    return root


# ---- branches ------------------------------------------------------------------------------


def test_a_branch_with_a_commit_and_a_clean_worktree_can_be_submitted(repo: Path) -> None:
    tree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "polecat/a/1", str(tree), "main")
    commit(tree, "work.md")
    assert worktree_holding(repo, "polecat/a/1") == tree.resolve()
    assert submit_problem(repo, "polecat/a/1", "main") is None
    assert submit_problem(repo, "polecat/a/1") is None  # the target defaults to main


def test_a_missing_branch_is_refused(repo: Path) -> None:
    assert submit_problem(repo, "polecat/a/9", "main") == "branch polecat/a/9 does not exist"
    assert submit_problem(repo, "", "main") == "the bead has no branch to submit"


def test_a_branch_with_no_commit_beyond_the_target_is_refused(repo: Path) -> None:
    git(repo, "branch", "polecat/a/1")
    problem = submit_problem(repo, "polecat/a/1", "main")
    assert problem == "polecat/a/1 has no commit beyond main: commit your work first"


def test_a_dirty_worktree_is_refused_until_committed(repo: Path) -> None:
    tree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "polecat/a/1", str(tree), "main")
    commit(tree, "work.md")
    (tree / "left.txt").write_text("not committed")  # untracked counts
    problem = submit_problem(repo, "polecat/a/1", "main")
    assert problem is not None and "uncommitted changes" in problem and str(tree) in problem
    git(tree, "add", "left.txt")
    assert "uncommitted changes" in (submit_problem(repo, "polecat/a/1", "main") or "")
    git(tree, "commit", "-q", "-m", "the rest")
    assert submit_problem(repo, "polecat/a/1", "main") is None


def test_a_branch_without_a_worktree_is_judged_by_its_commits(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "polecat/a/2")
    commit(repo, "work.md")
    git(repo, "checkout", "-q", "main")
    (repo / "operator-scratch.txt").write_text("the operator's own checkout is not the bead's")
    assert submit_problem(repo, "polecat/a/2", "main") is None


def test_the_target_must_exist_and_differ(repo: Path) -> None:
    git(repo, "branch", "polecat/a/1")
    assert submit_problem(repo, "polecat/a/1", "trunk") == "target branch trunk does not exist"
    assert "is the target branch itself" in (submit_problem(repo, "main", "main") or "")


def test_the_default_target_is_the_main_worktrees_branch(repo: Path) -> None:
    assert default_target(repo) == "main"
    git(repo, "checkout", "-q", "-b", "develop")
    assert default_target(repo) == "develop"
    git(repo, "checkout", "-q", "--detach")
    assert default_target(repo) == "main"


def test_outside_git_nothing_can_be_submitted(tmp_path: Path) -> None:
    problem = submit_problem(tmp_path, "polecat/a/1", "main")
    assert problem is not None and "is not a git repository" in problem


# ---- notices -------------------------------------------------------------------------------


def test_a_notice_names_the_bead_and_keeps_a_hostile_title_inert() -> None:
    bead = Bead(id=7, title="evil\x1b[2J\ntitle", status=BeadStatus.REVIEW, branch="polecat/a/7")
    subject, body = notice("a", bead, "submit", "  all done  ")
    assert subject.startswith("#7 submitted for review: evil")
    assert "\x1b" not in subject and "\n" not in subject
    assert body.startswith("a submitted for review #7 (evil")
    assert "Branch: polecat/a/7." in body and body.endswith("\nsummary: all done")
    assert notice("witness", bead, "escalate", "")[0].startswith("#7 escalated")
    assert notice("b", bead, "fail", "gone")[1].endswith("\nreason: gone")


# ---- reports through the daemon, from inside real agents ---------------------------------------

SHELL = Path(__file__).parent / "helpers" / "shell_agent.py"
BOARD_CALL = Path(__file__).parent / "helpers" / "board_call.py"


def _shell_agent(town_log: str) -> dict[str, object]:
    return {
        "role": "polecat",
        "runtime": "demo",
        "command": f"{sys.executable} {SHELL} {town_log}",
    }


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    """Agents a and b (shell agents), each holding a slung bead on its own branch and
    worktree, and a mayor (never started) to be told."""
    logs = Path(tempfile.mkdtemp(prefix="at-logs-", dir="/tmp"))
    agents = {
        "mayor": {"role": "mayor", "runtime": "demo"},
        "a": _shell_agent(str(logs / "a.jsonl")),
        "b": _shell_agent(str(logs / "b.jsonl")),
    }
    with git_town(agents=agents) as root:
        for name, bead in (("a", 1), ("b", 2)):
            at(root, "bead", "add", f"{name}'s work", "-d", f"work for {name}")
            at(root, "hook", str(bead), name)
            branch = f"polecat/{name}/{bead}"
            at(root, "bead", "edit", str(bead), "--status", "slung", "--branch", branch)
            git(root, "worktree", "add", "-q", "-b", branch, str(root / f"wt-{name}"), "main")
        for name in ("a", "b"):
            at(root, "agent", "start", name)
        for name in ("a", "b"):
            wait_for(lambda name=name: _state(root, name) == "idle")
        (root / "logs").symlink_to(logs)
        try:
            yield root
        finally:
            shutil.rmtree(logs, ignore_errors=True)


def _state(town: Path, name: str) -> str:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return str(next(r for r in rows if r["name"] == name)["state"])


def run_in(town: Path, agent: str, command: str) -> dict[str, Any]:
    """Type `command` into the shell agent and wait for its result (code and output)."""
    log = town / "logs" / f"{agent}.jsonl"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    at(town, "send", agent, command)
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) > before, timeout=60)
    result: dict[str, Any] = json.loads(log.read_text().splitlines()[before])
    assert result["command"] == command
    return result


def bead(town: Path, bead_id: int) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(at(town, "bead", "show", str(bead_id), "--json").stdout)
    return shown


def test_an_agent_cannot_report_on_another_agents_bead(town: Path) -> None:
    done = run_in(town, "a", "at submit 2 -m 'mine now'")
    assert done["code"] == 2
    assert "#2 is not on your hook (it is held by b)" in done["stderr"]
    for command in ("at done 2 --fail --reason no", "at bead note 2 -m hi"):
        assert "not on your hook" in run_in(town, "a", command)["stderr"]
    assert bead(town, 2)["bead"]["status"] == "slung"


def test_the_environment_does_not_name_the_reporter(town: Path) -> None:
    # TUNDRA_ACTOR claims the operator: the daemon still sees agent a.
    done = run_in(town, "a", "TUNDRA_ACTOR=operator at submit 2")
    assert done["code"] == 2 and "held by b" in done["stderr"]
    # With its agent variables gone the CLI thinks it is the operator and asks the running
    # daemon as the operator would: the daemon still names a by its process ancestry.
    done = run_in(
        town, "a", "env -u TUNDRA_AGENT -u TUNDRA_AGENT_MARK TUNDRA_ACTOR=operator at submit 2"
    )
    assert done["code"] == 2 and "held by b" in done["stderr"]
    assert bead(town, 2)["bead"]["status"] == "slung"


def test_a_submit_needs_a_commit_and_a_clean_tree(town: Path) -> None:
    tree = town / "wt-a"
    commit = "git -c user.name=a -c user.email=a@a commit -q -m work"
    done = run_in(town, "a", "at submit -m 'first try'")
    assert done["code"] == 2
    assert "polecat/a/1 has no commit beyond main" in done["stderr"]
    done = run_in(town, "a", f"cd {tree} && echo hi > work.md && git add work.md && {commit}")
    assert done["code"] == 0, done
    (tree / "left.txt").write_text("forgotten")
    done = run_in(town, "a", "at submit 1 -m 'second try'")
    assert done["code"] == 2
    assert f"the worktree at {tree} has uncommitted changes" in done["stderr"]
    assert bead(town, 1)["bead"]["status"] == "slung"
    done = run_in(town, "a", f"cd {tree} && git add left.txt && {commit} && at submit -m 'all in'")
    assert done["code"] == 0, done
    assert "submitted #1" in done["stdout"]
    shown = bead(town, 1)
    assert shown["bead"]["status"] == "review"
    submit = [e for e in shown["events"] if e["kind"] == "bead.submit"]
    assert len(submit) == 1 and submit[0]["actor"] == "a"
    assert submit[0]["data"]["reason"] == "all in"
    # The mayor and the operator are told.
    for who in ("mayor", "operator"):
        mail = json.loads(at(town, "mail", "list", "--to", who, "--json").stdout)
        told = [m for m in mail if m["subject"].startswith("#1 submitted for review")]
        assert len(told) == 1, mail
        assert told[0]["sender"] == "a" and "all in" in told[0]["body"]


def test_an_agent_fails_its_bead_with_a_reason_but_never_marks_it_done(town: Path) -> None:
    done = run_in(town, "b", "at done 2")
    assert done["code"] == 2 and "agents report with `at submit`" in done["stderr"]
    done = run_in(town, "b", "at done 2 --fail")
    assert done["code"] == 2 and "say why it failed" in done["stderr"]
    assert bead(town, 2)["bead"]["status"] == "slung"
    done = run_in(town, "b", "at done 2 --fail --reason 'the API is gone'")
    assert done["code"] == 0, done
    shown = bead(town, 2)
    assert shown["bead"]["status"] == "failed"
    fail = [e for e in shown["events"] if e["kind"] == "bead.fail"]
    assert fail[0]["actor"] == "b" and fail[0]["data"]["reason"] == "the API is gone"
    mail = json.loads(at(town, "mail", "list", "--to", "operator", "--json").stdout)
    assert any(m["subject"].startswith("#2 failed") and m["sender"] == "b" for m in mail)


def test_a_note_shows_in_bead_show(town: Path) -> None:
    bead_id = json.loads(at(town, "bead", "add", "noted", "--json").stdout)["id"]
    at(town, "hook", str(bead_id), "b")
    # The agent's text may hold escapes (made by printf here): stored as given, shown inert.
    note = f"at bead note {bead_id} -m \"$(printf 'the cache hides it; see \\033[31mred')\""
    done = run_in(town, "b", note)
    assert done["code"] == 0, done
    shown = bead(town, bead_id)
    assert [(n["author"], n["body"]) for n in shown["notes"]] == [
        ("b", "the cache hides it; see \x1b[31mred")
    ]
    text = at(town, "bead", "show", str(bead_id)).stdout
    assert "the cache hides it" in text and "\x1b" not in text
    assert "a note needs text" in run_in(town, "b", f"at bead note {bead_id} -m ' '")["stderr"]


def test_mail_from_inside_an_agent_is_from_that_agent(town: Path) -> None:
    done = run_in(town, "a", "at mail send mayor -m 'need a hand' --subject help")
    assert done["code"] == 0, done
    mail = json.loads(at(town, "mail", "list", "--to", "mayor", "--json").stdout)
    assert [m["sender"] for m in mail if m["subject"] == "help"] == ["a"]
    done = run_in(town, "a", "at mail send operator --from operator -m forged")
    assert done["code"] == 2 and "only as itself" in done["stderr"]
    # The CLI's own check gone (it trusts the env): the daemon refuses by ancestry.
    done = run_in(town, "a", "TUNDRA_AGENT=operator at mail send operator --from operator -m x")
    assert done["code"] == 2 and "refused: you are a" in done["stderr"]
    done = run_in(town, "a", "at mail send nobody -m hi")
    assert done["code"] == 2 and "no agent 'nobody'" in done["stderr"]
    mail = json.loads(at(town, "mail", "list", "--to", "operator", "--json").stdout)
    assert not [m for m in mail if m["body"] in ("forged", "x")]
    # The operator may still send as an agent on the roster (through the running daemon).
    sent = json.loads(at(town, "mail", "send", "a", "--from", "mayor", "-m", "ok", "--json").stdout)
    assert sent["sender"] == "mayor" and sent["recipient"] == "a"


def test_agents_cannot_move_or_hand_out_beads_through_the_board(town: Path) -> None:
    bead_id = json.loads(at(town, "bead", "add", "board", "--json").stdout)["id"]
    call = f"{sys.executable} {BOARD_CALL} {town}"
    for args in (f"apply {bead_id} hook a", f"move {bead_id}", "create planned a"):
        done = run_in(town, "a", f"{call} {args}")
        assert "error: refused: agents do not move beads" in done["stdout"], done
    assert bead(town, bead_id)["bead"]["status"] == "backlog"
    done = run_in(town, "a", f"{call} create planned")  # planning is allowed
    assert done["stdout"].startswith("ok:"), done
    created = json.loads(at(town, "bead", "list", "--search", "planned", "--json").stdout)
    assert len(created) == 1 and created[0]["status"] == "backlog"
    events = json.loads(at(town, "events", "--bead", str(created[0]["id"]), "--json").stdout)
    assert events[0]["actor"] == "a"  # named by ancestry, not by the request's actor


def test_agents_cannot_change_the_configuration_through_the_daemon(town: Path) -> None:
    before = (town / "tundra.toml").read_text()
    call = f"{sys.executable} {BOARD_CALL} {town}"
    for args in ("config-set agents.b.command 'sh -c evil'", "config-unset agents.b.command"):
        done = run_in(town, "a", f"{call} {args}")
        assert "error: refused: agents do not change the configuration" in done["stdout"], done
    assert (town / "tundra.toml").read_text() == before
    assert (
        not (town / ".tundra" / "local.toml").exists()
        or "evil" not in (town / ".tundra" / "local.toml").read_text()
    )


def test_the_operator_reports_on_any_bead_with_the_same_checks(town: Path) -> None:
    bead_id = json.loads(at(town, "bead", "add", "op", "--json").stdout)["id"]
    at(town, "hook", str(bead_id), "a")
    at(town, "bead", "edit", str(bead_id), "--status", "slung")
    refused = at(town, "submit", str(bead_id), check=False)
    assert refused.returncode == 2
    assert f"polecat/a/{bead_id} does not exist" in refused.stderr
    at(town, "bead", "note", str(bead_id), "-m", "operator's note")
    assert bead(town, bead_id)["notes"][0]["author"] == "operator"
    at(town, "done", str(bead_id), "--fail")  # the operator need not give a reason
    assert bead(town, bead_id)["bead"]["status"] == "failed"
    assert "name the bead" in at(town, "submit", check=False).stderr


def test_agents_cannot_go_around_the_daemon_through_the_cli(town: Path) -> None:
    """Commands that write the store or the configuration straight from the CLI are refused
    inside an agent, in one line, and change nothing."""
    bead_id = json.loads(at(town, "bead", "add", "around", "--json").stdout)["id"]
    at(town, "convoy", "create", "later")
    at(town, "convoy", "add", "later", str(bead_id))
    config_before = (town / "tundra.toml").read_text()
    local = town / ".tundra" / "local.toml"
    local_before = local.read_text() if local.exists() else None
    refusals = {
        f"at hook {bead_id} a": "refused: agents do not hook beads; report with `at submit`",
        f"at bead edit {bead_id} --status hooked": "refused: agents do not",
        f"at bead edit {bead_id} --status done": "refused: agents do not move beads",
        "at bead ready --claim a": "refused: agents do not claim beads",
        f"at sling {bead_id} a": "refused: agents do not sling beads",
        "at dispatch pause": "refused: agents do not pause dispatch",
        "at dispatch resume": "refused: agents do not resume dispatch",
        "at convoy start later": "refused: agents do not start convoys",
        "at convoy pause later": "refused: agents do not pause convoys",
        "at config set agents.b.command 'sh -c evil'": "refused: agents do not change the config",
        "at config set --layer local orchestra.max_polecats 9": "refused: agents do not change",
        "at config unset agents.b.command": "refused: agents do not change the configuration",
        "at down": "refused: agents do not stop the town",
        "at detect --record a --label idle": "recordings are made by the operator",
    }
    for command, message in refusals.items():
        done = run_in(town, "a", command)
        assert done["code"] == 2 and message in done["stderr"], (command, done)
        assert len(done["stderr"].strip().splitlines()) == 1, (command, done)
    shown = bead(town, bead_id)["bead"]
    assert (shown["status"], shown["assignee"] or "") == ("backlog", "")
    convoy = json.loads(at(town, "convoy", "show", "later", "--json").stdout)
    assert convoy["convoy"]["status"] == "pending", convoy
    assert json.loads(at(town, "dispatch", "status", "--json").stdout)["paused"] is False
    assert (town / "tundra.toml").read_text() == config_before
    assert (local.read_text() if local.exists() else None) == local_before
    assert not (town / ".tundra" / "recordings").exists()
    kinds = {e["kind"] for e in json.loads(at(town, "events", "--json").stdout)}
    assert not kinds & {"dispatch.paused", "dispatch.resumed", "convoy.start", "convoy.pause"}
    # What agents may do is still allowed: plan a bead (no assignee), note, read.
    done = run_in(town, "a", "at bead add 'a follow-up' && at bead list && at dispatch status")
    assert done["code"] == 0, done
    assert json.loads(at(town, "bead", "list", "--search", "follow-up", "--json").stdout)
