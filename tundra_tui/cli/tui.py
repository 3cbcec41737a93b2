"""`at tui`: open the control room on a town, or on the built-in demo town."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.domain.errors import TundraError


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `at tui`."""
    p = commands.add_parser(
        "tui",
        help="open the control room (starts the town's daemon if needed)",
        description="Open the control room. Quitting leaves every agent running.",
    )
    common(p)
    p.add_argument(
        "--demo",
        action="store_true",
        help="open the built-in demo town (four demo agents; no agent CLI or account needed)",
    )
    p.add_argument(
        "--no-watch", action="store_true", help="do not follow the store for changes made by others"
    )
    web = p.add_argument_group("in a browser")
    web.add_argument(
        "--web",
        action="store_true",
        help="serve the control room to a browser instead (a link with a token is printed once)",
    )
    web.add_argument("--port", type=_port, default=None, help="with --web: the port (default 8566)")
    web.add_argument(
        "--host", default=None, help="with --web: the address to listen on (default 127.0.0.1)"
    )
    p.set_defaults(handler=cmd_tui)


def _port(text: str) -> int:
    """A TCP port for --port (0: any free one)."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 to 65535)")
    return port


SCREEN_FPS = 120
"""Screen updates a second at most (Textual's default is 60): a dirty widget waits for the
next update slot, up to 1/60 s, and the grabbed tile's echo is the one thing here where that
shows. Tiles keep their own frame rate (`ui.max_fps`), so this costs little; an operator's
TEXTUAL_FPS wins."""


async def cmd_tui(ctx: Context) -> int:
    """Run the Textual app until the operator quits (or serve it, with --web)."""
    if getattr(ctx.args, "web", False):
        return await _serve_web(ctx)
    if getattr(ctx.args, "port", None) is not None or getattr(ctx.args, "host", None) is not None:
        raise TundraError("--port and --host are for --web (at tui --web --port N)")
    # Under textual-serve (--web) the app's terminal is a page: its driver says so.
    served = "TEXTUAL_DRIVER" in os.environ
    if not served and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise TundraError("at tui needs a terminal (run it in a terminal, over ssh -t, or in tmux)")
    from tundra_tui.ui import collector

    collector.hold()  # until the first frame is up (ui/collector.py)
    # Textual reads it once, at import: what it sets is how long a repaint (the echo of a
    # key in a grabbed tile) may wait for the screen's next update slot.
    os.environ.setdefault("TEXTUAL_FPS", str(SCREEN_FPS))
    from tundra_tui.ui.app import TundraApp
    from tundra_tui.ui.link import DaemonLink
    from tundra_tui.ui.services import Services

    # shutil.get_terminal_size() prefers COLUMNS/LINES over the terminal itself, so an exported
    # COLUMNS would pin the layout to a stale size and make it deaf to resizes.
    # (A served app is the exception: textual-serve gives the page's size in COLUMNS.)
    if not served:
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)
    demo = bool(ctx.args.demo)
    if demo:
        from tundra_tui.demo_town import demo_town_root, ensure_demo_town

        ctx.use_town(await ensure_demo_town(demo_town_root()))
    town = ctx.town()
    store = await ctx.store()
    services = Services(
        town=town,
        store=store,
        link=DaemonLink(town),
        actor=ctx.actor,
        _config=ctx.config(),  # read once: opening the store read it
    )
    app = TundraApp(services, demo=demo, watch_files=not ctx.args.no_watch, start_agents=demo)
    try:
        await app.run_async()
    finally:
        await services.link.close()
    if app.return_code:
        return app.return_code
    if served:
        return 0  # stdout is the page's stream: nobody reads a farewell there
    print(f"at: left the control room; agents keep running (`at --town {town.root} status`)")
    return 0


async def _serve_web(ctx: Context) -> int:
    """`at tui --web`: each browser connection runs this same `at tui`, without --web."""
    from tundra_tui.ui.web import DEFAULT_HOST, DEFAULT_PORT, serve

    demo = bool(ctx.args.demo)
    if demo:  # made once here, not by the first few browser sessions at the same time
        from tundra_tui.demo_town import demo_town_root, ensure_demo_town

        ctx.use_town(await ensure_demo_town(demo_town_root()))
    town = ctx.town()  # no town, no server: said now rather than in every page
    command = [sys.executable, "-m", "tundra_tui", "--town", str(town.root), "tui"]
    command += [flag for flag, on in (("--demo", demo), ("--no-watch", ctx.args.no_watch)) if on]
    if getattr(ctx.args, "debug", False):
        command.append("--debug")
    port = DEFAULT_PORT if ctx.args.port is None else ctx.args.port
    return await serve(shlex.join(command), ctx.args.host or DEFAULT_HOST, port)
