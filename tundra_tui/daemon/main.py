"""`at daemon run`: the daemon process itself, one per town, detached from any terminal."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
from typing import TextIO

from tundra_tui.config import load_config
from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable, lock_path
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.server import Daemon
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.containment import TownContainment
from tundra_tui.session.pty import become_subreaper
from tundra_tui.store import open_store
from tundra_tui.town import Town, ensure_state_dir


def _take_lock(town: Town) -> TextIO:
    """Hold the town's daemon lock for our lifetime, with our pid in it."""
    handle = open(lock_path(town), "a+")  # noqa: SIM115 - held open until the daemon exits
    os.chmod(lock_path(town), 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise TundraError(f"a daemon is already running for {town.root} (pid {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


async def _clear_stale_socket(town: Town) -> None:
    """A socket file with no daemon behind it is left from a crash: replace it."""
    if not town.socket_path.exists():
        return
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        town.socket_path.unlink(missing_ok=True)
        return
    await client.close()
    raise TundraError(f"another process answers on {town.socket_path}")


async def _sweep(containment: TownContainment, log: DaemonLog) -> None:
    """Stop what a daemon that died (kill -9, power loss) left of its agents, before serving.

    Only after the town's lock is ours: no other daemon's agents can be running.
    """
    for swept in await containment.sweep():
        log.warning(
            "agent.swept", agent=swept.agent, pids=list(swept.pids), cgroups=list(swept.cgroups)
        )


async def run_daemon(town: Town) -> int:
    """Serve the town until `at daemon stop` or SIGTERM; SIGHUP is ignored."""
    ensure_state_dir(town)
    # Worker threads (the /proc scan, usage logs, the database) hand the GIL back to the
    # loop within a millisecond, not Python's default 5: a key's echo waits on it.
    sys.setswitchinterval(0.001)
    lock = _take_lock(town)
    log = DaemonLog.open(town)
    try:
        log.install(asyncio.get_running_loop())  # detached: stderr is no place for failures
        await _clear_stale_socket(town)
        containment = TownContainment.of(town.root)
        containment.report = lambda what, agent, error: log.warning(
            "containment.failed", agent=agent, error=error, what=what
        )
        if become_subreaper():
            containment.claim_orphans()
        await _sweep(containment, log)
        config = load_config(town)
        store = await open_store(
            town.db_path,
            busy_timeout_ms=int(config.get("store.busy_timeout_ms")),
            synchronous=str(config.get("store.synchronous")),
        )
        try:
            daemon = Daemon(town, store, log=log)
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, daemon.stopped.set)
            loop.add_signal_handler(signal.SIGINT, daemon.stopped.set)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            try:
                await daemon.serve()
            finally:
                # Before the lock is let go: `at daemon stop` returns when nothing is left.
                await containment.close()
        finally:
            await store.close()
    finally:
        log.close()
        with contextlib.suppress(OSError):
            lock.seek(0)
            lock.truncate()
        lock.close()
    return 0
