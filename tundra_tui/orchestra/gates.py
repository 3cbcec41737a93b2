"""Run one refinery gate: a shell command on agents' code, bounded in time, output and reach.

A gate is `sh -c CMD` in its own session, tied to the daemon's life
(PDEATHSIG), with an environment mark (`TUNDRA_GATE_MARK`) so that whatever it
leaves behind (a background server, a `pytest` worker that survived a kill -9
of the daemon) can be found and killed. The mark is deliberately not the
agents' mark: the host's orphan reaper `waitpid`s processes carrying that one,
and would steal the gate's exit status from asyncio.

Output goes to a capped log file and a bounded tail (kept raw: whoever shows
it sanitizes it). After the command exits, or times out, its process group and
every process with its mark are killed, so a background child holding stdout
open never hangs the refinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tundra_tui.domain.refinery import GATE_TAIL_CHARS
from tundra_tui.orchestra.worktrees import _REDIRECTING_ENV
from tundra_tui.session.containment import DAEMON_ENV
from tundra_tui.session.procs import Proc, proc_info, send
from tundra_tui.session.pty import die_with_parent

GATE_MARK_ENV = "TUNDRA_GATE_MARK"
"""Every gate process's environment carries this mark (`<town key>:<attempt>`)."""


_KEPT = frozenset({DAEMON_ENV})
"""Our variables a gate keeps."""
_READ_CHUNK = 65536
_DRAIN_SECONDS = 2.0
"""How long the output may still flow after the gate's processes were killed.

Only something that escaped both the process group and the mark (a new session
with a cleared environment) can still hold the pipe; it is then abandoned."""
_KILL_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class GateRun:
    """What one gate did: the verdict and the evidence behind it."""

    ok: bool
    exit_code: int | None
    """The shell's exit status; negative for a signal (-9 after a timeout)."""
    timed_out: bool
    seconds: float
    tail: str
    """The last output characters, raw (untrusted: sanitize before showing)."""
    log_path: str


def gate_env(base: Mapping[str, str], mark: str) -> dict[str, str]:
    """`base` without our own variables or git redirections, plus the gate mark.

    `TUNDRA_*` would make `at` inside a gate act as an agent of the town;
    `GIT_DIR` and friends would point git at another repository than the
    refinery's worktree. `TUNDRA_DAEMON` stays: it tells containment's orphan
    sweep that a gate (in a session of its own) is the daemon's, not an agent's
    to be killed with it.
    """
    env = {
        key: value
        for key, value in base.items()
        if (key in _KEPT or not key.startswith("TUNDRA_")) and key not in _REDIRECTING_ENV
    }
    env[GATE_MARK_ENV] = mark
    return env


def _mark_of(pid: int) -> str | None:
    """The gate mark in the process's environment, or None (not ours, gone, or unmarked)."""
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = f"{GATE_MARK_ENV}=".encode()
    for entry in entries:
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def _marked(prefix: str, *, exact: bool) -> list[Proc]:
    uid = os.getuid()
    found: list[Proc] = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        info = proc_info(pid)
        if info is None or info.zombie:
            continue
        mark = _mark_of(pid)
        if mark is None or not (mark == prefix if exact else mark.startswith(prefix)):
            continue
        again = proc_info(pid)  # the environ read must have been this process's
        if again is not None and again.start == info.start:
            found.append(info.proc)
    return found


def kill_marked(prefix: str, *, exact: bool = False) -> list[int]:
    """SIGKILL every process of ours whose gate mark starts with `prefix` (or equals it).

    Recovery calls it with `"<town key>:"` before reusing anything: a gate's
    grandchildren survive the daemon's death (PDEATHSIG reaches only `sh`).
    Processes are remembered with their start time, so a reused pid is never
    signalled. A few rounds catch children forked while we were killing.
    Returns the pids killed.
    """
    signalled: set[Proc] = set()
    killed: list[int] = []
    for _ in range(_KILL_ROUNDS):
        # A process already sent SIGKILL may not have died yet when the next
        # round looks: it is not signalled (or counted) twice.
        fresh = [proc for proc in _marked(prefix, exact=exact) if proc not in signalled]
        hit = [proc for proc in fresh if send(proc, signal.SIGKILL)]
        if not hit:
            break
        signalled.update(hit)
        killed.extend(proc.pid for proc in hit)
    _reap(set(killed))
    return killed


def _reap(pids: set[int]) -> None:
    """Collect killed processes that were reparented to us (the daemon is a subreaper).

    They are marked gate processes nobody else waits for; a pid that is not our
    child raises ChildProcessError and is left alone.
    """
    deadline = time.monotonic() + 0.5
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except (ChildProcessError, OSError):
                pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.01)


class _Output:
    """The gate's output: a capped log file and a bounded tail."""

    def __init__(self, log_path: Path, tail_chars: int, max_log_bytes: int) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self._room = max_log_bytes
        self._cut = False
        self._tail = bytearray()
        # UTF-8 needs at most 4 bytes a character: keep enough bytes for `tail_chars`.
        self._tail_bytes = max(tail_chars, 0) * 4
        self._tail_chars = tail_chars

    def write(self, chunk: bytes) -> None:
        if self._room > 0:
            part = chunk[: self._room]
            self._log.write(part)
            self._room -= len(part)
        if self._room <= 0 and len(chunk) and not self._cut:
            self._cut = True
        self._tail += chunk
        if len(self._tail) > self._tail_bytes:
            del self._tail[: len(self._tail) - self._tail_bytes]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._cut:
                self._log.write(b"\n[auto-tundra: log cut here; the tail is kept in the store]\n")
            self._log.close()

    def tail(self) -> str:
        if self._tail_chars <= 0:
            return ""
        return self._tail.decode(errors="replace")[-self._tail_chars :]


async def _pump(stream: asyncio.StreamReader, output: _Output) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        output.write(chunk)


async def run_gate(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log_path: Path,
    tail_chars: int = GATE_TAIL_CHARS,
    max_log_bytes: int = 8 << 20,
    started: Callable[[int], None] | None = None,
) -> GateRun:
    """Run `command` with `sh -c` in `cwd`; green when it exits 0 within `timeout` seconds.

    `env` must carry the gate mark (build it with `gate_env`). `started` is told
    the shell's pid once it runs. Whatever the outcome, including cancellation,
    the gate's process group and marked processes are dead when this returns.
    """
    mark = env.get(GATE_MARK_ENV)
    if not mark:
        raise ValueError(f"gate environment lacks {GATE_MARK_ENV} (use gate_env)")
    output = _Output(log_path, tail_chars, max_log_bytes)
    begun = time.monotonic()
    timed_out = False
    # Our own pipe, not asyncio's: `Process.wait()` on a PIPE waits for the pipe
    # to close too, which a background child holding stdout would delay forever.
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
        )
    except OSError as exc:
        os.close(read_fd)
        output.write(f"auto-tundra: cannot start the gate: {exc}\n".encode())
        output.close()
        return GateRun(
            ok=False,
            exit_code=None,
            timed_out=False,
            seconds=time.monotonic() - begun,
            tail=output.tail(),
            log_path=str(log_path),
        )
    finally:
        os.close(write_fd)
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=_READ_CHUNK)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
    )
    reader = asyncio.ensure_future(_pump(stream, output))
    try:
        if started is not None:
            started(proc.pid)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
    finally:
        # The shell's group first (its session leader's pid names it; a session leader
        # cannot leave its group, so this reaches the shell too), then any marked process
        # that left the group; this frees the pipe. Not `proc.kill()`: Popen polls before
        # it signals, and that poll would reap the shell under asyncio's child watcher,
        # which then reports exit 255.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await asyncio.shield(proc.wait())
        # Off the loop: a /proc scan, and a short wait to collect what was reparented to us.
        await asyncio.shield(asyncio.to_thread(kill_marked, mark, exact=True))
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(reader), _DRAIN_SECONDS)
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        transport.close()
        output.close()
    seconds = time.monotonic() - begun
    code = proc.returncode
    return GateRun(
        ok=not timed_out and code == 0,
        exit_code=code,
        timed_out=timed_out,
        seconds=seconds,
        tail=output.tail(),
        log_path=str(log_path),
    )
