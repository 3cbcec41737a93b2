"""Every process an agent starts stays where the daemon can stop it, even after a crash.

An agent's children may `setsid`, clear their environment and close every
descriptor (F6): then neither the process group, nor the marker variable, nor
the terminal leads to them. Two ways keep them in reach:

- **A cgroup v2 per agent**, where cgroup2 is mounted and we may create groups
  (root, or a delegated subtree): `<our cgroup>/tundra-<town hash>/<agent>-<mark>`.
  The child joins it before exec, so there is no window for a first fork to
  slip out, and nothing a process does can leave it. Stopping is `cgroup.kill`.
- **Tracking**, everywhere else (or with `TUNDRA_NO_CGROUP=1`): the daemon is a
  child subreaper, so orphans come back to it. A sampler scans /proc every
  `SAMPLE_INTERVAL` while such agents run and keeps, per agent, every process
  seen in its tree (by parent, session, process group or controlling terminal)
  as (pid, start time), so a stop never signals a reused pid. An orphan that
  reached the daemon unseen (a fast double fork) belongs to the only agent that
  was running when it started; when several were, it joins the town's unowned
  pool, which the daemon's own stop ends. What forked less than one sample
  before a `kill -9` of the daemon is not on record for the next one.

Either way, what a next daemon needs after a `kill -9` is written under the
town's private state: `.tundra/agents/NAME/containment-MARK.json` (the cgroup,
or the tracked processes) and `.tundra/agents/.unowned.json` (no agent name
starts with a dot). `TownContainment.sweep` reads them at daemon start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tundra_tui.domain.errors import TundraError
from tundra_tui.session.procs import (
    Proc,
    ProcInfo,
    closure,
    descend,
    environ_holds,
    proc_info,
    processes_with_marker,
    running,
    scan,
    send,
    tty_number,
)
from tundra_tui.town import Town, ensure_state_dir

DAEMON_ENV = "TUNDRA_DAEMON"
"""The daemon's pid, in its own environment (`claim_orphans`): its subprocesses carry it,
agents never do (their environment is allow-listed)."""
NO_CGROUP_ENV = "TUNDRA_NO_CGROUP"
"""Set to 1 in the daemon's environment to track processes even where cgroups work."""
SAMPLE_INTERVAL = 0.25
"""Seconds between /proc scans while tracked agents run: one scan costs a few ms."""
KILL_TIMEOUT = 5.0
"""How long a release keeps killing before it leaves the rest to the next daemon's sweep."""
_RECORD_GLOB = "containment-*.json"
_UNOWNED = ".unowned.json"
_UNOWNED_NAME = "(unowned)"


def _to_stderr(what: str, agent: str | None, error: BaseException) -> None:
    print(f"tundra: containment: {agent or '-'}: {what}: {error}", file=sys.stderr)


Report = Callable[[str, "str | None", BaseException], None]
"""Where containment says what went wrong: (what, agent or None, error)."""


# ---- cgroups ---------------------------------------------------------------------------------


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified), if anywhere."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1].replace("\\040", " "))
    return None


def own_cgroup() -> str:
    """This process's cgroup v2 path, relative to the mount ("/" at the top)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
        pass
    return "/"


def town_hash(root: Path) -> str:
    """A short stable name for a town (its resolved path), for cgroup directory names."""
    return hashlib.sha256(str(root).encode()).hexdigest()[:12]


def cgroup_pids(path: Path) -> set[int]:
    """The processes in a cgroup and every cgroup below it."""
    pids: set[int] = set()
    with contextlib.suppress(OSError, ValueError):
        pids |= {int(line) for line in (path / "cgroup.procs").read_text().split()}
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            if child.is_dir():
                pids |= cgroup_pids(child)
    return pids


def cgroup_members(path: Path) -> set[Proc]:
    """The cgroup's running processes as (pid, start time) pairs."""
    members: set[Proc] = set()
    for pid in cgroup_pids(path):
        info = proc_info(pid)
        if info is not None and not info.zombie:
            members.add(info.proc)
    return members


def kill_cgroup(path: Path) -> None:
    """SIGKILL everything in the cgroup, at once where the kernel offers cgroup.kill (5.14+)."""
    try:
        (path / "cgroup.kill").write_text("1")
        return
    except OSError:
        pass  # no cgroup.kill (before Linux 5.14), or refused: kill one by one
    # Older kernels: freeze so nothing forks while we kill, then thaw to let the kill land.
    with contextlib.suppress(OSError):
        (path / "cgroup.freeze").write_text("1")
    for pid in cgroup_pids(path):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        (path / "cgroup.freeze").write_text("0")


def remove_cgroup(path: Path) -> bool:
    """Remove an emptied cgroup and any below it, deepest first; False if one is still in use."""
    removed = True
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            if child.is_dir():
                removed = remove_cgroup(child) and removed
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return removed


# ---- records ---------------------------------------------------------------------------------


def private_dir(path: Path) -> Path:
    """Create `path` as 0700 whatever the umask, tightening it if it exists."""
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)
    return path


def agent_state_dir(town: Town, name: str) -> Path:
    """`.tundra/agents/NAME/`, each level 0700: hook settings, logs and containment records."""
    return private_dir(private_dir(ensure_state_dir(town) / "agents") / name)


def write_private(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON readable only by us (0600 whatever the umask), atomically."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    os.replace(temp, path)


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _procs(data: Mapping[str, Any]) -> set[Proc]:
    found: set[Proc] = set()
    for item in data.get("processes") or ():
        with contextlib.suppress(TypeError, ValueError):
            pid, start = item
            found.add(Proc(int(pid), int(start)))
    return found


@dataclass(frozen=True, slots=True)
class Swept:
    """What a daemon's start found left of an agent by a daemon that died, and stopped."""

    agent: str
    pids: tuple[int, ...]
    cgroups: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the daemon's log."""
        what = f"stopped {len(self.pids)} leftover process(es) {list(self.pids)}"
        if self.cgroups:
            what += f", removed cgroup {', '.join(self.cgroups)}"
        return f"swept agent {self.agent}: {what}"


def _current(future: asyncio.Future[Any] | None, loop: asyncio.AbstractEventLoop) -> bool:
    """True if `future` is pending on `loop` (one left by a closed loop never completes)."""
    return future is not None and not future.done() and future.get_loop() is loop


# ---- one agent -------------------------------------------------------------------------------


@dataclass(eq=False)
class AgentContainment:
    """One agent's processes: the cgroup it was started in, or the set tracked for it."""

    town: TownContainment
    name: str
    mark: str
    cgroup: Path | None
    record: Path | None
    """Where what a next daemon needs is written; None for an agent outside any town."""
    pid: int = 0
    start: int = 0
    """The agent's own process, once spawned."""
    tty: int = 0
    """Its terminal as tty_nr, while the daemon holds the PTY open (0 after)."""
    tracked: set[Proc] = field(default_factory=set)
    """Running processes seen in its tree (tracking only)."""
    seen: dict[int, int] = field(default_factory=dict)
    """pid -> start time of processes once seen, kept while the number leads a session
    or group, so an orphan of a dead leader is still known by its session."""
    _release: asyncio.Future[set[int]] | None = None
    _persisted: frozenset[Proc] | None = None

    def join(self) -> None:
        """In the forked child, before exec: move into the agent's cgroup.

        Nothing but an open and a write: this runs between fork and exec. A failure is
        not raised; the parent sees the child outside the cgroup and tracks it.
        """
        if self.cgroup is None:
            return
        try:
            fd = os.open(self.cgroup / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError:
            pass

    def adopt(self, pid: int, device: str) -> None:
        """The agent runs as `pid` on `device`: check its cgroup took it, and start watching."""
        info = proc_info(pid)
        self.pid, self.start = pid, info.start if info is not None else 0
        self.tty = tty_number(device)
        if self.cgroup is not None and pid not in cgroup_pids(self.cgroup):
            # The join failed (or the agent is already gone): fall back to tracking.
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()
            self.cgroup = None
        if self.cgroup is None:
            self.tracked.add(Proc(self.pid, self.start))
            self.seen[self.pid] = self.start
        self.persist()
        self.town.watch()

    def persist(self) -> None:
        """Write what a next daemon needs to find this agent's processes (on change only)."""
        path = self.record
        current = frozenset(self.tracked)
        if path is None or self._persisted == current:
            return
        document = {
            "version": 1,
            "agent": self.name,
            "mark": self.mark,
            "daemon": os.getpid(),
            "cgroup": str(self.cgroup) if self.cgroup is not None else None,
            "processes": sorted([p.pid, p.start] for p in current),
        }
        try:
            write_private(path, document)
            self._persisted = current
        except OSError as error:
            self.town.report(f"cannot record its processes in {path}", self.name, error)

    def abandon(self) -> None:
        """The spawn failed: nothing ran, so just remove what `enter` made."""
        if self.cgroup is not None:
            remove_cgroup(self.cgroup)
        if self.record is not None:
            self.record.unlink(missing_ok=True)
        self.town.forget(self)

    async def members(self) -> set[Proc]:
        """Its running processes now (the tracked ones after a fresh scan)."""
        if self._release is not None and self._release.done():
            return set()  # released: everything was killed and it is watched no more
        if self.cgroup is not None:
            return await asyncio.to_thread(cgroup_members, self.cgroup)
        await self.town.refresh()
        return {proc for proc in self.tracked if running(proc)}

    async def kill(self) -> set[int]:
        """SIGKILL every process it has now; the pids signalled, for reaping."""
        members = await self.members()
        if self.cgroup is not None:
            kill_cgroup(self.cgroup)
        else:
            for proc in members:
                send(proc, signal.SIGKILL)
        return {proc.pid for proc in members}

    async def release(self) -> set[int]:
        """Kill whatever is left of the agent, remove its cgroup and its record (once).

        Called when the agent stops or its own process exits: an escaped child
        of an ended agent could no longer be stopped by `at agent stop`, and
        would run beside the next copy. Returns the pids killed, for reaping.
        """
        if self._release is None:
            self._release = asyncio.ensure_future(self._do_release())
        return await asyncio.shield(self._release)

    async def _do_release(self) -> set[int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KILL_TIMEOUT
        killed: set[int] = set()
        while True:
            signalled = await self.kill()
            if not signalled:
                break
            killed |= signalled
            if loop.time() >= deadline:
                error = ProcessLookupError(f"pids {sorted(signalled)} outlived SIGKILL")
                self.town.report("left for the next daemon's sweep", self.name, error)
                self.persist()
                return killed  # the record stays: the next daemon's sweep tries again
            await asyncio.sleep(0.02)
        if self.cgroup is not None and not remove_cgroup(self.cgroup):
            await asyncio.sleep(0.05)  # the last exits may still be unwinding
            remove_cgroup(self.cgroup)
        if self.record is not None:
            try:
                self.record.unlink(missing_ok=True)
            except OSError as error:
                self.town.report("cannot remove its record", self.name, error)
        self.town.forget(self)
        return killed


# ---- one town --------------------------------------------------------------------------------


class TownContainment:
    """The containment of every agent of one town in this process, and its /proc sampler."""

    _towns: ClassVar[dict[Path | None, TownContainment]] = {}

    def __init__(self, town: Town | None, *, use_cgroup: bool | None = None) -> None:
        self.town = town
        """None for agents started outside any town (tests): tracked in memory only."""
        if use_cgroup is None:
            use_cgroup = os.environ.get(NO_CGROUP_ENV, "") not in ("1", "true", "yes")
        mount = cgroup2_mount() if use_cgroup and town is not None else None
        self.cgroup_dir: Path | None = None
        """`<mount>/<our cgroup>/tundra-<hash>`, or None when agents are tracked instead."""
        if mount is not None and town is not None:
            self.cgroup_dir = mount / own_cgroup().lstrip("/") / f"tundra-{town_hash(town.root)}"
        self._agents: dict[str, AgentContainment] = {}
        self._unowned: set[Proc] = set()
        self._unowned_persisted: frozenset[Proc] = frozenset()
        self._claims_orphans = False
        self.report: Report = _to_stderr
        """Set by the daemon to its log; stderr until then."""
        self._sampler: asyncio.Task[None] | None = None
        self._scanning: asyncio.Future[bool] | None = None

    @classmethod
    def of(cls, root: Path | None) -> TownContainment:
        """The one containment for the town at `root` in this process (created on first use)."""
        town = Town(root) if root is not None else None
        key = town.root if town is not None else None
        if key not in cls._towns:
            cls._towns[key] = cls(town)
        return cls._towns[key]

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> TownContainment:
        """The containment an agent with this environment belongs to.

        An agent knows its town and name from `TUNDRA_TOWN` and `TUNDRA_AGENT`
        (set by `session.launch`, never by config), as its hooks do.
        """
        root, name = env.get("TUNDRA_TOWN"), env.get("TUNDRA_AGENT")
        return cls.of(Path(root) if root and name else None)

    def enter(self, name: str, mark: str) -> AgentContainment:
        """A place for an agent about to be spawned: its cgroup made, its record written.

        The record exists before the agent does, so a crash right after the
        spawn still leaves the next daemon something to sweep.
        """
        record = None
        if self.town is not None:
            record = agent_state_dir(self.town, name) / f"containment-{mark}.json"
        agent = AgentContainment(self, name, mark, self._make_cgroup(name, mark), record)
        self._agents[mark] = agent
        agent.persist()
        return agent

    def _make_cgroup(self, name: str, mark: str) -> Path | None:
        if self.cgroup_dir is None:
            return None
        path = self.cgroup_dir / f"{name}-{mark}"
        try:
            self.cgroup_dir.mkdir(exist_ok=True)
            path.mkdir()
        except OSError as error:
            # Not ours to create (no root, no delegation, read-only): track from now on.
            if not isinstance(error, PermissionError | FileNotFoundError):
                self.report(f"cannot create cgroup {path}; tracking instead", name, error)
            self.cgroup_dir = None
            return None
        return path

    def forget(self, agent: AgentContainment) -> None:
        """An agent's containment was released: stop watching it (and /proc, if it was the last)."""
        self._agents.pop(agent.mark, None)
        if self._sampler is not None and not self._tracking() and not self._unowned:
            self._sampler.cancel()

    def agents(self) -> list[AgentContainment]:
        """The agents contained here now."""
        return list(self._agents.values())

    # ---- tracking --------------------------------------------------------------------------

    def _tracking(self) -> list[AgentContainment]:
        return [a for a in self._agents.values() if a.cgroup is None and a.pid]

    def watch(self) -> None:
        """Sample /proc while tracked agents run (needs the running loop; a no-op without)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if not self._tracking() or _current(self._sampler, loop):
            return
        self._sampler = loop.create_task(self._sample())

    async def _sample(self) -> None:
        try:
            while self._tracking() or self._unowned:
                try:
                    await self.refresh()
                except Exception as error:  # keep sampling; one bad scan must not end it
                    self.report("scanning /proc", None, error)
                await asyncio.sleep(SAMPLE_INTERVAL)
        finally:
            self._sampler = None

    async def refresh(self) -> None:
        """Scan /proc now and update every tracked agent; concurrent callers share one scan."""
        loop = asyncio.get_running_loop()
        shared = self._scanning
        if shared is not None and _current(shared, loop) and await asyncio.shield(shared):
            return
        scanning = self._scanning = loop.create_future()
        attributed = False
        try:
            self.attribute(await asyncio.to_thread(scan))
            attributed = True
        finally:
            scanning.set_result(attributed)  # False (cancelled): the waiters scan for themselves
            if self._scanning is scanning:
                self._scanning = None

    def attribute(self, table: Mapping[int, ProcInfo]) -> None:
        """Give every process of `table` that belongs to a tracked agent to that agent."""
        tracking = self._tracking()
        if not tracking and not self._unowned:
            return
        pool = object()  # the owner of the unowned
        known: dict[Proc, Any] = {proc: pool for proc in self._unowned}
        seen: dict[int, tuple[int, Any]] = {}
        ttys: dict[int, Any] = {}
        for agent in tracking:
            known.update(dict.fromkeys(agent.tracked, agent))
            seen.update({pid: (start, agent) for pid, start in agent.seen.items()})
            if agent.tty:
                ttys[agent.tty] = agent
        owner = closure(table, known, seen, ttys)
        agent_pids = {a.pid for town in self._towns.values() for a in town._agents.values()}
        orphans = self._orphans(table, owner, agent_pids, tracking, pool)
        owner.update(descend(table, {**owner, **orphans}))
        in_use = {n for info in table.values() for n in (info.pid, info.sid, info.pgid)}
        for agent in tracking:
            mine = {table[pid] for pid, who in owner.items() if who is agent}
            agent.tracked = {info.proc for info in mine if not info.zombie}
            agent.seen.update({info.pid: info.start for info in mine})
            agent.seen = {pid: start for pid, start in agent.seen.items() if pid in in_use}
            agent.persist()
        self._unowned = {
            table[pid].proc for pid, who in owner.items() if who is pool and not table[pid].zombie
        }
        self._persist_unowned()
        # Ours to collect: orphans of agents that ended on their own (never an agent itself).
        me = os.getpid()
        for pid, who in owner.items():
            info = table[pid]
            if who is not None and info.zombie and info.ppid == me and pid not in agent_pids:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)

    def _orphans(
        self,
        table: Mapping[int, ProcInfo],
        owner: Mapping[int, Any],
        agent_pids: set[int],
        tracking: list[AgentContainment],
        pool: object,
    ) -> dict[int, Any]:
        """Orphans reparented to the daemon from a tree we never saw them in (a fast
        double fork), with their owner: the one agent running when they started, or the pool.

        Only in the daemon (`claim_orphans`): its other children are its own
        subprocesses, and those, and whatever they leave behind (a detached
        `git gc`), keep its session or carry its `DAEMON_ENV` mark.
        """
        if not self._claims_orphans:
            return {}
        me, my_session = os.getpid(), os.getsid(0)
        daemon_mark = f"{DAEMON_ENV}={me}".encode()
        orphans: dict[int, Any] = {}
        for info in table.values():
            if (
                info.pid in owner
                or info.ppid != me
                or info.sid == my_session
                or info.pid in agent_pids
                or info.zombie
                or environ_holds(info.pid, daemon_mark)
            ):
                continue
            candidates = [a for a in tracking if a.start <= info.start]
            orphans[info.pid] = candidates[0] if len(candidates) == 1 else pool
        return orphans

    def claim_orphans(self) -> None:
        """This process is the town's daemon, a child subreaper: orphans it did not make are
        the agents'. Marks its own environment, so its subprocesses' orphans are told apart.
        """
        os.environ[DAEMON_ENV] = str(os.getpid())
        self._claims_orphans = True

    def _persist_unowned(self) -> None:
        current = frozenset(self._unowned)
        if self.town is None or current == self._unowned_persisted:
            return
        path = self.town.state_dir / "agents" / _UNOWNED
        try:
            private_dir(ensure_state_dir(self.town) / "agents")
            if current:
                document = {"version": 1, "processes": sorted([p.pid, p.start] for p in current)}
                write_private(path, document)
            else:
                path.unlink(missing_ok=True)
            self._unowned_persisted = current
        except (OSError, TundraError) as error:
            self.report(f"cannot record unowned processes in {path}", None, error)

    # ---- the daemon's start and end --------------------------------------------------------

    async def close(self) -> None:
        """At the daemon's end: nothing of any agent, nor the unowned, may outlive it."""
        for agent in self.agents():
            await agent.release()
        deadline = asyncio.get_running_loop().time() + KILL_TIMEOUT
        while self._unowned and asyncio.get_running_loop().time() < deadline:
            for proc in self._unowned:
                send(proc, signal.SIGKILL)
            await asyncio.sleep(0.02)
            await self.refresh()
        self._persist_unowned()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self.cgroup_dir is not None:
            with contextlib.suppress(OSError):
                self.cgroup_dir.rmdir()  # only if empty: another daemon may share it

    async def sweep(self) -> list[Swept]:
        """At the daemon's start: stop what a daemon that died left running, and clean up.

        Every record under `.tundra/agents/` is read; recorded processes are
        killed only if their start time still matches, along with whatever now
        descends from them, shares their session or group, or carries the
        agent's mark; recorded cgroups (and unrecorded ones of this town) are
        killed and removed. Returns one entry per agent that had something left.
        """
        if self.town is None:
            return []
        agents_dir = ensure_state_dir(self.town) / "agents"
        found: dict[str, tuple[set[int], list[str]]] = {}
        cgroups: set[Path] = set()
        for path in [*sorted(agents_dir.glob(f"*/{_RECORD_GLOB}")), agents_dir / _UNOWNED]:
            data = _read_record(path)
            if data is None or data.get("mark") in self._agents:
                continue  # unreadable, or an agent of ours that runs now
            name = path.parent.name if path.name != _UNOWNED else _UNOWNED_NAME
            pids, removed = found.setdefault(name, (set(), []))
            cgroup = self._recorded_cgroup(data.get("cgroup"))
            if cgroup is not None:
                cgroups.add(cgroup)
                pids |= await self._sweep_cgroup(cgroup)
                if remove_cgroup(cgroup):
                    removed.append(str(cgroup))
            else:
                pids |= await self._sweep_tracked(_procs(data), str(data.get("mark") or ""))
            with contextlib.suppress(OSError):  # read again next time: its kills are verified
                path.unlink(missing_ok=True)
        town_dirs = {c.parent for c in cgroups}
        if self.cgroup_dir is not None:
            town_dirs.add(self.cgroup_dir)
        for town_dir in sorted(town_dirs):
            for stale in sorted(town_dir.glob("*-*")) if town_dir.is_dir() else ():
                if stale.is_dir() and stale not in cgroups and stale not in self._live_cgroups():
                    name = stale.name.rsplit("-", 1)[0]
                    pids, removed = found.setdefault(name, (set(), []))
                    pids |= await self._sweep_cgroup(stale)
                    if remove_cgroup(stale):
                        removed.append(str(stale))
        return [
            Swept(name, tuple(sorted(pids)), tuple(removed))
            for name, (pids, removed) in sorted(found.items())
            if pids or removed
        ]

    def _live_cgroups(self) -> set[Path]:
        return {a.cgroup for a in self._agents.values() if a.cgroup is not None}

    def _recorded_cgroup(self, value: object) -> Path | None:
        """A recorded cgroup path, only if it is one of this town's agent cgroups.

        The record is private, but a path from a file never gets to kill an
        arbitrary cgroup: it must sit in a cgroup2 mount, in `tundra-<our hash>`.
        """
        mount = cgroup2_mount()
        if not isinstance(value, str) or not value or mount is None or self.town is None:
            return None
        path = Path(value)
        inside = path.is_relative_to(mount) and ".." not in path.parts
        ours = path.parent.name == f"tundra-{town_hash(self.town.root)}"
        return path if inside and ours and path.is_dir() else None

    async def _sweep_cgroup(self, path: Path) -> set[int]:
        killed: set[int] = set()
        deadline = asyncio.get_running_loop().time() + KILL_TIMEOUT
        while members := await asyncio.to_thread(cgroup_members, path):
            killed |= {proc.pid for proc in members}
            kill_cgroup(path)
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.02)
        return killed

    async def _sweep_tracked(self, recorded: set[Proc], mark: str) -> set[int]:
        killed: set[int] = set()
        seen = {proc.pid: (proc.start, True) for proc in recorded}
        deadline = asyncio.get_running_loop().time() + KILL_TIMEOUT
        while True:
            table = await asyncio.to_thread(scan)
            known = dict.fromkeys(recorded, True)
            marked = await asyncio.to_thread(processes_with_marker, mark) if mark else []
            for pid in marked:
                if pid in table:
                    known[table[pid].proc] = True
            owner = closure(table, known, seen, {})
            left = {table[pid].proc for pid in owner if not table[pid].zombie}
            if not left:
                return killed
            for proc in left:
                if send(proc, signal.SIGKILL):
                    killed.add(proc.pid)
                seen[proc.pid] = (proc.start, True)
            recorded |= left
            if asyncio.get_running_loop().time() >= deadline:
                return killed
            await asyncio.sleep(0.02)
