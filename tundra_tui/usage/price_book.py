"""Which price applies to a sample: the operator's overrides, the demo table, then the
kept price table. A model none of them knows is unpriced (None), never $0."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from tundra_tui.domain.costs import Price, Rate
from tundra_tui.usage.pricing import DEMO_SOURCE, demo_price

CONFIG_SOURCE = "config"
_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")


class PriceTable(Protocol):
    """A kept price table (`usage.price_table.GenaiTable`)."""

    @property
    def version(self) -> str: ...

    @property
    def error(self) -> str: ...

    def lookup(self, runtime: str, provider: str, model: str, day: str) -> Price | None: ...


class _Settings(Protocol):
    def get(self, key: str) -> Any: ...


def _override(model: str, entry: Mapping[str, Any]) -> Price | None:
    """A `[costs.prices."<model>"]` table as a Price, once input and output are both set."""
    if entry.get("input") is None or entry.get("output") is None:
        return None
    rates = {
        name: (Rate(float(entry[name])) if entry.get(name) is not None else None)
        for name in _FIELDS
    }
    return Price(
        source=CONFIG_SOURCE,
        model_id=model,
        input=rates["input"] or Rate(0.0),
        output=rates["output"] or Rate(0.0),
        cache_read=rates["cache_read"],
        cache_write=rates["cache_write"],
        cache_write_1h=rates["cache_write_1h"],
    )


class PriceBook:
    """Prices a sample by runtime, provider, model and time. Lookup order: the override for
    the model (exact name, then case-folded), the demo table (runtime demo or a `demo-`
    model), the kept table when `costs.price_table` is "genai-prices", else unpriced."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, Any]],
        table: PriceTable | None,
        *,
        use_table: bool = True,
    ) -> None:
        self.overrides = {model: dict(entry) for model, entry in overrides.items()}
        self.table = table if use_table else None
        self._exact = {model: _override(model, entry) for model, entry in self.overrides.items()}
        self._folded = {
            model.casefold(): price for model, price in self._exact.items() if price is not None
        }

    @classmethod
    def from_config(cls, config: _Settings, table: PriceTable | None) -> PriceBook:
        """The book a town's configuration describes (`costs.prices`, `costs.price_table`)."""
        overrides = config.get("costs.prices") or {}
        use_table = (config.get("costs.price_table") or "genai-prices") == "genai-prices"
        return cls(overrides, table, use_table=use_table)

    def price(self, runtime: str, provider: str, model: str, at: str) -> Price | None:
        """The price for a call to `model` at the ISO time `at`, or None: unpriced."""
        found = self._exact.get(model) or self._folded.get(model.casefold())
        if found is not None:
            return found
        if runtime == "demo" or model.casefold().startswith("demo-"):
            demo = demo_price(model)
            if demo is not None:
                return demo
        if self.table is not None and model:
            return self.table.lookup(runtime, provider, model, at[:10])
        return None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source this book can name beside a figure."""
        names = [CONFIG_SOURCE, DEMO_SOURCE]
        if self.table is not None:
            names.append(f"genai-prices {self.table.version}".strip())
        return tuple(names)

    @property
    def error(self) -> str:
        """Why the kept table prices nothing ('' when it works or is not used)."""
        return self.table.error if self.table is not None else ""

    def fingerprint(self) -> str:
        """Changes whenever a stored cost could: the table and its version, and the overrides.
        Rows priced under another fingerprint are re-priced."""
        table = "none" if self.table is None else f"genai-prices {self.table.version}"
        if self.table is not None and self.table.error:
            table += " (unavailable)"
        digest = hashlib.sha1(
            json.dumps(self.overrides, sort_keys=True, default=str).encode(), usedforsecurity=False
        ).hexdigest()[:12]
        return f"{table}; {DEMO_SOURCE}; overrides {digest}"
