"""One request to the town's daemon over a blocking socket, for a command that asks one
thing and exits.

`DaemonClient` shares one connection between many callers and needs asyncio, whose
import alone costs a quick command (`at agent list`, `at approvals`) a large part of
its time. This speaks the same frames over a plain socket: connect, send one request,
read lines until its reply.

Two ways to ask. `ask` sends a typed request and returns the typed reply (it imports
the protocol, msgspec with it). `ask_json` is for `--json` output, which only copies
the reply's fields: it builds and reads the frames with the json module alone, which
saves the protocol's import (a third of such a command's time). Its frames are the
protocol's own, byte for byte (tests/test_cli_fast.py holds them to that).
"""

from __future__ import annotations

import json
import socket

from tundra_tui.domain.errors import TundraError

TYPE_CHECKING = False  # `typing` is not imported for this (see cli/__init__.py)
if TYPE_CHECKING:
    from typing import Any

    from tundra_tui.daemon.protocol import Request
    from tundra_tui.town import Town

REQUEST_ID = 1
READ_SIZE = 64 * 1024
WIRE_VERSION = 2
"""`protocol.VERSION`, kept here so `ask_json` need not import the protocol."""
WIRE_MAX_LINE = 16 * 1024 * 1024
"""`protocol.MAX_LINE`, likewise."""


class NoAnswer(TundraError):
    """No reply came: no daemon listens, or the connection failed before it answered.

    The request asked nothing to change, so the caller may ask elsewhere (the store).
    """


class WireError(TundraError):
    """A reply that is not what the protocol says (the lean path's ProtocolError)."""


def ask(town: Town, request: Request, timeout: float | None = None) -> Any:
    """Send `request` to the town's daemon and return its typed reply.

    The daemon's refusal is raised as a TundraError with its one line, a garbled
    reply as ProtocolError; NoAnswer when nothing answered (see there).
    """
    from tundra_tui.daemon.protocol import ProtocolError, decode, request_frame

    line = _exchange(str(town.socket_path), request_frame(request, REQUEST_ID), timeout)
    frame = decode(line)
    if frame.error is not None:
        raise TundraError(frame.error)
    if frame.ok is None:
        raise ProtocolError("the daemon's reply had neither ok nor error")
    reply = frame.ok
    if not isinstance(reply, type(request).answer):
        raise ProtocolError(
            f"the daemon answered {type(request).__name__} with {type(reply).__name__}"
        )
    return reply


def ask_json(
    socket_path: str, op: str, fields: dict[str, Any], kind: str, timeout: float | None = None
) -> dict[str, Any]:
    """Send the request tagged `op` with `fields`; return the reply's fields as JSON
    gave them, once it is checked to be of `kind`. Failures as `ask` raises them."""
    line = _exchange(socket_path, json_request_frame(op, fields), timeout)
    try:
        frame = json.loads(line)
    except ValueError as error:
        raise WireError(f"a reply from the daemon is not JSON: {error}") from None
    if not isinstance(frame, dict) or frame.get("v") != WIRE_VERSION:
        raise WireError(f"the daemon does not speak protocol version {WIRE_VERSION}")
    if frame.get("error") is not None:
        raise TundraError(str(frame["error"]))
    reply = frame.get("ok")
    if not isinstance(reply, dict) or reply.get("kind") != kind:
        raise WireError(f"the daemon answered {op} with something other than {kind}")
    return reply


def json_request_frame(op: str, fields: dict[str, Any]) -> bytes:
    """The line `protocol.request_frame` would write for this request, by json alone."""
    frame = {"v": WIRE_VERSION, "id": REQUEST_ID, "req": {"op": op, **fields}}
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def _exchange(path: str, request: bytes, timeout: float | None) -> bytes:
    """Send one request line and return the line that answers REQUEST_ID."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(request)
            return _answer(sock)
    except NoAnswer:
        raise
    except OSError as error:  # no socket, nobody listening, a path too long, a reset
        raise NoAnswer(f"no daemon answered on {path}: {error}") from error


def _answer(sock: socket.socket) -> bytes:
    """Read lines until the one whose id is REQUEST_ID (an error sent without an id means
    the daemon hangs up next: it becomes NoAnswer's reason)."""
    said = ""
    buffer = b""
    while True:
        end = buffer.find(b"\n")
        while end < 0:
            if len(buffer) > WIRE_MAX_LINE:
                raise WireError(f"a message from the daemon exceeds {WIRE_MAX_LINE} bytes")
            chunk = sock.recv(READ_SIZE)
            if not chunk:
                raise NoAnswer(said or "the daemon closed the connection")
            buffer += chunk
            end = buffer.find(b"\n", len(buffer) - len(chunk))
        line, buffer = buffer[: end + 1], buffer[end + 1 :]
        try:
            head = json.loads(line)
        except ValueError as error:
            raise WireError(f"a reply from the daemon is not JSON: {error}") from None
        if not isinstance(head, dict):
            raise WireError("a reply from the daemon is not an object")
        if head.get("id") is None:
            said = str(head.get("error") or said)
            continue
        if head.get("id") == REQUEST_ID:
            return line
