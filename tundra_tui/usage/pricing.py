"""Dollars per million tokens by model family: the one price table for costs and the demo agent.

Standard library only, because the demo agent (which must run without our dependencies) imports
it to write the same `costUSD` figures the usage readers compute.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    def cost(
        self, input_tokens: int, output_tokens: int, cache_write_tokens: int, cache_read_tokens: int
    ) -> float:
        """Dollars for one call's tokens."""
        return (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_write_tokens * self.cache_write
            + cache_read_tokens * self.cache_read
        ) / 1_000_000


PRICES: dict[str, Price] = {
    "opus": Price(5.0, 25.0, 6.25, 0.50),
    "sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "haiku": Price(1.0, 5.0, 1.25, 0.10),
}
"""Priced by family, so `demo-sonnet` and `claude-sonnet-4-5` cost the same."""


def price_for(model: str) -> tuple[Price, bool]:
    """The price of `model` and whether it is known; unknown models are priced as sonnet."""
    for family, price in PRICES.items():
        if family in model.lower():
            return price, True
    return PRICES["sonnet"], False
