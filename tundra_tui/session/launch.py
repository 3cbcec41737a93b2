"""From an agent in tundra.toml to everything the session host needs to start it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tundra_tui.config import AgentSpec
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.hooks import claude_settings, codex_notify_args
from tundra_tui.town import Town, ensure_state_dir

HOOK_COMMAND = (sys.executable, "-m", "tundra_tui", "hook-event")
"""The interpreter running `at` runs the hooks too, so they work in any virtualenv."""


def agent_dir(town: Town, name: str) -> Path:
    """Per-agent state (hook settings, logs) under the town's private state directory."""
    path = ensure_state_dir(town) / "agents" / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_private_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON readable only by us, atomically."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    os.replace(temp, path)


def agent_config(
    spec: AgentSpec,
    town: Town,
    *,
    runtime_settings: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    columns: int = 120,
    rows: int = 40,
    scrollback: int = 5000,
    base_env: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Resolve an agent's adapter, argv, environment and working directory.

    The agent learns its own name and town from the environment, so the `at`
    commands it runs (hooks, `at done`) are recorded as its own.
    """
    adapter = adapter_for(spec.runtime, runtime_settings)
    args = list(spec.args)
    if spec.runtime is Runtime.CLAUDE:
        settings = agent_dir(town, spec.name) / "claude-settings.json"
        write_private_json(settings, claude_settings(HOOK_COMMAND))
        args = ["--settings", str(settings), *args]
    if spec.runtime is Runtime.CODEX:
        args = [*codex_notify_args(HOOK_COMMAND), *args]
    if spec.model and spec.runtime in (Runtime.CLAUDE, Runtime.DEMO, Runtime.AIDER):
        args = [*args, "--model", spec.model]
    env = {
        **spec.env,
        "TUNDRA_TOWN": str(town.root),
        "TUNDRA_AGENT": spec.name,
        "TUNDRA_ACTOR": spec.name,
    }
    launch = adapter.launch(
        command=spec.command or default_command(spec.runtime),
        args=args,
        env=env,
        cwd=cwd or town.root,
        base_env=os.environ if base_env is None else base_env,
    )
    return AgentConfig(spec.name, adapter, launch, columns, rows, scrollback)
