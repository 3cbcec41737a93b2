"""From an agent in tundra.toml to everything the session host needs to start it."""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tundra_tui.config import AgentSpec
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.containment import agent_state_dir, private_dir, write_private
from tundra_tui.session.hooks import claude_settings, codex_notify_args
from tundra_tui.town import Town

HOOK_COMMAND = (sys.executable, "-m", "tundra_tui", "hook-event")
"""The interpreter running `at` runs the hooks too, so they work in any virtualenv."""
AT_BIN = os.path.dirname(sys.executable)
"""Where the running interpreter's scripts live (a virtualenv's `bin`, holding `at`)."""


def agent_dir(town: Town, name: str) -> Path:
    """Per-agent state (hook settings, logs, containment records), 0700 whatever the umask."""
    return agent_state_dir(town, name)


def write_private_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON readable only by us (0600 whatever the umask), atomically."""
    write_private(path, document)


def multiplexer_env(town: Town, name: str) -> dict[str, str]:
    """Point tmux and screen at an empty private directory of the agent's own.

    With TMUX and STY gone, a plain `tmux` or `screen` inside an agent would
    still find the operator's server by its default socket (/tmp/tmux-UID,
    /run/screen) and could type into the operator's panes (F1). A socket path
    named outright (`tmux -S`) is still reachable: the approval book does not
    rely on this alone.
    """
    private = str(private_dir(agent_dir(town, name) / "mux"))
    return {"TMUX_TMPDIR": private, "SCREENDIR": private}


CLAUDE_SESSION_ARGS = ("--session-id", "--resume", "-r", "--continue", "-c")
"""Claude options that already say which session to write: we add no `--session-id` then."""
PRIVATE_HOME_ENV = {
    Runtime.CLAUDE: "CLAUDE_CONFIG_DIR",
    Runtime.CODEX: "CODEX_HOME",
    Runtime.OPENCODE: "XDG_DATA_HOME",
}
"""Where `runtimes.<rt>.private_home` points each runtime that can keep its state elsewhere."""


def _has_option(argv: Sequence[str], names: Sequence[str]) -> bool:
    """Whether `argv` holds one of `names`, alone or as `--name=value`."""
    return any(arg in names or arg.split("=", 1)[0] in names for arg in argv)


def usage_args(runtime: Runtime, argv: Sequence[str], state_dir: Path) -> list[str]:
    """The arguments that make a runtime's usage log findable as this launch's own.

    Claude gets a session id of ours (its log is `projects/*/<id>.jsonl`) unless the operator
    chose a session (`--session-id`, a resume or continue). Aider gets an analytics log of its
    own under the agent's state dir, with `--no-analytics` (this session only: nothing is sent,
    and unlike `--analytics-disable` the operator's Aider settings are not changed), unless the
    operator named a log. `argv` is what the agent would run otherwise, command included.
    """
    if runtime is Runtime.CLAUDE and not _has_option(argv, CLAUDE_SESSION_ARGS):
        return ["--session-id", str(uuid.uuid4())]
    if runtime is Runtime.AIDER and not _has_option(argv, ("--analytics-log",)):
        log = private_dir(state_dir / "usage") / f"aider-{uuid.uuid4()}.jsonl"
        return ["--no-analytics", "--analytics-log", str(log)]
    return []


def relaunch(config: AgentConfig) -> AgentConfig:
    """The same agent started again (a restart, a crash): a fresh Claude `--session-id`.

    Claude refuses an id whose log exists ("Session ID … is already in use"), and a new
    start has always been a new conversation. Anything else is started as it was.
    """
    argv = config.launch.argv
    renewed = list(argv)
    for index, arg in enumerate(argv):
        if arg == "--session-id" and index + 1 < len(argv):
            renewed[index + 1] = str(uuid.uuid4())
        elif arg.startswith("--session-id="):
            renewed[index] = f"--session-id={uuid.uuid4()}"
    if renewed == argv or config.adapter.runtime is not Runtime.CLAUDE:
        return config
    return dataclasses.replace(config, launch=dataclasses.replace(config.launch, argv=renewed))


def private_home_env(
    runtime: Runtime, settings: Mapping[str, Any] | None, state_dir: Path
) -> dict[str, str]:
    """`runtimes.<rt>.private_home = true`: the runtime keeps its state (and logs) in
    `<agent dir>/home` (0700), so no other session's log mixes with the agent's. Meant for
    API-key users: a subscription login stays in the operator's own home."""
    name = PRIVATE_HOME_ENV.get(runtime)
    if name is None or not (settings or {}).get("private_home"):
        return {}
    return {name: str(private_dir(state_dir / "home"))}


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
    bead: int | None = None,
) -> AgentConfig:
    """Resolve an agent's adapter, argv, environment and working directory.

    The environment is built, not inherited (see `Adapter.launch`): the
    allow-listed part of `base_env` (the daemon's), our multiplexer directories,
    then what `runtimes.NAME.env` and `agents.NAME.env` set, which always pass,
    then the agent's identity. The agent learns its own name and town from it,
    so the `at` commands it runs (hooks, `at done`) are recorded as its own, and
    the daemon contains its processes under that name; config cannot change it.
    An agent started for a bead has `TUNDRA_BEAD` too. The directory holding our `at`
    goes first on PATH: /usr/bin/at is POSIX `at`, and the contract an agent is given
    is `at submit`.
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
    command = spec.command or default_command(spec.runtime)
    state_dir = agent_dir(town, spec.name)
    args = [*args, *usage_args(spec.runtime, [*_split(command), *args], state_dir)]
    env = {
        **multiplexer_env(town, spec.name),
        **private_home_env(spec.runtime, runtime_settings, state_dir),
        **spec.env,
        "TUNDRA_TOWN": str(town.root),
        "TUNDRA_AGENT": spec.name,
        "TUNDRA_ACTOR": spec.name,
    }
    if bead is not None:
        env["TUNDRA_BEAD"] = str(bead)
    launch = adapter.launch(
        command=command,
        args=args,
        env=env,
        cwd=cwd or town.root,
        base_env=os.environ if base_env is None else base_env,
        model=spec.model or "",
    )
    path = [AT_BIN, *(p for p in launch.env.get("PATH", "").split(os.pathsep) if p and p != AT_BIN)]
    launch.env["PATH"] = os.pathsep.join(path)
    return AgentConfig(spec.name, adapter, launch, columns, rows, scrollback)


def _split(command: str) -> list[str]:
    """A command line's words (the whole line if it does not parse: the launch reports that)."""
    try:
        return shlex.split(command)
    except ValueError:
        return [command]
