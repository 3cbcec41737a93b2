"""Typing a prompt into an agent and knowing it was taken (issue 11, trap 4).

Dispatch must never deliver a bead twice, so a prompt that was taken must never be
reported as not taken: a demo agent at speed 0 starts and finishes its turn between
two polls and keeps `❯ task` on the row it was typed on. Real PTYs, the real demo
agent, the real approval book.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.at_cli import until
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.handover import target_only
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.host import Delivery, SessionHost, _holds, _row_holding, _squeezed
from tundra_tui.store import Store, open_store

TIMEOUT = 15.0
HELPERS = Path(__file__).parent / "helpers"
TURN_END = "✻ Worked for"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db")
    yield opened
    await opened.close()


@pytest.fixture
async def host(store: Store) -> AsyncIterator[SessionHost]:
    running = SessionHost(store, max_ptys=4)
    yield running
    await running.close()


def demo(name: str, workdir: Path, *extra: str, columns: int = 100) -> AgentConfig:
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(
        command=default_command(Runtime.DEMO),
        args=["--speed", "0", "--approval-rate", "0", "--seed", "1", *extra],
        env={"HOME": str(workdir)},
        cwd=workdir,
        base_env=os.environ,
    )
    return AgentConfig(name, adapter, launch, columns=columns, rows=30)


async def started(host: SessionHost, config: AgentConfig) -> None:
    await host.start(config)
    session = host.session(config.name)
    ready = await session.wait_for(lambda s: s is AgentState.IDLE, TIMEOUT)
    assert ready, session.emulator.text()


def turns_shown(host: SessionHost, name: str) -> int:
    emulator = host.session(name).emulator
    history = emulator.scrollback_text(0, emulator.scrollback_size)
    return sum(line.count(TURN_END) for line in [*history, *emulator.text().splitlines()])


async def test_a_prompt_a_speed_0_agent_takes_at_once_is_delivered_first_time(
    host: SessionHost, tmp_path: Path
) -> None:
    await started(host, demo("fast", tmp_path))
    delivery = await host.send_text("fast", "write the changelog entry")
    assert delivery.delivered, delivery
    assert delivery.attempts == 1
    await until(lambda: turns_shown(host, "fast") == 1)


async def test_a_600_character_prompt_wrapping_the_probe_is_taken_once(
    host: SessionHost, tmp_path: Path
) -> None:
    # 100 columns: the prompt wraps over seven rows, and the end of the text (the probe)
    # straddles a row boundary: it used to be matched on one row only, and missed.
    words = " ".join(f"w{n:03d}" for n in range(120))
    text = (words + " end-of-the-task")[:600]
    await started(host, demo("wide", tmp_path))
    session = host.session("wide")
    typed = asyncio.get_running_loop().create_task(host.send_text("wide", text))
    await until(lambda: text[-60:-40] in session.emulator.text().replace("\n", ""))
    assert _row_holding(session, _squeezed(text[-40:])) is not None  # found across the wrap
    delivery = await typed
    assert delivery.delivered and delivery.attempts == 1, delivery
    await until(lambda: turns_shown(host, "wide") == 1)


def test_the_probe_is_found_across_a_wrapped_row() -> None:
    from tundra_tui.session.emulator import Emulator

    emulator = Emulator(20, 5)
    emulator.feed(("│ > " + "abcdefghij klmnopqrstuvwxyz0123").encode())
    probe = _squeezed("ij klmnopqrstuvw")
    rows = [emulator.line_text(y) for y in range(5)]
    assert not any(probe in _squeezed(row) for row in rows)  # on no single row
    assert _holds(emulator, 0, probe)
    assert not _holds(emulator, 1, probe)


def instant(name: str, workdir: Path, mode: str) -> AgentConfig:
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(
        command=f"{sys.executable} {HELPERS / 'instant_agent.py'} {mode} {workdir / 'enters'}",
        args=[],
        env={},
        cwd=workdir,
        base_env=os.environ,
    )
    return AgentConfig(name, adapter, launch, columns=100, rows=30)


async def test_a_turn_that_ends_unseen_is_taken_when_the_agent_printed_below(
    host: SessionHost, tmp_path: Path
) -> None:
    # The typed line stays where it was and no state but idle ever shows: only the
    # cursor, lines below the text, says the agent took it.
    await started(host, instant("quick", tmp_path, "instant"))
    delivery = await host.send_text("quick", "the bead is yours")
    assert delivery == Delivery(True, 1, "the agent printed below the typed text")
    assert (tmp_path / "enters").read_text() == "enter 'the bead is yours'\n"


async def test_a_turn_its_hooks_started_and_ended_between_two_looks_is_taken(
    host: SessionHost, tmp_path: Path
) -> None:
    # The agent's screen never changes after the Enter; its hooks say a turn started and
    # ended, both before the next look at the state.
    await started(host, instant("hooked", tmp_path, "deaf"))
    enters = tmp_path / "enters"

    async def hooks_on_enter() -> None:
        await until(lambda: enters.exists() and enters.read_text())
        host.hook_state("hooked", "UserPromptSubmit", {"prompt": "the bead is yours"})
        host.hook_state("hooked", "Stop", {})

    hooks = asyncio.get_running_loop().create_task(hooks_on_enter())
    delivery = await host.send_text("hooked", "the bead is yours")
    await hooks
    assert delivery == Delivery(True, 1, "the agent started a turn")
    assert host.session("hooked").state is AgentState.IDLE


async def test_an_ignored_enter_is_still_not_taken(host: SessionHost, tmp_path: Path) -> None:
    await started(host, instant("deaf", tmp_path, "deaf"))
    delivery = await host.send_text("deaf", "nobody listens", retries=1)
    assert not delivery.delivered and delivery.attempts == 2
    assert (tmp_path / "enters").read_text().count("enter") == 2


async def test_controls_are_stripped_not_typed(host: SessionHost, tmp_path: Path) -> None:
    await started(host, demo("ctl", tmp_path))
    delivery = await host.send_text("ctl", "say\x1b[31m hi\x03 there\x9b2J\nsecond\tline")
    assert delivery.delivered, delivery
    assert host.session("ctl").last_input == "say[31m hi there2J second line"
    await until(lambda: turns_shown(host, "ctl") == 1)
    with pytest.raises(TundraError, match="nothing to type"):
        await host.send_text("ctl", "\x1b\x03\n")


async def test_inputs_to_one_agent_never_interleave(host: SessionHost, tmp_path: Path) -> None:
    await started(host, demo("one", tmp_path))
    first, second = await asyncio.gather(
        host.send_text("one", "alpha " * 30 + "first"),
        host.send_text("one", "beta " * 30 + "second"),
    )
    assert first.delivered and second.delivered, (first, second)
    await until(lambda: turns_shown(host, "one") == 2)
    screen = "\n".join(
        host.session("one").emulator.scrollback_text(0, 1000)
        + host.session("one").emulator.text().splitlines()
    )
    assert "alpha beta" not in screen and "first beta" not in screen
    assert "beta alpha" not in screen and "second alpha" not in screen


async def test_the_input_lock_is_held_around_checks_and_typing(
    host: SessionHost, tmp_path: Path
) -> None:
    await started(host, demo("held", tmp_path))
    order: list[str] = []
    held, trying = asyncio.Event(), asyncio.Event()

    async def reserved() -> None:
        async with host.input_lock("held"):
            order.append("checked")
            held.set()
            await trying.wait()  # another sender tries to type now, and must wait
            await asyncio.sleep(0)  # one turn of the loop: it reaches the lock
            delivery = await host.send_text("held", "mine first")  # re-entrant
            order.append(f"mine {delivery.delivered}")

    async def other() -> None:
        await held.wait()
        trying.set()
        delivery = await host.send_text("held", "theirs second")
        order.append(f"theirs {delivery.delivered}")

    await asyncio.gather(reserved(), other())
    assert order == ["checked", "mine True", "theirs True"]


async def test_nothing_is_typed_while_the_agent_waits_on_an_approval(
    store: Store, host: SessionHost, tmp_path: Path
) -> None:
    writer = StoreWriter()
    writer.start()
    book = ApprovalBook(host, store, writer)
    await book.load()
    try:
        await started(host, demo("asker", tmp_path))
        await host.send_text("asker", "RUN: touch asked.txt")
        await until(lambda: book.pending_for("asker") is not None)
        session = host.session("asker")
        await until(lambda: session.state is AgentState.AWAITING_APPROVAL)
        before = session.emulator.text()
        with pytest.raises(TundraError, match="approval"):
            await host.send_text(
                "asker", "typed over the prompt", gate=target_only(host, book, "asker")
            )
        assert "typed over" not in session.emulator.text()
        assert session.emulator.text() == before
        assert not (tmp_path / "asked.txt").exists()
    finally:
        await host.close()
        await writer.close(timeout=5.0)
