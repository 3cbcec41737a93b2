"""Prices: our Price, extracted once from genai-prices, costs what genai-prices' own
calc_price says; overrides, the demo table and unpriced models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tundra_tui.domain.costs import Price, Rate
from tundra_tui.usage.price_book import PriceBook
from tundra_tui.usage.price_table import GenaiTable
from tundra_tui.usage.pricing import DEMO_SOURCE, demo_price

genai_prices = pytest.importorskip("genai_prices")

DAY = "2026-12-07"
WHEN = datetime(2026, 12, 7, 12, tzinfo=UTC)
TABLE = GenaiTable()
MODELS = [
    ("claude", "anthropic", "claude-opus-5-5"),
    ("claude", "anthropic", "claude-sonnet-4-5"),  # tiered above 200k input
    ("codex", "openai", "gpt-5.5"),  # tiered above 272k, no cache-write price
    ("gemini", "google", "gemini-3.8-flash"),
]


class _Config:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, key: str) -> Any:
        return self.values.get(key)


def _genai(model: str, provider: str, **tokens: int) -> float:
    usage = genai_prices.Usage(
        input_tokens=tokens["input"] + tokens["cache_read"] + tokens["cache_write"],
        cache_read_tokens=tokens["cache_read"],
        cache_write_tokens=tokens["cache_write"],
        output_tokens=tokens["output"],
    )
    found = genai_prices.calc_price(
        usage, model, provider_id=provider, genai_request_timestamp=WHEN
    )
    return float(Decimal(found.total_price))


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(MODELS),
    st.integers(0, 400_000),
    st.integers(0, 20_000),
    st.integers(0, 300_000),
    st.integers(0, 50_000),
)
def test_our_price_costs_what_genai_prices_says(
    model: tuple[str, str, str], input: int, output: int, cache_read: int, cache_write: int
) -> None:
    runtime, provider, name = model
    price = TABLE.lookup(runtime, provider, name, DAY)
    assert price is not None and price.source == f"genai-prices {genai_prices.__version__}"
    tokens = {
        "input": input,
        "output": output,
        "cache_read": cache_read,
        "cache_write": cache_write,
    }
    ours = price.cost(cache_write_1h=0, **tokens)
    assert ours == pytest.approx(_genai(name, provider, **tokens), rel=1e-9, abs=1e-12)


def test_claudes_own_figure_is_reproduced_and_tiers_are_kept() -> None:
    opus = TABLE.lookup("claude", "anthropic", "claude-opus-5-5", DAY)
    assert opus is not None
    # research/real-agents.md: cost-state 25,426 in / 203 out = $0.105764.
    cost = opus.cost(input=25_426, output=203, cache_read=0, cache_write=0, cache_write_1h=0)
    assert cost == pytest.approx(0.105764, abs=1e-9)
    gpt = TABLE.lookup("codex", "", "gpt-5.5-codex", DAY)
    assert gpt is not None and gpt.model_id == "gpt-5.5"
    assert gpt.cache_write is None and gpt.input.tiers == ((272_000, 10.0),)
    assert gpt.input.at(272_000) == 5.0 and gpt.input.at(272_001) == 10.0
    aider = TABLE.lookup("aider", "openai", "gpt-5.5", DAY)
    assert aider is not None and aider.model_id == "gpt-5.5"


def test_unknown_models_are_unpriced_never_priced_as_another() -> None:
    for runtime, model in (("claude", "fake-model"), ("demo", "demo-mystery"), ("aider", "fake")):
        assert TABLE.lookup(runtime, "", model, DAY) is None
    book = PriceBook({}, TABLE)
    assert book.price("opencode", "openai", "fake", f"{DAY}T10:00:00Z") is None
    assert book.price("demo", "", "demo-mystery", f"{DAY}T10:00:00Z") is None


def test_overrides_win_then_the_demo_table_for_demo_models_only() -> None:
    config = _Config(
        {
            "costs.prices": {
                "fake-model": {"input": 3, "output": 15},
                "Claude-Opus-5-5": {"input": 1, "output": 2, "cache_read": 0.5},
                "half": {"input": 1},
            },
            "costs.price_table": "genai-prices",
        }
    )
    book = PriceBook.from_config(config, TABLE)
    at = f"{DAY}T10:00:00.000000Z"
    fake = book.price("opencode", "openai", "fake-model", at)
    assert fake == Price("config", "fake-model", Rate(3.0), Rate(15.0))
    assert fake.cost(input=1_000_000, output=0, cache_read=0, cache_write=0, cache_write_1h=0) == 3
    # Case-folded: the override still beats genai-prices.
    opus = book.price("claude", "anthropic", "claude-opus-5-5", at)
    assert opus is not None and opus.source == "config" and opus.cache_read == Rate(0.5)
    # An override without an output price is not a price.
    assert book.price("claude", "", "half", at) is None
    sonnet = book.price("demo", "", "demo-sonnet", at)
    assert (
        sonnet is not None and sonnet.source == DEMO_SOURCE and sonnet == demo_price("DEMO-SONNET")
    )
    # A real model run by the demo runtime is priced by the table, not the demo one.
    real = book.price("demo", "anthropic", "claude-sonnet-4-5", at)
    assert real is not None and real.source.startswith("genai-prices")
    assert demo_price("claude-opus-5-5") is None


def test_the_fingerprint_follows_the_table_and_the_overrides() -> None:
    base = PriceBook.from_config(_Config({}), TABLE)
    same = PriceBook.from_config(_Config({"costs.prices": {}}), TABLE)
    other = PriceBook.from_config(
        _Config({"costs.prices": {"m": {"input": 1, "output": 1}}}), TABLE
    )
    off = PriceBook.from_config(_Config({"costs.price_table": "none"}), TABLE)
    assert base.fingerprint() == same.fingerprint()
    assert len({base.fingerprint(), other.fingerprint(), off.fingerprint()}) == 3
    assert genai_prices.__version__ in base.fingerprint()
    assert off.price("claude", "anthropic", "claude-opus-5-5", f"{DAY}T10:00:00Z") is None


def test_a_table_that_cannot_load_prices_nothing_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("genai_prices"):
            raise ImportError("no genai_prices here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    broken = GenaiTable()
    assert broken.lookup("claude", "anthropic", "claude-opus-5-5", DAY) is None
    assert "genai-prices could not be loaded" in broken.error and broken.version == ""
    book = PriceBook({}, broken)
    assert book.error == broken.error and "(unavailable)" in book.fingerprint()
