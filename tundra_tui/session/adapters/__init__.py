"""Per-runtime adapters; `adapter_for` applies config overrides to the built-in facts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters import aider, claude, codex, demo, gemini, opencode
from tundra_tui.session.adapters.base import Adapter, Dialog, InputTiming, Launch, keys_from_config
from tundra_tui.session.adapters.custom import custom_adapter

__all__ = ["Adapter", "Dialog", "InputTiming", "Launch", "adapter_for", "default_command"]

_BUILT_IN: dict[Runtime, Adapter] = {
    Runtime.CLAUDE: claude.ADAPTER,
    Runtime.CODEX: codex.ADAPTER,
    Runtime.GEMINI: gemini.ADAPTER,
    Runtime.OPENCODE: opencode.ADAPTER,
    Runtime.AIDER: aider.ADAPTER,
    Runtime.DEMO: demo.ADAPTER,
}


def adapter_for(runtime: Runtime, settings: Mapping[str, Any] | None = None) -> Adapter:
    """The adapter for `runtime`, with `[runtimes.<runtime>]` keys and trust applied."""
    settings = settings or {}
    if runtime is Runtime.CUSTOM:
        adapter = custom_adapter(settings)
    else:
        adapter = _BUILT_IN[runtime]
        overrides: dict[str, Any] = {}
        if settings.get("approve_keys"):
            overrides["approve_keys"] = keys_from_config(str(settings["approve_keys"]))
        if settings.get("deny_keys"):
            overrides["deny_keys"] = keys_from_config(str(settings["deny_keys"]))
        if overrides:
            adapter = dataclasses.replace(adapter, **overrides)
    if settings.get("auto_trust"):
        adapter = dataclasses.replace(adapter, auto_trust=True)
    return adapter


def default_command(runtime: Runtime) -> str:
    """The command a runtime runs when config names none (only `demo` has one built in here)."""
    return demo.COMMAND if runtime is Runtime.DEMO else ""
