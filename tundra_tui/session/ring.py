"""A bounded ring of an agent's raw PTY output.

The host drains every PTY into one of these at read speed, long before (or
instead of) emulating it: pyte is far slower than the PTYs (research P5), so a
pane that falls behind resyncs by replaying the tail of its ring. Readers hold
absolute offsets into the stream; when a slow reader's offset has been
overwritten, `read_from` says so instead of silently handing back later bytes.
"""

from __future__ import annotations

_FIRST_ALLOCATION = 64 * 1024


class RawRing:
    """The last `capacity` bytes of a byte stream, addressed by absolute offset.

    Memory grows with what was written (an idle agent costs little) and never
    exceeds `capacity` once full: writes then wrap around in place, O(len(data)).
    """

    __slots__ = ("_buf", "_capacity", "_total")

    def __init__(self, capacity: int = 4 * 1024 * 1024) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._buf = bytearray(min(capacity, _FIRST_ALLOCATION))
        self._total = 0

    @property
    def capacity(self) -> int:
        """The most bytes held at once."""
        return self._capacity

    @property
    def total(self) -> int:
        """Bytes ever written: the offset the next write starts at."""
        return self._total

    @property
    def start(self) -> int:
        """Offset of the oldest byte still held."""
        return max(0, self._total - self._capacity)

    def __len__(self) -> int:
        return self._total - self.start

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data`, overwriting the oldest bytes once the ring is full."""
        view = memoryview(data).cast("B")
        size = len(view)
        if not size:
            return
        capacity = self._capacity
        start = self._total
        if size > capacity:
            # Only the last `capacity` bytes can survive; skip the rest outright.
            start += size - capacity
            view = view[size - capacity :]
            size = capacity
        end = start + size
        if end > len(self._buf) and len(self._buf) < capacity:
            self._grow(min(capacity, max(end, 2 * len(self._buf))))
        pos = start % capacity
        first = min(size, capacity - pos)
        self._buf[pos : pos + first] = view[:first]
        if first < size:
            self._buf[: size - first] = view[first:]
        self._total = end

    def read_from(self, offset: int, limit: int | None = None) -> tuple[int, bytes]:
        """Return `(start, data)`: the bytes from `offset` on, at most `limit` of them.

        `start` is where `data` begins. It is greater than `offset` when the
        bytes in between were overwritten, so `start - offset` bytes were lost;
        the next read should use `start + len(data)`. An offset past the end
        gives `(total, b"")`.
        """
        start = min(max(offset, self.start), self._total)
        end = self._total if limit is None else min(self._total, start + max(limit, 0))
        return start, self._copy(start, end)

    def tail(self, count: int) -> bytes:
        """The last `count` bytes held (fewer if the ring holds fewer)."""
        return self._copy(max(self.start, self._total - max(count, 0)), self._total)

    def _copy(self, start: int, end: int) -> bytes:
        size = end - start
        if size <= 0:
            return b""
        pos = start % self._capacity
        first = min(size, self._capacity - pos)
        head = bytes(self._buf[pos : pos + first])
        if first == size:
            return head
        return head + bytes(self._buf[: size - first])

    def _grow(self, size: int) -> None:
        # Exact-size allocations: bytearray's own growth would over-allocate by
        # up to an eighth, and the ring promises to stay within its capacity.
        # Until the ring first fills, everything written sits at [0, total).
        grown = bytearray(size)
        grown[: self._total] = self._buf[: self._total]
        self._buf = grown
