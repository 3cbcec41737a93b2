"""The command line as a user meets it: output, exit codes, and bad input that writes nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from at_cli import dump

from tundra_tui.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `at` in-process and return (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("at: ") or lines[0].startswith("at "), err
    assert fragment in lines[0], err
    assert "Traceback" not in err


def test_init_status_and_sample_team(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "agents     4" in out
    code, out, _ = run(capsys, "agent", "list", "--json")
    assert {row["name"] for row in json.loads(out)} == {"mayor", "deacon", "polecat-1", "crew-1"}
    assert (town_dir / ".tundra").stat().st_mode & 0o777 == 0o700
    assert (town_dir / ".tundra" / "town.db").stat().st_mode & 0o777 == 0o600


def test_bead_lifecycle_through_the_cli(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "bead", "add", "Fix login", "--lane", "critical", "-p", "0")[0] == 0
    assert run(capsys, "bead", "add", "Docs", "--blocked-by", "1", "--label", "docs")[0] == 0
    code, out, _ = run(capsys, "bead", "ready", "--json")
    assert [b["id"] for b in json.loads(out)] == [1]
    assert run(capsys, "hook", "1", "mayor")[0] == 0
    assert run(capsys, "bead", "edit", "1", "--status", "slung")[0] == 0
    code, out, _ = run(capsys, "bead", "edit", "1", "--status", "review", "--json")
    assert json.loads(out)["status"] == "review"
    assert run(capsys, "done", "1")[0] == 0
    code, out, _ = run(capsys, "bead", "ready", "--json")
    assert [b["id"] for b in json.loads(out)] == [2]
    code, out, _ = run(capsys, "bead", "ready", "--claim", "deacon", "--json")
    assert json.loads(out)["assignee"] == "deacon"
    code, out, _ = run(capsys, "bead", "ready", "--claim", "deacon")
    assert code == 1 and "nothing is ready" in out
    code, out, _ = run(capsys, "done", "2", "--fail", "--reason", "flaky", "--json")
    assert json.loads(out)["status"] == "failed"
    code, out, _ = run(capsys, "bead", "show", "2", "--json")
    shown = json.loads(out)
    assert shown["bead"]["blocked_by"] == [1]
    assert [e["kind"] for e in shown["events"]][-1] == "bead.fail"
    assert shown["events"][-1]["data"]["reason"] == "flaky"
    code, out, _ = run(capsys, "events", "--bead", "1", "--json")
    kinds = [e["kind"] for e in json.loads(out)]
    assert kinds == ["bead.created", "bead.hook", "bead.sling", "bead.submit", "bead.done"]


def test_convoy_and_mail(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for title in ("a", "b"):
        run(capsys, "bead", "add", title)
    assert run(capsys, "convoy", "create", "alpha")[0] == 0
    assert run(capsys, "convoy", "add", "alpha", "1", "2")[0] == 0
    code, out, _ = run(capsys, "bead", "ready", "--json")
    assert json.loads(out) == [], "an unstarted convoy holds its beads back"
    assert run(capsys, "convoy", "start", "alpha")[0] == 0
    for bead in ("1", "2"):
        run(capsys, "hook", bead, "mayor")
        run(capsys, "bead", "edit", bead, "--status", "slung")
        run(capsys, "done", bead)
    code, out, _ = run(capsys, "convoy", "show", "alpha", "--json")
    convoy = json.loads(out)["convoy"]
    assert convoy["status"] == "completed" and convoy["progress"]["done"] == 2
    assert run(capsys, "mail", "send", "mayor", "-m", "hello", "--subject", "hi")[0] == 0
    code, out, _ = run(capsys, "mail", "list", "--unread", "--json")
    assert [m["subject"] for m in json.loads(out)] == ["hi"]
    code, out, _ = run(capsys, "mail", "read", "1", "--json")
    assert json.loads(out)["read_at"]
    code, out, _ = run(capsys, "mail", "list", "--unread", "--json")
    assert code == 0
    assert json.loads(out) == []


def test_agent_add_and_remove(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "agent", "add", "reviewer", "--runtime", "demo", "--role", "refinery"
    )
    assert code == 0, out
    assert "[agents.reviewer]" in (town_dir / "tundra.toml").read_text()
    run(capsys, "bead", "add", "x")
    run(capsys, "hook", "1", "reviewer")
    code, _, err = run(capsys, "agent", "remove", "reviewer")
    assert_one_line_error(code, err, "still holds #1")
    assert "[agents.reviewer]" in (town_dir / "tundra.toml").read_text()
    run(capsys, "bead", "edit", "1", "--status", "backlog")
    assert run(capsys, "agent", "remove", "reviewer")[0] == 0
    assert "[agents.reviewer]" not in (town_dir / "tundra.toml").read_text()
    code, out, _ = run(capsys, "agent", "list", "--json")
    assert "reviewer" not in {row["name"] for row in json.loads(out)}


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("bead", "show", "99"), "no bead #99"),
        (("bead", "show", "abc"), "invalid bead id"),
        (("hook", "1", "nobody"), "no agent 'nobody'"),
        (("hook", "99", "mayor"), "no bead #99"),
        (("done", "1"), "cannot mark done a bead that is backlog"),
        (("sling", "2", "mayor"), "blocked by #1"),
        (("bead", "edit", "1", "--status", "done"), "cannot move to done"),
        (("bead", "block", "1", "--by", "2"), "cycle"),
        (("bead", "add", "x" * 501), "title exceeds 500 characters"),
        (("bead", "add", "ok", "--lane", "urgent"), "unknown lane"),
        (("bead", "add", "ok", "-p", "9"), "priority must be between"),
        (("mail", "send", "nobody", "-m", "hi"), "no agent 'nobody'"),
        (("convoy", "start", "ghost"), "no convoy"),
        (("agent", "add", "../x", "--runtime", "demo"), "invalid agent name"),
        (("agent", "add", "x", "--runtime", "cobol"), "unknown runtime"),
        (("agent", "remove", "ghost"), "ghost"),
        (("config", "get", "general.nope"), "unknown config key"),
        (("config", "set", "general.max_agents", "many"), "general.max_agents"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    town_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragment: str
) -> None:
    run(capsys, "bead", "add", "first")
    run(capsys, "bead", "add", "second", "--blocked-by", "1")
    db = town_dir / ".tundra" / "town.db"
    before_db = dump(db)
    before_files = {p.name: p.read_bytes() for p in (town_dir / "tundra.toml",)}
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, fragment)
    assert dump(db) == before_db
    assert {p.name: p.read_bytes() for p in (town_dir / "tundra.toml",)} == before_files


def test_debug_shows_the_traceback(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "bead", "show", "99")
    assert code == 2 and "Traceback" in err and err.strip().endswith("no bead #99")
    code, _, err = run(capsys, "bead", "show", "99", "--debug")
    assert code == 2 and "Traceback" in err


def test_outside_a_town(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "status")
    assert_one_line_error(code, err, "not in a town")
    code, _, err = run(capsys, "--town", str(tmp_path / "nowhere"), "bead", "list")
    assert_one_line_error(code, err, "no town at")


def test_usage_errors_are_one_line(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bead", "add"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "title" in err


def test_malformed_config_names_file_line_and_column(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = town_dir / ".tundra" / "town.db"
    before = dump(db)
    config = town_dir / "tundra.toml"
    config.write_text(config.read_text() + "\n[general\nname = 'x'\n")
    code, _, err = run(capsys, "bead", "add", "never written")
    line_count = len(config.read_text().splitlines())
    assert_one_line_error(code, err, f"tundra.toml:{line_count - 1}:")
    assert dump(db) == before


def test_wrong_type_in_config_names_the_key_and_line(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (town_dir / ".tundra" / "local.toml").write_text("[general]\n\nmax_ptys = 'lots'\n")
    code, _, err = run(capsys, "status")
    assert_one_line_error(code, err, "local.toml:3: general.max_ptys")


def test_unwritable_town_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(capsys, "init", str(blocker / "town"))
    assert_one_line_error(code, err, "cannot create")
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_state_directory(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = town_dir / ".tundra"
    (state / "town.db").unlink()
    state.chmod(0o500)
    try:
        code, _, err = run(capsys, "status")
    finally:
        state.chmod(0o700)
    assert_one_line_error(code, err, "town.db")


def test_locked_database_waits_then_fails_cleanly(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "config", "set", "store.busy_timeout_ms", "300", "--layer", "local")
    db = town_dir / ".tundra" / "town.db"
    before = dump(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, _, err = run(capsys, "bead", "add", "blocked write")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line_error(code, err, "database is locked by another writer (waited 0.3 s)")
    assert dump(db) == before


def test_database_from_the_future_is_refused_untouched(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = town_dir / ".tundra" / "town.db"
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', 'x')")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    code, _, err = run(capsys, "bead", "add", "never written")
    assert_one_line_error(code, err, "schema version 99, newer than this auto-tundra")
    assert db.read_bytes() == before


def test_untrusted_text_is_shown_not_obeyed(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "pwn\x1b]0;TITLE\x07\x1b]52;c;Q0FOQVJZ\x07\x1b[2J\u202eend[@click=app.quit]x[/]"
    assert run(capsys, "bead", "add", hostile)[0] == 0
    for argv in (("bead", "list"), ("bead", "show", "1"), ("events",)):
        _, out, _ = run(capsys, *argv)
        assert "\x1b" not in out and "\x07" not in out
        assert "␛]52;c;Q0FOQVJZ␇" in out or "␛]0;TITLE" in out
    _, out, _ = run(capsys, "bead", "show", "1", "--json")
    assert "\x1b" not in out
    assert json.loads(out)["bead"]["title"] == hostile, "stored verbatim, escaped in JSON"


def test_config_layers_through_the_cli(town_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "config", "set", "general.max_ptys", "8", "--layer", "global")[0] == 0
    assert run(capsys, "config", "set", "general.max_ptys", "12", "--layer", "local")[0] == 0
    code, out, _ = run(capsys, "config", "get", "general.max_ptys", "--json")
    assert json.loads(out) == {"key": "general.max_ptys", "value": 12, "layer": "local"}
    code, out, _ = run(capsys, "config", "show", "--layers")
    row = next(line for line in out.splitlines() if line.startswith("general.max_ptys"))
    assert row.split() == ["general.max_ptys", "20", "8", "*", "12", "local"]
    assert run(capsys, "config", "unset", "general.max_ptys", "--layer", "local")[0] == 0
    code, out, _ = run(capsys, "config", "get", "general.max_ptys")
    assert code == 0
    assert out.strip() == "8"


def test_doctor_reports_modes_and_integrity(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "doctor", "--json")
    checks = {c["check"]: c for c in json.loads(out)}
    assert checks["database"]["status"] == "ok" and "integrity ok" in checks["database"]["detail"]
    assert checks["state dir"]["status"] == "ok"
    (town_dir / ".tundra").chmod(0o755)
    code, out, _ = run(capsys, "doctor", "--json")
    assert code == 1
    assert {c["check"]: c for c in json.loads(out)}["state dir"]["status"] == "FAIL"


def test_tui_without_a_terminal_says_so_in_one_line(
    town_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "tui")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "needs a terminal" in err


def test_events_follow_prints_new_events(town_dir: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def at(*argv: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "tundra_tui", *argv],
            cwd=town_dir,
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )

    at("bead", "add", "before")
    follower = subprocess.Popen(
        [sys.executable, "-m", "tundra_tui", "events", "--follow", "--json", "-n", "1"],
        cwd=town_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, follower.kill)
    watchdog.start()
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["data"]["title"] == "before"
        at("bead", "add", "after")
        second = json.loads(follower.stdout.readline())
        assert (second["kind"], second["data"]["title"]) == ("bead.created", "after")
    finally:
        watchdog.cancel()
        follower.terminate()
        follower.wait(timeout=10)


def test_module_entry_point_and_tundra_alias(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tundra_tui", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "at bead" not in done.stderr and "init" in done.stdout
    scripts = Path(sys.executable).parent
    for name in ("at", "tundra"):
        done = subprocess.run([str(scripts / name), "--version"], capture_output=True, text=True)
        assert done.returncode == 0 and "auto-tundra" in done.stdout
