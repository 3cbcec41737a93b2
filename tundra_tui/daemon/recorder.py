"""The flight recorder: save a running agent's screen and verdict as a recording file.

The daemon holds the live screen and the last verdict, so the TUI and `at detect
--record` both ask it (the `record` op) and one path writes every recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from tundra_tui import __version__
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.agent import BOTTOM_LINES, AgentSession
from tundra_tui.session.detect import Detected
from tundra_tui.session.recording import RECORDINGS_DIR, Recording, write_recording

VERSION_TIMEOUT = 5.0
"""Seconds an agent's start (or a recording) waits for `<command> --version`; unknown after."""
LATE_VERSION_TIMEOUT = 120.0
"""Seconds a slow `--version` is still awaited, for the next start, before it is killed."""
_VERSIONS: dict[tuple[str, int, int], str] = {}
"""Versions known, by installed binary (real path, size, modification time)."""
_ASKING: dict[tuple[str, int, int], asyncio.Task[str]] = {}
"""`--version` runs still going, by binary: two agents starting at once ask once."""
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
    is, with a short timeout) for the known CLIs, ours for the demo agent, else `unknown`.

    A version is asked once per installed binary (its path, size and modification time):
    every agent start asks (for its channel), and a node CLI takes a second or more to
    answer. A first answer slower than `VERSION_TIMEOUT` (a fresh install unpacking itself)
    is `unknown` now but still awaited, up to `LATE_VERSION_TIMEOUT`, for the next start.
    """
    if runtime is Runtime.DEMO:
        return f"demo agent {__version__}"
    binary = _CLI_BINARIES.get(runtime)
    if not argv or binary is None or os.path.basename(argv[0]) != binary:
        return UNKNOWN
    key = _installed(argv[0], env, cwd)
    if key is not None and key in _VERSIONS:
        return _VERSIONS[key]
    loop = asyncio.get_running_loop()
    asking = _ASKING.get(key) if key is not None else None
    if asking is None or asking.get_loop() is not loop:
        asking = loop.create_task(_ask_version(argv[0], env, cwd))
        if key is not None:
            _ASKING[key] = asking
            asking.add_done_callback(lambda done: _remember_version(key, done))
    try:
        return await asyncio.wait_for(asyncio.shield(asking), VERSION_TIMEOUT)
    except TimeoutError:
        return UNKNOWN


def _installed(command: str, env: dict[str, str], cwd: Path) -> tuple[str, int, int] | None:
    """The binary `command` runs, as (real path, size, mtime); None if it cannot be found.
    A reinstall or an upgrade changes it, so a version is never remembered past one."""
    if os.sep in command:  # a path, from the agent's directory when relative
        found: str | None = os.path.join(cwd, command)
    else:
        found = shutil.which(command, path=env.get("PATH", os.defpath))
    if found is None:
        return None
    try:
        real = os.path.realpath(found)
        info = os.stat(real)
    except OSError:
        return None
    return real, info.st_size, info.st_mtime_ns


def _remember_version(key: tuple[str, int, int], done: asyncio.Task[str]) -> None:
    if _ASKING.get(key) is done:
        del _ASKING[key]
    if not done.cancelled() and done.exception() is None and done.result() != UNKNOWN:
        _VERSIONS[key] = done.result()


async def _ask_version(command: str, env: dict[str, str], cwd: Path) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            command,
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
        out, _ = await asyncio.wait_for(process.communicate(), LATE_VERSION_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return UNKNOWN
    except asyncio.CancelledError:  # the daemon is stopping: leave nothing running
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
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
