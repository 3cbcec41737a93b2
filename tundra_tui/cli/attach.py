"""`at session attach NAME`: one agent's terminal in yours, keys straight through.

Keys go to the agent byte for byte. What the agent prints is not copied to your
terminal: like tmux, we redraw it from the daemon's emulated screen, so nothing
an agent prints can retitle your terminal, write your clipboard or plant a
link. The size follows your terminal. Ctrl-] detaches; the agent keeps running.
A hangup or SIGTERM detaches too, with the terminal restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import termios
import tty
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable
from tundra_tui.daemon.protocol import (
    ExitedEvent,
    Resize,
    Run,
    Screen,
    ScreenEvent,
    ScreenText,
    SendKeys,
)
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.sanitize import visible

DETACH_KEY = b"\x1d"
"""Ctrl-]: the detach key, as in telnet; never sent to the agent."""

_NAMED = {
    "black": 0, "red": 1, "green": 2, "brown": 3, "yellow": 3, "blue": 4,
    "magenta": 5, "cyan": 6, "white": 7,
}  # fmt: skip


def _color(value: str, background: bool) -> str:
    """SGR parameters for a pyte colour name or hex string ('' for the default)."""
    if not value or value == "default":
        return ""
    base = 40 if background else 30
    name = value.removeprefix("bright")
    if name in _NAMED:
        offset = 60 if value.startswith("bright") else 0
        return str(base + offset + _NAMED[name])
    if len(value) == 6:
        try:
            red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
        except ValueError:
            return ""
        return f"{base + 8};2;{red};{green};{blue}"
    return ""


def render_row(y: int, runs: list[Run]) -> str:
    """One screen row as cursor move, SGR runs and text (already free of controls)."""
    parts = [f"\x1b[{y + 1};1H\x1b[0m"]
    for text, fg, bg, bold, italics, underscore, reverse in runs:
        codes = ["0"]
        if bold:
            codes.append("1")
        if italics:
            codes.append("3")
        if underscore:
            codes.append("4")
        if reverse:
            codes.append("7")
        codes += [c for c in (_color(fg, False), _color(bg, True)) if c]
        parts.append(f"\x1b[{';'.join(codes)}m{visible(text, single_line=True)}")
    parts.append("\x1b[0m\x1b[K")
    return "".join(parts)


async def _draw(client: DaemonClient, name: str, out: Any) -> None:
    """Redraw the agent's screen from the daemon's rows until it exits."""
    async for event in client.subscribe([name], show=[name]):
        if isinstance(event, ScreenEvent) and event.agent == name:
            if event.full:
                out.write("\x1b[2J")
            frame = "".join(render_row(y, runs) for y, runs in event.rows.items() if y >= 0)
            x, y = (max(0, n) for n in event.cursor)
            out.write(f"{frame}\x1b[{y + 1};{x + 1}H")
            out.flush()
        elif isinstance(event, ExitedEvent) and event.agent == name:
            return


async def cmd_attach(ctx: Context) -> int:
    """Attach until Ctrl-], the agent exits, or a hangup or SIGTERM; restore the terminal always.

    A stopped or unknown agent is refused before the terminal is touched, saying which it is
    and what to run. SIGHUP and SIGTERM end the attachment through the same path as Ctrl-]:
    dying of them would leave the operator's terminal raw.
    """
    if not sys.stdin.isatty():
        raise TundraError("at session attach needs a terminal")
    name = ctx.args.name
    if name not in ctx.config().agents():
        raise NotFound(f"no agent {name!r} in tundra.toml (see `at agent list`)")
    town = ctx.town()
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        # No daemon, so nothing runs: say what the store last knew (never start one for this).
        stored = (await (await ctx.store()).agents.get(name)).state
        raise TundraError(_not_running(name, "lost" if stored.is_live else stored.value)) from None
    try:
        screen: ScreenText = await client.call(Screen(name=name))
        if screen.stored or not _is_live(screen.state):
            raise TundraError(_not_running(name, screen.state or "stopped"))
    except BaseException:
        await client.close()
        raise
    outcome = await _attached(name, client)
    with contextlib.suppress(OSError):  # after a hangup there is no terminal to tell
        print(_farewell(name, outcome))
    return 128 + outcome if outcome > 0 else 0


def _is_live(state: str) -> bool:
    try:
        return AgentState(state).is_live
    except ValueError:
        return False


def _not_running(name: str, state: str) -> str:
    return f"agent {name!r} is {state}, not running: start it with `at agent start {name}`"


_DETACHED = 0
_EXITED = -1


def _farewell(name: str, outcome: int) -> str:
    if outcome == _EXITED:
        return f"{name} exited; detached (`at agent start {name}` starts it again)"
    if outcome > 0:
        return f"detached from {name} on {signal.Signals(outcome).name} (it keeps running)"
    return f"detached from {name} (it keeps running)"


async def _attached(name: str, client: DaemonClient) -> int:
    """Run the attachment; 0 when detached, -1 when the agent exited, else the signal number.

    One connection carries it all: the screen's events, keys (sent without waiting for a
    reply, in the order typed; the daemon keeps one agent's input in order) and resizes.
    """
    loop = asyncio.get_running_loop()
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin)
    stop: asyncio.Future[int] = loop.create_future()
    outcome = _DETACHED

    async def resize() -> None:
        size = shutil.get_terminal_size()
        await client.call(Resize(name=name, columns=size.columns, rows=size.lines))

    def end(how: int) -> None:
        if not stop.done():
            stop.set_result(how)

    def on_key() -> None:
        # Sent from the reader callback itself: no queue or task between a key and the socket
        # (each was a loop turn, which may hold a step of emulation in the daemon's client).
        try:
            data = os.read(stdin, 4096)
        except OSError:
            data = b""
        if not data:  # the terminal hung up (SIGHUP usually says so first)
            loop.remove_reader(stdin)
            end(signal.SIGHUP)
            return
        detach = DETACH_KEY in data
        data = data.split(DETACH_KEY, 1)[0]
        if data and not stop.done():
            try:
                client.send(SendKeys(name=name, data=data))
            except TundraError as error:  # the daemon went: said where the attachment ends
                stop.set_exception(error)
                return
        if detach:
            end(_DETACHED)

    out = sys.stdout
    try:
        # Before the terminal goes raw, so no moment exists in which a signal could leave it so.
        for signum in _ENDING_SIGNALS:
            loop.add_signal_handler(signum, end, signum)
        await resize()
        tty.setraw(stdin)
        out.write("\x1b[?1049h")
        loop.add_reader(stdin, on_key)
        loop.add_signal_handler(signal.SIGWINCH, lambda: loop.create_task(resize()))
        drawer = loop.create_task(_draw(client, name, out))
        ends: set[asyncio.Future[Any]] = {drawer, stop}
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        if stop.done():
            outcome = stop.result()
        elif drawer.done():
            outcome = _EXITED
        drawer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drawer
    finally:
        loop.remove_reader(stdin)
        for signum in (signal.SIGWINCH, *_ENDING_SIGNALS):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
        with contextlib.suppress(termios.error, OSError):  # a hung-up terminal cannot be set
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        with contextlib.suppress(OSError):
            out.write("\x1b[0m\x1b[?1049l")
            out.flush()
        await client.close()
    return outcome


_ENDING_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
"""Signals that end an attachment cleanly (terminal restored) instead of killing `at`."""
