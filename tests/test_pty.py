"""The PTY host: reading on the loop, resizing, exit status, and stops that leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tundra_tui.session.pty import AgentPty, ExitStatus, become_subreaper, processes_with_marker


async def _run(
    argv: list[str], tmp_path: Path
) -> tuple[AgentPty, bytearray, asyncio.Future[ExitStatus]]:
    loop = asyncio.get_running_loop()
    output = bytearray()
    exited: asyncio.Future[ExitStatus] = loop.create_future()
    agent = AgentPty.spawn(argv, cwd=tmp_path, env=dict(os.environ), columns=100, rows=30)
    agent.attach(loop, output.extend, exited.set_result)
    return agent, output, exited


async def _until(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_output_cwd_term_and_exit_code(tmp_path: Path) -> None:
    _agent, output, exited = await _run(
        ["sh", "-c", 'printf "%s %s\\n" "$PWD" "$TERM"; stty size; exit 3'], tmp_path
    )
    status = await asyncio.wait_for(exited, 10)
    assert status == ExitStatus(3, None) and status.describe() == "exit 3"
    text = output.decode()
    assert f"{tmp_path} xterm-256color" in text
    assert "30 100" in text


async def test_write_and_resize_reach_the_agent(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGWINCH, lambda *_: print('size', *os.get_terminal_size(0),"
        " flush=True))\n"
        "print('ready', flush=True)\n"
        "for line in sys.stdin: print('got:' + line.strip(), flush=True)\n"
    )
    agent, output, exited = await _run([sys.executable, "-c", script], tmp_path)
    await _until(lambda: b"ready" in output)
    agent.write(b"hello\r")
    await _until(lambda: b"got:hello" in output)
    agent.resize(90, 20)
    await _until(lambda: b"size 90 20" in output)
    await agent.stop(grace=2)
    assert exited.done()


async def test_stop_kills_setsid_nohup_and_hup_ignoring_descendants(tmp_path: Path) -> None:
    become_subreaper()
    # Orphans of earlier tests in this process may lie here as zombies already: only the
    # ones this agent leaves count.
    before = _zombies()
    script = (
        "setsid sleep 300 & nohup sleep 301 >/dev/null 2>&1 & "
        "(trap '' HUP TERM; sleep 302) & echo started; sleep 303"
    )
    agent, output, _exited = await _run(["bash", "-c", script], tmp_path)
    await _until(lambda: b"started" in output)
    await _until(lambda: len(processes_with_marker(agent.mark)) >= 4)
    status = await agent.stop(grace=1.0)
    assert status.signal in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL)
    await _until(lambda: processes_with_marker(agent.mark) == [])
    assert _zombies() - before == set()


def _zombies() -> set[str]:
    return {p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _zombie_child_of_us(p)}


def _zombie_child_of_us(proc: Path) -> bool:
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] == "Z" and int(fields[1]) == os.getpid()


async def test_a_child_that_never_reads_does_not_block_the_loop(tmp_path: Path) -> None:
    agent, output, _exited = await _run(["sh", "-c", "echo ready; sleep 30"], tmp_path)
    await _until(lambda: b"ready" in output)
    started = asyncio.get_running_loop().time()
    agent.write(b"x" * 1_000_000)
    await asyncio.sleep(0)
    assert asyncio.get_running_loop().time() - started < 0.5
    await agent.stop(grace=1)


async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from tundra_tui.domain.errors import TundraError

    with pytest.raises(TundraError, match="not found"):
        AgentPty.spawn(["no-such-agent-cli"], cwd=tmp_path, env=dict(os.environ))


async def test_python_child_sees_the_marker(tmp_path: Path) -> None:
    agent, output, exited = await _run(
        [sys.executable, "-c", "import os; print(os.environ['TUNDRA_AGENT_MARK'])"], tmp_path
    )
    await asyncio.wait_for(exited, 10)
    assert agent.mark in output.decode()


async def test_orphans_that_outlive_their_agent_are_reaped_later(tmp_path: Path) -> None:
    import subprocess

    from tundra_tui.session.pty import MARKER_ENV, adopted_agent_processes, reap

    become_subreaper()
    # The shell exits at once; its background sleep is orphaned and reparented to us.
    parent = subprocess.Popen(
        ["sh", "-c", "(sleep 1 </dev/null >/dev/null 2>&1 &); exit 0"],
        env={**os.environ, MARKER_ENV: "test-orphan"},
    )
    assert parent.wait(timeout=10) == 0
    live, _ = await asyncio.to_thread(adopted_agent_processes)
    assert live, "the orphan is our child now and carries an agent mark"
    await asyncio.sleep(1.5)
    _, zombies = await asyncio.to_thread(adopted_agent_processes)
    assert live <= zombies
    reap(zombies & live)
    _, zombies = await asyncio.to_thread(adopted_agent_processes)
    assert not (zombies & live)
