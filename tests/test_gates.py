"""The refinery's gate runner: verdicts, timeouts, bounded output, and nothing left running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.at_cli import wait_for
from tundra_tui.orchestra.gates import GATE_MARK_ENV, gate_env, kill_marked, run_gate
from tundra_tui.session.procs import Proc, proc_info, running

ROOT = Path(__file__).resolve().parent.parent


def _marked(mark: str) -> list[int]:
    """Live processes carrying exactly this gate mark."""
    entry = f"{GATE_MARK_ENV}={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if entry in env:
                found.append(int(name))
    return found


def _env() -> tuple[str, dict[str, str]]:
    mark = f"test-{uuid.uuid4().hex[:8]}:1"
    return mark, gate_env(os.environ, mark)


async def test_exit_codes_give_the_verdict(tmp_path: Path) -> None:
    _, env = _env()
    green = await run_gate(
        "echo fine", cwd=tmp_path, env=env, timeout=20, log_path=tmp_path / "logs" / "1-0.log"
    )
    assert (green.ok, green.exit_code, green.timed_out) == (True, 0, False)
    assert green.tail == "fine\n"
    assert Path(green.log_path).read_text() == "fine\n"
    red = await run_gate(
        "echo oops >&2; exit 3", cwd=tmp_path, env=env, timeout=20, log_path=tmp_path / "1-1.log"
    )
    assert (red.ok, red.exit_code, red.timed_out) == (False, 3, False)
    assert red.tail == "oops\n"  # stderr is in the same stream


async def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    mark, env = _env()
    seen: list[int] = []
    run = await run_gate(
        "sleep 30 & sleep 30",
        cwd=tmp_path,
        env=env,
        timeout=0.5,
        log_path=tmp_path / "t.log",
        started=seen.append,
    )
    assert run.timed_out and not run.ok
    assert run.exit_code == -9
    assert len(seen) == 1
    assert _marked(mark) == []


async def test_a_background_child_holding_stdout_does_not_hang_the_gate(tmp_path: Path) -> None:
    mark, env = _env()
    run = await run_gate(
        "(sleep 30 &); echo hi", cwd=tmp_path, env=env, timeout=25, log_path=tmp_path / "b.log"
    )
    assert run.ok and not run.timed_out
    assert run.tail == "hi\n"
    assert run.seconds < 20  # far from the sleep's 30 s: it did not wait for the pipe to close
    assert _marked(mark) == []


async def test_a_child_that_left_the_group_is_killed_by_its_mark(tmp_path: Path) -> None:
    mark, env = _env()
    run = await run_gate(
        "setsid sleep 30 & echo started",
        cwd=tmp_path,
        env=env,
        timeout=25,
        log_path=tmp_path / "s.log",
    )
    assert run.ok
    assert _marked(mark) == []


async def test_tail_is_bounded_and_log_capped(tmp_path: Path) -> None:
    _, env = _env()
    run = await run_gate(
        "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done",
        cwd=tmp_path,
        env=env,
        timeout=20,
        log_path=tmp_path / "big.log",
        tail_chars=100,
        max_log_bytes=1000,
    )
    assert run.ok
    assert len(run.tail) == 100
    assert run.tail.endswith("line-1999\n")
    log = Path(run.log_path).read_bytes()
    assert log.startswith(b"line-0\nline-1\n")
    assert len(log) < 1200
    assert b"log cut here" in log


async def test_environment_has_no_town_variables_or_git_redirection(tmp_path: Path) -> None:
    base = dict(os.environ)
    base |= {
        "TUNDRA_AGENT_MARK": "agent",
        "TUNDRA_TOWN": "/somewhere",
        "TUNDRA_DAEMON": "4242",
        "GIT_DIR": "/elsewhere/.git",
        "GIT_INDEX_FILE": "/elsewhere/index",
        "KEEP_ME": "yes",
    }
    env = gate_env(base, "m:1")
    run = await run_gate("env", cwd=tmp_path, env=env, timeout=20, log_path=tmp_path / "e.log")
    names = {line.split("=", 1)[0] for line in run.tail.splitlines()}
    # The daemon's own mark stays: containment tells the daemon's subprocesses by it.
    assert {name for name in names if name.startswith("TUNDRA_")} == {
        GATE_MARK_ENV,
        "TUNDRA_DAEMON",
    }
    assert "GIT_DIR" not in names and "GIT_INDEX_FILE" not in names
    assert "KEEP_ME=yes" in run.tail.splitlines()


async def test_an_unmarked_environment_is_refused(tmp_path: Path) -> None:
    try:
        await run_gate("true", cwd=tmp_path, env={}, timeout=1, log_path=tmp_path / "x.log")
    except ValueError as exc:
        assert GATE_MARK_ENV in str(exc)
    else:
        raise AssertionError("a gate without its mark ran")


def test_the_shell_dies_with_its_parent_and_kill_marked_finds_the_rest(tmp_path: Path) -> None:
    mark = f"test-{uuid.uuid4().hex[:8]}:pre"
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from pathlib import Path
        from tundra_tui.orchestra.gates import gate_env, run_gate

        async def main():
            here = Path({str(tmp_path)!r})
            gate = asyncio.ensure_future(run_gate(
                "sleep 30 & echo $! > bg; wait",
                cwd=here, env=gate_env(os.environ, {mark!r}), timeout=60,
                log_path=here / "g.log",
                started=lambda pid: (here / "sh").write_text(str(pid)),
            ))
            def written(name):
                return (here / name).exists() and (here / name).read_text().strip()

            # Both (the shell may write bg before run_gate has reported its pid).
            while not (written("sh") and written("bg")):
                await asyncio.sleep(0.02)
            os._exit(0)

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=30)
    sh_pid = int((tmp_path / "sh").read_text())
    bg_pid = int((tmp_path / "bg").read_text())
    wait_for(lambda: proc_info(sh_pid) is None or proc_info(sh_pid).zombie, timeout=10)  # type: ignore[union-attr]
    info = proc_info(bg_pid)
    assert info is not None and not info.zombie  # PDEATHSIG reached only sh
    bg = Proc(bg_pid, info.start)
    assert kill_marked(mark.split(":")[0] + ":") == [bg_pid]
    wait_for(lambda: not running(bg), timeout=10)
    assert _marked(mark) == []


def test_a_process_slow_to_die_is_signalled_and_reported_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL is delivered, not awaited: a loaded machine can still list the process next round."""
    import tundra_tui.orchestra.gates as gates

    mark, env = _env()
    child = subprocess.Popen(["sleep", "30"], env=env)
    try:
        wait_for(lambda: child.pid in _marked(mark), timeout=10)
        sent: list[Proc] = []

        def slow_send(proc: Proc, sig: int) -> bool:  # signalled, but not yet dead
            sent.append(proc)
            return True

        monkeypatch.setattr(gates, "send", slow_send)
        assert kill_marked(mark, exact=True) == [child.pid]
        assert [proc.pid for proc in sent] == [child.pid]
    finally:
        child.kill()
        child.wait(timeout=10)
