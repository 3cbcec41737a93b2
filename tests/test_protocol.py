"""The protocol module: every message survives the wire, bad lines fail in one line,
and docs/protocol.md is what the module says."""

from __future__ import annotations

import enum
import json
import typing
from pathlib import Path

import msgspec
import pytest

from tundra_tui.daemon import protocol
from tundra_tui.daemon.protocol import (
    EVENTS,
    REQUESTS,
    VERSION,
    AnyReply,
    ProtocolError,
    ScreenEvent,
    SendKeys,
    decode,
    encode_event,
    error_frame,
    reply_frame,
    request_frame,
)
from tundra_tui.daemon.protocol_doc import render

DOC = Path(__file__).parent.parent / "docs" / "protocol.md"


def _sample(cls: type[msgspec.Struct]) -> msgspec.Struct:
    """An instance with every required field filled from its type."""
    values: dict[str, object] = {}
    for info in msgspec.structs.fields(cls):
        if info.required:
            values[info.name] = _value(info.type)
    return cls(**values)


def _value(kind: object) -> object:
    samples: dict[object, object] = {
        str: "x",
        int: 1,
        float: 1.5,
        bool: True,
        bytes: b"\x1b[A\x00",
    }
    if kind in samples:
        return samples[kind]
    origin = getattr(kind, "__origin__", None)
    args = getattr(kind, "__args__", ())
    if origin is typing.Literal:
        return args[0]
    if origin is list:
        return [_value(args[0])]
    if origin is dict:
        return {_value(args[0]): _value(args[1])}
    if origin is tuple:
        return tuple(_value(a) for a in args)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind))
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return _sample(kind)
    if args:  # a union: its first member
        return _value(args[0])
    return None


@pytest.mark.parametrize("tag", sorted(REQUESTS))
def test_every_request_survives_the_wire(tag: str) -> None:
    request = _sample(REQUESTS[tag])
    frame = decode(request_frame(request, 7))  # type: ignore[arg-type]
    assert frame.id == 7 and frame.req == request and frame.v == VERSION


@pytest.mark.parametrize("cls", AnyReply.__args__, ids=lambda c: c.__name__)
def test_every_reply_survives_the_wire(cls: type[msgspec.Struct]) -> None:
    reply = _sample(cls)
    assert decode(reply_frame(3, reply)).ok == reply  # type: ignore[arg-type]


@pytest.mark.parametrize("tag", sorted(EVENTS))
def test_every_event_survives_the_wire(tag: str) -> None:
    event = _sample(EVENTS[tag])
    assert decode(encode_event(event)).ev == event  # type: ignore[arg-type]


def test_to_wire_and_from_wire_are_inverse() -> None:
    event = ScreenEvent(
        agent="a",
        rows={0: [("hi", "red", "default", True, False, False, False)]},
        cursor=(1, 0),
        size=(80, 24),
    )
    wire = event.to_wire()
    assert wire["event"] == "screen"
    assert ScreenEvent.from_wire(json.loads(json.dumps(wire))) == event
    with pytest.raises(ProtocolError):
        ScreenEvent.from_wire({"agent": 3})


def test_keys_travel_as_base64_and_control_bytes_never_raw() -> None:
    line = request_frame(SendKeys(name="a", data=b"\x1b]52;c;x\x07"), None)
    assert b"\x1b" not in line and b"\x07" not in line
    assert line.count(b"\n") == 1 and line.endswith(b"\n")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b'{"v": 1, "id": 1, "op": "ping"}', "version 1 is not supported"),
        (b'{"v": 3, "id": 1, "req": {"op": "ping"}}', "version 3 is not supported"),
        (b'{"v": 2, "id": 1, "req": {"op": "format_disk"}}', "malformed"),
        (b'{"v": 2, "id": "x", "req": {"op": "ping"}}', "malformed"),
        (b"not json", "malformed"),
        (b'{"v": 2, "req": {"op": "send_keys", "name": "a", "data": "%%%"}}', "malformed"),
    ],
)
def test_bad_lines_fail_with_one_clear_line(line: bytes, says: str) -> None:
    with pytest.raises(ProtocolError) as failure:
        decode(line)
    assert says in str(failure.value) and "\n" not in str(failure.value)


def test_an_oversized_line_is_refused_before_parsing() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        decode(b"x" * (protocol.MAX_LINE + 1))


def test_errors_are_one_line_frames() -> None:
    frame = decode(error_frame(4, "no agent 'x'"))
    assert frame.id == 4 and frame.error == "no agent 'x'" and frame.ok is None


def test_every_request_names_the_reply_it_succeeds_with() -> None:
    replies = set(AnyReply.__args__)
    for cls in REQUESTS.values():
        assert cls.answer in replies, cls.__name__


def test_docs_protocol_md_is_written_from_the_module() -> None:
    assert DOC.read_text() == render(), (
        "docs/protocol.md is stale: python -m tundra_tui.daemon.protocol_doc > docs/protocol.md"
    )


def test_dispatch_status_carries_budgets_and_pauses_and_old_frames_still_decode() -> None:
    from tundra_tui.daemon.protocol import BudgetRow, DispatchStatus, PauseRow

    status = DispatchStatus(
        up=True,
        paused=False,
        budgets=[
            BudgetRow(
                scope="day",
                name="today",
                spent_usd=41.2,
                budget_usd=40.0,
                percent=103.0,
                level="stop",
                key="costs.daily_budget_usd",
                text="budget: $41.20 of $40.00 today",
            )
        ],
        pauses=[PauseRow(account="claude", runtime="claude", agent="p2", until="T", parsed=True)],
        override_until="2026-12-01T23:59:59.000000Z",
        override_reason="release day",
    )
    assert decode(reply_frame(4, status)).ok == status
    # A reply from a daemon built before the brake (no budget fields) decodes to the defaults.
    old = msgspec.json.encode(
        {"v": VERSION, "id": 5, "ok": {"kind": "dispatch_status", "up": True, "paused": False}}
    )
    decoded = decode(old).ok
    assert isinstance(decoded, DispatchStatus) and decoded.budgets == [] and decoded.pauses == []
