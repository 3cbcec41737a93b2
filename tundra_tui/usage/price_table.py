"""Prices from the maintained `genai-prices` table: the only module that imports it.

Imported lazily (the package pulls in pydantic and an HTTP client, about 20 MB), and never
asked to update itself over the network: updating is `pip install -U genai-prices`, and
every figure names the version that priced it. Its `calc_price` costs about a millisecond
a call, so prices are extracted once per (provider, model, UTC day) into our `Price`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tundra_tui.domain.costs import Price, Rate

PROVIDERS = {"claude": "anthropic", "codex": "openai", "gemini": "google"}
"""The provider each runtime's models come from when its log does not say."""


def _rate(value: Any) -> Rate | None:
    """Our Rate from a genai price: a Decimal, a TieredPrices, or absent."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return Rate(float(value))
    tiers = tuple(sorted((int(t.start), float(t.price)) for t in value.tiers))
    return Rate(float(value.base), tiers)


class GenaiTable:
    """Looks models up in genai-prices' bundled snapshot. If the package cannot be imported,
    `error` says why and every lookup is None (unpriced, never $0)."""

    def __init__(self) -> None:
        self._version = ""
        self._error = ""
        self._snapshot: Any = None
        self._loaded = False
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str, str], Price | None] = {}

    def warm(self) -> None:
        """Import the package and read its snapshot now (about 1 s on a busy machine), so the
        first lookup does not block: `await asyncio.to_thread(table.warm)` at start."""
        self._load()

    @property
    def version(self) -> str:
        """The package's version ('' if it cannot be loaded). The first use imports it (about
        0.2 s): call it off the event loop."""
        self._load()
        return self._version

    @property
    def error(self) -> str:
        """Why the table prices nothing, or ''."""
        self._load()
        return self._error

    @property
    def source(self) -> str:
        """What figures priced by this table name as their source."""
        return f"genai-prices {self.version}" if self.version else "genai-prices"

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            try:
                import genai_prices
                from genai_prices import data_snapshot

                self._snapshot = data_snapshot.get_snapshot()
                self._version = str(genai_prices.__version__)
            except Exception as error:  # any failure: unpriced, said once
                self._error = f"genai-prices could not be loaded: {type(error).__name__}: {error}"
                self._snapshot = None

    def lookup(self, runtime: str, provider: str, model: str, day: str) -> Price | None:
        """The price of `model` on the UTC `day` ("YYYY-MM-DD"), or None if the table does not
        know it. `provider` is what the log said ('' for none)."""
        key = (runtime, provider, model, day)
        if key in self._cache:
            return self._cache[key]
        self._load()
        price = self._find(runtime, provider, model, day) if self._snapshot is not None else None
        self._cache[key] = price
        return price

    def _find(self, runtime: str, provider: str, model: str, day: str) -> Price | None:
        attempts: list[tuple[str, str | None]] = []
        if runtime == "aider" and provider:
            # Aider names models litellm's way ("openai/gpt-5.5"); B's reader splits it.
            attempts.append((f"{provider}/{model}", "litellm"))
        named = provider or PROVIDERS.get(runtime, "")
        if named:
            attempts.append((model, named))
        attempts.append((model, None))
        for model_ref, provider_id in attempts:
            try:
                _provider, info = self._snapshot.find_provider_model(
                    model_ref, None, provider_id, None
                )
            except LookupError:
                continue
            except Exception:  # an unknown provider id: try without it
                continue
            return self._price(info, day)
        return None

    def _price(self, info: Any, day: str) -> Price | None:
        try:
            moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
        except ValueError:
            moment = datetime.now(UTC)
        prices = info.get_prices(moment)
        input_rate = _rate(getattr(prices, "input_mtok", None))
        output_rate = _rate(getattr(prices, "output_mtok", None))
        if input_rate is None or output_rate is None:
            return None
        return Price(
            source=f"genai-prices {self._version}",
            model_id=str(info.id),
            input=input_rate,
            output=output_rate,
            cache_read=_rate(getattr(prices, "cache_read_mtok", None)),
            cache_write=_rate(getattr(prices, "cache_write_mtok", None)),
            cache_write_1h=_rate(getattr(prices, "cache_write_1h_mtok", None)),
        )
