"""The pump holds hidden agents' steps for the echo of a key (session/pump.py, `KEY_HOLD`).

The sessions here are plain stand-ins for the pump's `Emulated` protocol (bytes as a
counter, no emulator): what is tested is the pump's order of work, which real PTYs would
only show as a timing ratio.
"""

from __future__ import annotations

import time

import pytest

from tests.at_cli import until
from tundra_tui.session import pump as pump_module
from tundra_tui.session.pump import EmulationPump


class Stand:
    """A session whose output is a byte count; `fed` records each step's time."""

    def __init__(self, *, shown: bool) -> None:
        self.shown = shown
        self.glance = False
        self.arrived = 0
        self.offset = 0
        self.capacity = 1 << 20
        self.last_output = 0.0
        self.emulated_at = 0.0
        self.fed: list[float] = []

    @property
    def pending(self) -> int:
        return self.arrived - self.offset

    def output(self, size: int, pump: EmulationPump) -> None:
        self.arrived += size
        self.last_output = time.monotonic() - 1.0  # paused long ago: due at once
        pump.arrived(self, size)  # type: ignore[arg-type]

    def emulate(self, limit: int | None = None, *, announce: bool = True) -> int:
        size = min(self.pending, limit or self.pending)
        self.offset += size
        self.emulated_at = time.monotonic()
        self.fed.append(self.emulated_at)
        return size

    def batch_done(self) -> None:
        pass


async def test_hidden_steps_wait_for_the_echo_of_a_key_then_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pump_module, "KEY_HOLD", 30.0)  # only the echo ends the hold here
    pump = EmulationPump()
    typed, hidden = Stand(shown=True), Stand(shown=False)
    pump.add(typed)  # type: ignore[arg-type]
    pump.add(hidden)  # type: ignore[arg-type]
    try:
        pump.keyed(typed)  # type: ignore[arg-type]
        hidden.output(4096, pump)
        # The pump has seen the hidden agent's bytes and made it due, and holds it.
        await until(lambda: hidden in pump._targets, 10, step=0.002, what="the agent due")
        await until(lambda: pump._held_until(time.monotonic()) is not None, 10, what="a hold")
        assert hidden.fed == [], "a hidden step ran while the key's echo was on its way"
        typed.output(1, pump)  # the echo
        await until(lambda: typed.fed and hidden.fed, 10, step=0.002, what="both fed")
        assert typed.fed[0] <= hidden.fed[0], "the echo goes first, then the hidden agent"
    finally:
        await pump.close()


async def test_an_agent_that_never_echoes_holds_hidden_steps_no_longer_than_the_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pump_module, "KEY_HOLD", 0.05)
    pump = EmulationPump()
    typed, hidden = Stand(shown=True), Stand(shown=False)
    pump.add(typed)  # type: ignore[arg-type]
    pump.add(hidden)  # type: ignore[arg-type]
    try:
        pump.keyed(typed)  # type: ignore[arg-type]
        hidden.output(4096, pump)
        await until(lambda: hidden.fed, 10, step=0.002, what="the hidden agent fed after the hold")
        assert typed.fed == []
    finally:
        await pump.close()


async def test_keys_to_an_agent_nobody_watches_hold_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pump_module, "KEY_HOLD", 30.0)
    pump = EmulationPump()
    typed, hidden = Stand(shown=False), Stand(shown=False)
    pump.add(typed)  # type: ignore[arg-type]
    pump.add(hidden)  # type: ignore[arg-type]
    try:
        pump.keyed(typed)  # type: ignore[arg-type]
        hidden.output(4096, pump)
        await until(lambda: hidden.fed, 10, step=0.002, what="the hidden agent fed at once")
    finally:
        await pump.close()
