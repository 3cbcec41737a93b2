"""The flight recorder: save a running agent's screen and verdict as a recording file.

The daemon holds the live screen and the last verdict, so the TUI and `at detect
--record` both ask it (the `record` op) and one path writes every recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from tundra_tui import __version__
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.agent import BOTTOM_LINES, AgentSession
from tundra_tui.session.detect import Detected
from tundra_tui.session.recording import RECORDINGS_DIR, Recording, write_recording

VERSION_TIMEOUT = 5.0
"""Seconds `<command> --version` may take before the version is recorded as unknown."""
VERSION_CHARS = 200
UNKNOWN = "unknown"
_CLI_BINARIES = {
    Runtime.CLAUDE: "claude",
    Runtime.CODEX: "codex",
    Runtime.GEMINI: "gemini",
    Runtime.OPENCODE: "opencode",
    Runtime.AIDER: "aider",
}
"""The executables known to answer `--version` and exit. Another command (a custom
runtime, or a wrapper in front of the CLI) may not know the option and start a session
instead, so its version is recorded as unknown rather than guessed."""


async def cli_version(runtime: Runtime, argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """The agent's CLI version: the first line `<command> --version` prints (run as the agent
    is, with a short timeout) for the known CLIs, ours for the demo agent, else `unknown`."""
    if runtime is Runtime.DEMO:
        return f"demo agent {__version__}"
    binary = _CLI_BINARIES.get(runtime)
    if not argv or binary is None or os.path.basename(argv[0]) != binary:
        return UNKNOWN
    try:
        process = await asyncio.create_subprocess_exec(
            argv[0],
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError:
        return UNKNOWN
    try:
        out, _ = await asyncio.wait_for(process.communicate(), VERSION_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return UNKNOWN
    if process.returncode != 0:
        return UNKNOWN
    first = next((line.strip() for line in out.decode(errors="replace").splitlines()), "")
    return first[:VERSION_CHARS] or UNKNOWN


async def record(
    session: AgentSession, label: Detected | None, state_dir: Path
) -> tuple[Path, Recording]:
    """Write `session`'s screen now, its verdict and `label` (the verdict's state when None)
    to a new file under `state_dir/recordings/`; the file and what it holds. Raises OSError."""
    emulator = session.emulator
    lines = [emulator.line_text(y) for y in range(emulator.rows)]
    cursor = emulator.cursor
    verdict = session.detection
    launch = session.config.launch
    version = await cli_version(
        session.adapter.runtime, list(launch.argv), dict(launch.env), launch.cwd
    )
    now = datetime.now(UTC)
    recording = Recording(
        agent=session.name,
        runtime=session.adapter.runtime.value,
        version=version,
        lines=lines,
        cursor=(cursor[0], cursor[1]),
        verdict=verdict,
        label=label or verdict.state,
        recorded_at=now.isoformat(timespec="seconds"),
        patterns=dict(session.adapter.patterns),
        read_rows=BOTTOM_LINES,
    )
    path = await asyncio.to_thread(write_recording, state_dir / RECORDINGS_DIR, recording, now)
    return path, recording
