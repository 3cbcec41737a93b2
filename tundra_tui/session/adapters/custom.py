"""A CLI we do not know: command, detection patterns and answer keys all come from config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import ENTER, Adapter, keys_from_config


def custom_adapter(settings: Mapping[str, Any]) -> Adapter:
    """Build the adapter from `[runtimes.custom]`: approve_keys, deny_keys and *_pattern."""
    return Adapter(
        runtime=Runtime.CUSTOM,
        approve_keys=keys_from_config(str(settings.get("approve_keys", "y Enter"))),
        deny_keys=keys_from_config(str(settings.get("deny_keys", "n Enter"))),
        submit_key=ENTER,
        patterns={
            key: str(settings[f"{key}_pattern"])
            for key in ("idle", "working", "approval")
            if settings.get(f"{key}_pattern")
        },
    )
