"""Offline prices: the demo's own models, and the family table the demo agent logs its
"CLI" cost with.

Standard library only, because the demo agent (which must run without our dependencies)
imports it. Real models are priced from genai-prices (`usage.price_table`) through the
price book; a model nobody knows is unpriced, never priced as another model.
"""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.domain.costs import Price as Price_
from tundra_tui.domain.costs import Rate

__all__ = ["DEMO_PRICES", "PRICES", "ModelPrice", "Price", "Rate", "demo_price", "price_for"]


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens, by family: what the demo agent writes as its own
    (the "CLI's") cost. Our costs use `domain.costs.Price` (also exported here as
    `ModelPrice`)."""

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
    """The demo agent's own figure for `model` and whether it knows it (an unknown model is
    figured as sonnet, as a CLI with a stale table would). Our pricing never calls this."""
    for family, price in PRICES.items():
        if family in model.lower():
            return price, True
    return PRICES["sonnet"], False


ModelPrice = Price_
"""The price type our costs use (`domain.costs.Price`), with tiers and its source."""

DEMO_SOURCE = "auto-tundra demo table"


def _demo(model: str, family: Price) -> Price_:
    return Price_(
        source=DEMO_SOURCE,
        model_id=model,
        input=Rate(family.input),
        output=Rate(family.output),
        cache_read=Rate(family.cache_read),
        cache_write=Rate(family.cache_write),
    )


DEMO_PRICES: dict[str, Price_] = {
    f"demo-{family}": _demo(f"demo-{family}", price) for family, price in PRICES.items()
}
"""The demo's models at today's family prices, so the demo shows dollars offline."""


def demo_price(model: str) -> Price_ | None:
    """The demo table's price of `model` (case-insensitive), or None: unpriced."""
    return DEMO_PRICES.get(model.casefold())
