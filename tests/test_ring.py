"""The raw output ring: bounded memory, absolute offsets, and honest reports of lost bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tundra_tui.session.ring import RawRing


def test_reads_back_what_was_written() -> None:
    ring = RawRing(16)
    ring.write(b"hello ")
    ring.write(b"world")
    assert ring.total == 11
    assert len(ring) == 11
    assert ring.read_from(0) == (0, b"hello world")
    assert ring.read_from(6) == (6, b"world")
    assert ring.tail(3) == b"rld"


def test_a_slow_reader_learns_how_much_it_lost() -> None:
    ring = RawRing(8)
    ring.write(b"0123456789")
    start, data = ring.read_from(0)
    assert (start, data) == (2, b"23456789")
    assert start - 0 == 2  # Two bytes were overwritten before the reader got to them.
    ring.write(b"ab")
    assert ring.read_from(start + len(data)) == (10, b"ab")


def test_wraparound_keeps_order() -> None:
    ring = RawRing(5)
    for piece in (b"abc", b"def", b"gh"):
        ring.write(piece)
    assert ring.start == 3
    assert ring.read_from(0) == (3, b"defgh")
    assert ring.tail(10) == b"defgh"


def test_limit_and_offsets_past_the_end() -> None:
    ring = RawRing(10)
    ring.write(b"abcdef")
    assert ring.read_from(1, limit=2) == (1, b"bc")
    assert ring.read_from(99) == (6, b"")
    assert ring.read_from(-5) == (0, b"abcdef")
    assert ring.tail(0) == b""


def test_a_write_bigger_than_the_ring_keeps_its_tail() -> None:
    ring = RawRing(4)
    ring.write(b"xy")
    ring.write(b"0123456789")
    assert ring.total == 12
    assert ring.read_from(0) == (8, b"6789")


def test_memory_stays_within_capacity() -> None:
    capacity = 256 * 1024
    ring = RawRing(capacity)
    assert len(ring._buf) <= 64 * 1024  # An idle agent does not pay for a full ring.
    for _ in range(100):
        ring.write(b"z" * 10_000)
    assert len(ring._buf) == capacity
    assert len(ring) == capacity


def test_accepts_memoryview_and_rejects_a_zero_capacity() -> None:
    ring = RawRing(8)
    ring.write(memoryview(b"abcdef")[2:])
    assert ring.tail(8) == b"cdef"
    with pytest.raises(ValueError):
        RawRing(0)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 64),
    writes=st.lists(st.binary(max_size=100), max_size=30),
    offset=st.integers(-5, 3000),
)
def test_matches_a_plain_bytes_model(capacity: int, writes: list[bytes], offset: int) -> None:
    ring = RawRing(capacity)
    model = b""
    for data in writes:
        ring.write(data)
        model += data
    held_from = max(0, len(model) - capacity)
    start, data = ring.read_from(offset)
    assert start == min(max(offset, held_from), len(model))
    assert data == model[start:]
    assert ring.tail(capacity) == model[held_from:]
