"""How many agent terminals fit, and which agents they show (plain Python, no Textual)."""

from __future__ import annotations

from enum import StrEnum

MIN_TILE_WIDTH = 70
"""Cells a grid column needs: narrower than this, an agent's prompt line is mostly cut."""
MIN_TILE_HEIGHT = 10
"""Rows a grid row needs: a border, a few lines of output and the prompt."""
MAX_COLUMNS = 3
MAX_ROWS = 2
MAX_TILES = MAX_COLUMNS * MAX_ROWS
"""More tiles than this would each be too small to read on any screen we design for."""
MIN_SPLIT_WIDTH = 50
"""Below twice this, a split stacks its two terminals instead of placing them side by side."""


class Layout(StrEnum):
    """The agent grid's modes, cycled by the split key."""

    SINGLE = "single"
    SPLIT = "split"
    GRID = "grid"

    def next(self) -> Layout:
        """The mode after this one, wrapping around."""
        order = list(Layout)
        return order[(order.index(self) + 1) % len(order)]


def tile_shape(layout: Layout, width: int, height: int, count: int) -> tuple[int, int]:
    """Columns and rows of tiles for `count` agents in a `width` x `height` area.

    Never more tiles than agents (at least one tile, for the empty message), never more
    than fit at the minimum tile size (at least one, however small the area).
    """
    count = max(count, 1)
    if layout is Layout.SINGLE or count == 1:
        return 1, 1
    if layout is Layout.SPLIT:
        if width >= 2 * MIN_SPLIT_WIDTH:
            return 2, 1
        return (1, 2) if height >= 2 * MIN_TILE_HEIGHT else (1, 1)
    columns = max(1, min(MAX_COLUMNS, width // MIN_TILE_WIDTH))
    rows = max(1, min(MAX_ROWS, height // MIN_TILE_HEIGHT))
    if count >= columns * rows:
        return columns, rows
    # Fewer agents than places: as few rows as hold them, then as few columns as that allows.
    rows = min(rows, -(-count // columns))
    return min(columns, -(-count // rows)), rows


def visible_window(count: int, selected: int, tiles: int) -> range:
    """The indices of the agents shown in `tiles` tiles: a full page holding `selected`."""
    if count <= 0:
        return range(0)
    tiles = max(1, min(tiles, count))
    selected = max(0, min(selected, count - 1))
    start = min((selected // tiles) * tiles, count - tiles)
    return range(start, start + tiles)
