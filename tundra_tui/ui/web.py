"""`at tui --web`: the control room in a browser, behind a token.

textual-serve runs one `at tui` per browser connection (its web driver speaks to the page
over a websocket) and has no authentication of its own, so every request here goes through
a token gate first: the link printed once carries the token, and the first page it opens
leaves it in a cookie for the page's own requests (scripts, the websocket). Quitting serves
no more pages; the agents keep running, since the daemon owns them.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import re
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server

from tundra_tui.domain.errors import TundraError

DEFAULT_HOST = "127.0.0.1"
"""Only this machine, unless the operator says otherwise."""

DEFAULT_PORT = 8566
"""Not textual-serve's 8000, which every other development server wants too."""

TOKEN_PARAM = "token"
"""The query parameter of the printed link that holds the token."""

STOP_SESSIONS_TIMEOUT = 5.0
"""Seconds the open sessions get to quit their `at tui` on Ctrl-C before the server goes."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


PAGE = "app_index.html"
"""textual-serve's page template."""

WEB_FONT = re.compile(
    r'<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com/[^"]*"\s*/>'
)
LOCAL_FONT = (
    "<style>@font-face { font-family: 'Roboto Mono'; "
    "src: url('{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf'); }</style>"
)


def own_font(page: str) -> str:
    """textual-serve's page with its web font served from here, not fetched from a font
    host: the page asks nothing of any other machine (a tablet on a LAN may have no
    Internet, and nobody else need learn the control room is open)."""
    return WEB_FONT.sub(LOCAL_FONT, page)


class TokenGate:
    """An aiohttp middleware that answers 403 to any request without the token.

    The token comes in the link's query or, after the first page, in a cookie named after
    the port (cookies are shared by every port of a host, so two servers must not share
    one). The websocket must also come from a page of this server (its Origin), so another
    site open in the same browser cannot drive the control room.
    """

    def __init__(self, token: str, port: int) -> None:
        self._token = token.encode()
        self.cookie = f"at-web-{port}"

    def _holds(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        in_link = self._holds(request.query.get(TOKEN_PARAM))
        if not (in_link or self._holds(request.cookies.get(self.cookie))):
            raise web.HTTPForbidden(text="auto-tundra: open the link `at tui --web` printed\n")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="auto-tundra: not from this server's page\n")
        response = await handler(request)
        if in_link and not response.prepared:
            token = self._token.decode()
            response.set_cookie(self.cookie, token, httponly=True, samesite="Strict")
        return response


class ControlRoomServer(Server):
    """textual-serve's server with the gate in front, quiet, and stoppable from our loop."""

    def __init__(self, command: str, gate: TokenGate) -> None:
        super().__init__(command, title="auto-tundra")
        self._gate = gate
        self._sessions: set[asyncio.Task[Any]] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._gate.middleware)
        page = (self.templates_path / PAGE).read_text()
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({PAGE: own_font(page)}))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Say nothing: `serve` prints the one line the operator needs."""

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page, its script and websocket URLs on the address the browser used (a tablet
        knows this machine by another name than it knows itself)."""
        # The parent reads public_url while rendering, with no await in between: no other
        # request can change it under this one.
        self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser session (one `at tui`), remembered so Ctrl-C can end it."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)

    async def end_sessions(self) -> None:
        """Close every browser session: each one tells its `at tui` to quit and waits."""
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.wait(sessions, timeout=STOP_SESSIONS_TIMEOUT)


def link_host(host: str) -> str:
    """The host to print in the link: this machine's name when bound to every address."""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host
    if unspecified:
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(command: str, host: str, port: int) -> int:
    """Serve the control room at host:port (0: any free port) until Ctrl-C or SIGTERM.

    `command` is what each browser connection runs (an `at tui` for the same town).
    """
    token = secrets.token_urlsafe(24)
    runner: web.AppRunner | None = None
    server: ControlRoomServer | None = None
    try:
        # The gate's cookie is named after the port, which port 0 leaves unknown until the
        # socket is bound: bind first, then build the app around the port it got.
        sock = _bind(host, port)
        port = sock.getsockname()[1]
        server = ControlRoomServer(command, TokenGate(token, port))
        runner = web.AppRunner(await server._make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if not is_loopback(host):
            print(
                f"at: serving beyond this machine over plain http on {host}: anyone who can "
                "read the traffic can take the token",
                file=sys.stderr,
            )
        link = f"http://{link_host(host)}:{port}/?{TOKEN_PARAM}={token}"
        print(
            f"at: the control room is at {link} (Ctrl-C stops serving; agents keep running)",
            flush=True,
        )
        await _until_stopped()
    finally:
        if server is not None:
            await server.end_sessions()
        if runner is not None:
            await runner.cleanup()
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or the reason there is none in one line."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise TundraError(
                f"port {port} on {host} is in use (choose another with --port)"
            ) from None
        raise TundraError(f"cannot serve on {host}:{port}: {error.strerror}") from None
    return sock


async def _until_stopped() -> None:
    """Wait for Ctrl-C or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        await stop.wait()
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
