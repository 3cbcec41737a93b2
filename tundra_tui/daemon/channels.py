"""Structured channels at launch and in `at detect --explain`.

A Codex agent gets its hooks only when the installed CLI has them (`codex --version`,
asked as the flight recorder asks it); an older one keeps `notify` and the screen.
An OpenCode agent gets our state plugin the same way (`opencode --version`).
`explain` says which channel decided a running agent's state.
"""

from __future__ import annotations

import dataclasses
import time

from tundra_tui.daemon.protocol import Explain, Explained
from tundra_tui.daemon.recorder import cli_version
from tundra_tui.daemon.transport import Caller
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.hooks import (
    channel_of,
    codex_has_hooks,
    opencode_has_plugin,
    opencode_plugin_env,
    with_codex_hooks,
)
from tundra_tui.session.host import SessionHost
from tundra_tui.session.launch import HOOK_COMMAND


async def with_channels(config: AgentConfig) -> AgentConfig:
    """`config` with the structured channel its CLI version has: Codex hooks (0.135.0 on),
    OpenCode's state plugin (1.3.2 on)."""
    launch = config.launch
    runtime = config.adapter.runtime
    if runtime not in (Runtime.CODEX, Runtime.OPENCODE) or not launch.argv:
        return config
    version = await cli_version(runtime, launch.argv, launch.env, launch.cwd)
    if runtime is Runtime.CODEX:
        if not codex_has_hooks(version):
            return config
        argv = with_codex_hooks(launch.argv, HOOK_COMMAND)
        return dataclasses.replace(config, launch=dataclasses.replace(launch, argv=argv))
    added = opencode_plugin_env(launch.env, HOOK_COMMAND) if opencode_has_plugin(version) else None
    if added is None:
        return config
    env = {**launch.env, **added}
    return dataclasses.replace(config, launch=dataclasses.replace(launch, env=env))


class ExplainOps:
    """The `explain` op: read-only, so agents may ask too."""

    def __init__(self, host: SessionHost) -> None:
        self.host = host

    async def explain(self, request: Explain, caller: Caller) -> Explained:
        session = self.host.session(request.name)
        evidence = session.detection.evidence
        since = time.time() - (time.monotonic() - session.state_since)
        return Explained(
            state=session.state.value,
            source=evidence.source if evidence else "",
            rule=evidence.rule if evidence else "",
            matched=evidence.matched if evidence else "",
            versions=evidence.versions if evidence else "",
            since=since,
            channel=channel_of(
                session.adapter.runtime, session.config.launch.argv, session.config.launch.env
            ),
        )
