"""Review findings on the session layer (issue 3): each pins a bug that was found and fixed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.session.adapters import Dialog, InputTiming, adapter_for, default_command
from tundra_tui.session.adapters.base import DOWN, ENTER, Adapter
from tundra_tui.session.agent import AgentConfig, AgentSession
from tundra_tui.session.detect import Detected, Detection, Evidence
from tundra_tui.session.events import HostEvent
from tundra_tui.session.host import SessionHost
from tundra_tui.session.pty import AgentPty, ExitStatus
from tundra_tui.store import Store, open_store

TIMEOUT = 15.0

# A stand-in agent: paints SCREEN, then logs every byte it receives to LOG.
# Optional behaviours: a dialog whose marker Down moves and Enter dismisses;
# an input line echoed after a delay, with a footer below it, that ignores Enter.
_FAKE = textwrap.dedent(
    r"""
    import os, select, sys, termios, time, tty
    log_path, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    tty.setraw(0)
    out = lambda s: (os.write(1, s.encode()), None)
    log = open(log_path, "ab", buffering=0)
    buffer = ""
    echo_at = None
    def paint_dialog(choice):
        marks = ["❯" if choice == i else " " for i in range(2)]
        out("\x1b[H\x1b[2J Pick one to go on\r\n"
            f" {marks[0]} No, exit\r\n {marks[1]} Yes, go on\r\n")
    if mode == "approval":
        out(" Bash command\r\n\r\n"
            '   echo "Make auto mode your default permission mode?"\r\n'
            "   Run a harmless echo\r\n\r\n"
            " Do you want to proceed?\r\n"
            " ❯ 1. Yes\r\n"
            "   2. Yes, and don't ask again for echo commands in this project\r\n"
            "   3. No, and tell Claude what to do differently (esc)\r\n")
    elif mode == "dialog":
        paint_dialog(0)
    elif mode == "input":
        out("\x1b[H\x1b[2J\x1b[3;1H> \x1b[4;1H? for shortcuts\x1b[3;3H")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([0], [], [], 0.05)
        if echo_at is not None and time.monotonic() >= echo_at:
            out("\x1b[3;1H> " + buffer + "\x1b[K")
            echo_at = None
        if not ready:
            continue
        data = os.read(0, 1024)
        if not data:
            break
        log.write(data)
        if mode == "dialog" and data.startswith(b"\x1b[B"):
            paint_dialog(1)
        elif mode == "dialog" and data.startswith(b"\r"):
            mode = "after"
            out("\x1b[H\x1b[2Jready> ")
        elif mode == "input":
            typed = data.decode(errors="replace").replace("\r", "")
            if typed:
                buffer += typed
                echo_at = time.monotonic() + 1.0  # the TUI renders input late
    """
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db")
    yield opened
    await opened.close()


def _fake(tmp_path: Path, adapter: Adapter, mode: str, seconds: float, name: str) -> AgentConfig:
    script = tmp_path / "fake_agent.py"
    script.write_text(_FAKE)
    launch = adapter.launch(
        command=f"{sys.executable} {script} {tmp_path / (name + '.log')} {mode} {seconds}",
        args=[],
        env={},
        cwd=tmp_path,
        base_env=os.environ,
    )
    return AgentConfig(name, adapter, launch, columns=100, rows=30)


def _demo(name: str, workdir: Path) -> AgentConfig:
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(
        command=default_command(Runtime.DEMO),
        args=["--speed", "0.2", "--approval-rate", "0", "--seed", "1"],
        env={"HOME": str(workdir)},
        cwd=workdir,
        base_env=os.environ,
    )
    return AgentConfig(name, adapter, launch, columns=100, rows=30)


async def _until(predicate: object, timeout: float = TIMEOUT) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# ---- approvals: agent-printed text must never send keys into an approval prompt ---------


async def test_command_text_in_an_approval_prompt_sends_no_dialog_keys(tmp_path: Path) -> None:
    config = _fake(tmp_path, adapter_for(Runtime.CLAUDE), "approval", 3.0, "claude1")
    session = AgentSession(config, lambda event: None)
    session.start()
    try:
        assert await session.wait_for(lambda s: s is AgentState.AWAITING_APPROVAL, TIMEOUT)
        await asyncio.sleep(2.0)
        received = (tmp_path / "claude1.log").read_bytes()
        assert received == b"", f"keys sent to an approval prompt: {received!r}"
    finally:
        await session.stop(grace=1)


async def test_a_dialog_is_answered_once(tmp_path: Path) -> None:
    adapter = dataclasses.replace(
        adapter_for(Runtime.CUSTOM, {}),
        dialogs=(Dialog("fake.pick", re.compile(r"Pick one to go on"), (DOWN, ENTER)),),
        timing=InputTiming(settle=0.3),
    )
    session = AgentSession(_fake(tmp_path, adapter, "dialog", 4.0, "dlg"), lambda event: None)
    session.start()
    try:
        await _until(lambda: "ready>" in session.emulator.text())
        await asyncio.sleep(1.5)
        assert (tmp_path / "dlg.log").read_bytes() == DOWN + ENTER
    finally:
        await session.stop(grace=1)


# ---- input delivery ----------------------------------------------------------------------


async def test_ignored_enter_is_not_reported_delivered(store: Store, tmp_path: Path) -> None:
    host = SessionHost(store, max_ptys=2)
    adapter = dataclasses.replace(adapter_for(Runtime.CUSTOM, {}), timing=InputTiming(settle=0.2))
    try:
        await host.start(_fake(tmp_path, adapter, "input", 30.0, "typist"))
        session = host.session("typist")
        await _until(lambda: "? for shortcuts" in session.emulator.text())
        delivery = await host.send_text("typist", "hello world", retries=0)
        assert b"\r" in (tmp_path / "typist.log").read_bytes()
        assert "> hello world" in session.emulator.text(), "the text is still in the input box"
        assert not delivery.delivered, delivery
    finally:
        await host.close()


# ---- waiting on states --------------------------------------------------------------------


def _structured(state: Detected) -> Detection:
    return Detection(state, Evidence("hook", f"test.{state.value}", state.value))


async def test_wait_for_sees_a_state_that_was_published_and_replaced(tmp_path: Path) -> None:
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(command="true", args=[], env={}, cwd=tmp_path, base_env={})
    session = AgentSession(AgentConfig("w", adapter, launch), lambda event: None)
    session.observe_structured(_structured(Detected.AWAITING_APPROVAL))
    waiter = asyncio.get_running_loop().create_task(
        session.wait_for(lambda s: s is not AgentState.AWAITING_APPROVAL, 1.0)
    )
    await asyncio.sleep(0.05)
    session.observe_structured(_structured(Detected.WORKING))
    session.observe_structured(_structured(Detected.AWAITING_APPROVAL))
    assert await waiter


# ---- host lifecycle -----------------------------------------------------------------------


async def test_close_expires_pending_approvals(store: Store, tmp_path: Path) -> None:
    host = SessionHost(store, max_ptys=2)
    writer = StoreWriter()
    writer.start()
    book = ApprovalBook(host, store, writer)
    await book.load()
    try:
        await host.start(_demo("ann", tmp_path))
        session = host.session("ann")
        assert await session.wait_for(lambda s: s is AgentState.IDLE, TIMEOUT)
        await host.send_text("ann", "RUN: touch x.txt")
        await _until(lambda: book.pending_for("ann") is not None)
    finally:
        await host.close()
    assert book.pending() == []
    assert await writer.close(timeout=5.0) == 0
    assert await store.approvals.pending() == []


async def test_stopping_a_queued_agent_updates_its_session(store: Store, tmp_path: Path) -> None:
    host = SessionHost(store, max_ptys=1)
    (tmp_path / "q1").mkdir()
    (tmp_path / "q2").mkdir()
    try:
        await host.start(_demo("q1", tmp_path / "q1"))
        assert await host.start(_demo("q2", tmp_path / "q2")) is AgentState.QUEUED
        await host.stop("q2")
        assert host.queued() == []
        assert host.session("q2").state is AgentState.STOPPED
    finally:
        await host.close()


async def test_failed_start_is_not_left_queued(store: Store, tmp_path: Path) -> None:
    host = SessionHost(store)
    events: list[HostEvent] = []
    host.subscribe(events.append)
    adapter = adapter_for(Runtime.CUSTOM, {})
    launch = adapter.launch(
        command="definitely-not-an-agent", args=[], env={}, cwd=tmp_path, base_env=os.environ
    )
    try:
        with pytest.raises(TundraError):
            await host.start(AgentConfig("eve", adapter, launch))
        try:
            state = host.session("eve").state
        except NotFound:
            return
        assert state is AgentState.FAILED
    finally:
        await host.close()


# ---- PTY: stopping and exit statuses ------------------------------------------------------


async def test_reap_orphans_leaves_other_children_alone(tmp_path: Path) -> None:
    child = subprocess.Popen(["sh", "-c", "exit 3"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 10
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    agent = AgentPty.spawn(["sh", "-c", "sleep 30"], cwd=tmp_path, env=dict(os.environ))
    agent.attach(asyncio.get_running_loop(), lambda _: None, lambda _: None)
    await agent.stop(grace=0.5)
    assert child.wait(timeout=5) == 3


async def test_stop_is_bounded_and_kills_a_setsid_child_with_a_clean_env(tmp_path: Path) -> None:
    pidfile = tmp_path / "escaped.pid"
    script = f"setsid env -i sh -c 'echo $$ > {pidfile}; exec sleep 60' & echo started; sleep 60"
    loop = asyncio.get_running_loop()
    output = bytearray()
    exited: asyncio.Future[ExitStatus] = loop.create_future()
    agent = AgentPty.spawn(["bash", "-c", script], cwd=tmp_path, env=dict(os.environ))
    agent.attach(loop, output.extend, exited.set_result)
    escaped = 0
    try:
        await _until(lambda: b"started" in output and pidfile.exists() and pidfile.read_text())
        escaped = int(pidfile.read_text())
        await asyncio.wait_for(agent.stop(grace=0.5), 8)
        assert not Path(f"/proc/{escaped}").exists() or _zombie(escaped)
    finally:
        if escaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(escaped, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(escaped, 0)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_exit_is_reported_when_the_child_closes_its_terminal_first(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[ExitStatus] = loop.create_future()
    agent = AgentPty.spawn(
        ["bash", "-c", "trap '' HUP INT; exec </dev/null >/dev/null 2>&1; sleep 7"],
        cwd=tmp_path,
        env=dict(os.environ),
    )
    agent.attach(loop, lambda data: None, exited.set_result)
    try:
        status = await asyncio.wait_for(asyncio.shield(exited), 12)
        assert status == ExitStatus(0, None)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(agent.pid, os.WNOHANG)
