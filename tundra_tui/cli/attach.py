"""`at session attach NAME`: one agent's terminal in yours, keys straight through.

Keys go to the agent byte for byte. What the agent prints is not copied to your
terminal: like tmux, we redraw it from the daemon's emulated screen, so nothing
an agent prints can retitle your terminal, write your clipboard or plant a
link. The size follows your terminal. Ctrl-] detaches; the agent keeps running.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import sys
import termios
import tty
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.daemon.client import DaemonClient, connect_or_start
from tundra_tui.domain.errors import TundraError
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


def render_row(y: int, runs: list[list[Any]]) -> str:
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
        codes += [c for c in (_color(str(fg), False), _color(str(bg), True)) if c]
        parts.append(f"\x1b[{';'.join(codes)}m{visible(str(text), single_line=True)}")
    parts.append("\x1b[0m\x1b[K")
    return "".join(parts)


async def _draw(client: DaemonClient, name: str, out: Any) -> None:
    async for message in client.subscribe([name], screens=True):
        if message.get("agent") != name:
            continue
        kind = message.get("event")
        if kind == "screen":
            rows = message.get("rows", {})
            if message.get("full"):
                out.write("\x1b[2J")
            frame = "".join(render_row(int(y), runs) for y, runs in rows.items())
            x, y = message.get("cursor", [0, 0])
            out.write(f"{frame}\x1b[{int(y) + 1};{int(x) + 1}H")
            out.flush()
        elif kind == "exited":
            return


async def cmd_attach(ctx: Context) -> int:
    """Attach until Ctrl-] (or the agent exits); restore the terminal either way."""
    if not sys.stdin.isatty():
        raise TundraError("at session attach needs a terminal")
    name = ctx.args.name
    town = ctx.town()
    requests = await connect_or_start(town)
    stream = await DaemonClient.connect(town)
    loop = asyncio.get_running_loop()
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin)
    keys: asyncio.Queue[bytes] = asyncio.Queue()

    async def resize() -> None:
        size = shutil.get_terminal_size()
        await requests.request("resize", name=name, columns=size.columns, rows=size.lines)

    def on_key() -> None:
        keys.put_nowait(os.read(stdin, 4096))

    out = sys.stdout
    try:
        await requests.request("screen", name=name)  # fails fast on an unknown agent
        await resize()
        tty.setraw(stdin)
        out.write("\x1b[?1049h")
        loop.add_reader(stdin, on_key)
        loop.add_signal_handler(signal.SIGWINCH, lambda: loop.create_task(resize()))
        drawer = loop.create_task(_draw(stream, name, out))
        while not drawer.done():
            getter = loop.create_task(keys.get())
            done, _ = await asyncio.wait({getter, drawer}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            data = getter.result()
            if DETACH_KEY in data:
                data = data.split(DETACH_KEY, 1)[0]
                if data:
                    await requests.request("send_keys", name=name, data=_b64(data))
                break
            await requests.request("send_keys", name=name, data=_b64(data))
        drawer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drawer
    finally:
        loop.remove_reader(stdin)
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGWINCH)
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        out.write("\x1b[0m\x1b[?1049l")
        out.flush()
        await stream.close()
        await requests.close()
    print(f"detached from {name} (it keeps running)")
    return 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
