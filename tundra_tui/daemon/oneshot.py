"""One request to the town's daemon over a blocking socket, for a command that asks one
thing and exits.

`DaemonClient` shares one connection between many callers and needs asyncio, whose
import alone costs a quick command (`at agent list`, `at approvals`) a large part of
its time. This speaks the same typed frames (protocol.request_frame and decode) over
a plain socket: connect, send one request, read lines until its reply.
"""

from __future__ import annotations

import socket
from typing import Any

from tundra_tui.daemon.protocol import MAX_LINE, ProtocolError, Request, decode, request_frame
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town

REQUEST_ID = 1
READ_SIZE = 64 * 1024


class NoAnswer(TundraError):
    """No reply came: no daemon listens, or the connection failed before it answered.

    The request asked nothing to change, so the caller may ask elsewhere (the store).
    """


def ask(town: Town, request: Request, timeout: float | None = None) -> Any:
    """Send `request` to the town's daemon and return its typed reply.

    The daemon's refusal is raised as a TundraError with its one line, a garbled
    reply as ProtocolError; NoAnswer when nothing answered (see there).
    """
    path = str(town.socket_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(request_frame(request, REQUEST_ID))
            reply = _reply(sock)
    except NoAnswer:
        raise
    except OSError as error:  # no socket, nobody listening, a path too long, a reset
        raise NoAnswer(f"no daemon answered on {path}: {error}") from error
    if not isinstance(reply, type(request).answer):
        raise ProtocolError(
            f"the daemon answered {type(request).__name__} with {type(reply).__name__}"
        )
    return reply


def _reply(sock: socket.socket) -> Any:
    """Read frames until the one answering REQUEST_ID; its `ok`, or its error raised."""
    said = ""
    """An error sent without an id (the daemon hangs up next): why there was no answer."""
    buffer = b""
    while True:
        end = buffer.find(b"\n")
        while end < 0:
            if len(buffer) > MAX_LINE:
                raise ProtocolError(f"a message from the daemon exceeds {MAX_LINE} bytes")
            chunk = sock.recv(READ_SIZE)
            if not chunk:
                raise NoAnswer(said or "the daemon closed the connection")
            buffer += chunk
            end = buffer.find(b"\n", len(buffer) - len(chunk))
        line, buffer = buffer[: end + 1], buffer[end + 1 :]
        frame = decode(line)
        if frame.id is None:
            said = frame.error or said
            continue
        if frame.id != REQUEST_ID:
            continue
        if frame.error is not None:
            raise TundraError(frame.error)
        if frame.ok is None:
            raise ProtocolError("the daemon's reply had neither ok nor error")
        return frame.ok
