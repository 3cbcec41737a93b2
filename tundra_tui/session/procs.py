"""Processes as the kernel knows them: read from /proc, told apart by start time, signalled safely.

A pid names a process only while it lives; the next one may get the same
number. Everything that remembers a process here remembers (pid, start time),
and a signal goes through a pidfd after the start time was checked.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER_ENV = "TUNDRA_AGENT_MARK"
"""Every agent's environment carries a unique mark, so its descendants can be found.

Not named *TOKEN*/*KEY*/*SECRET*: some CLIs scrub such variables from what they run."""


@dataclass(frozen=True, slots=True, order=True)
class Proc:
    """One process for its whole life: a pid alone may name another process tomorrow."""

    pid: int
    start: int
    """Start time in clock ticks after boot (/proc/PID/stat field 22)."""


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """The fields of /proc/PID/stat that tie a process to an agent."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    tty: int
    start: int
    zombie: bool

    @property
    def proc(self) -> Proc:
        return Proc(self.pid, self.start)


def proc_info(pid: int) -> ProcInfo | None:
    """What /proc says about `pid` now, or None if it is gone."""
    try:
        # Raw os calls: the sampler reads every process's stat several times a second.
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            text = os.read(fd, 4096)
        finally:
            os.close(fd)
        fields = text.rsplit(b")", 1)[1].split()
        return ProcInfo(
            pid=pid,
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            tty=int(fields[4]),
            start=int(fields[19]),
            zombie=fields[0] in (b"Z", b"X"),
        )
    except (OSError, IndexError, ValueError):
        return None


def scan() -> dict[int, ProcInfo]:
    """Every process we can see, by pid (one read of /proc/PID/stat each)."""
    table: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = proc_info(int(name))
            if info is not None:
                table[info.pid] = info
    return table


def running(proc: Proc) -> bool:
    """True while `proc` itself (not a reused pid) runs; a zombie has ended."""
    info = proc_info(proc.pid)
    return info is not None and info.start == proc.start and not info.zombie


def send(proc: Proc, sig: int) -> bool:
    """Signal `proc` if it is still that process; never a pid reused since it was seen.

    A pidfd pins the process while its start time is checked, so the signal
    cannot land on a newcomer that took the pid in between.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return False
    except OSError:
        pidfd = -1  # no pidfd_open (old kernel): the check below still rules out most reuse
    try:
        info = proc_info(proc.pid)
        if info is None or info.start != proc.start:
            return False
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(proc.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def environ_holds(pid: int, entry: bytes) -> bool:
    """True if `entry` (`NAME=value`) is in the process's environment (ours to read)."""
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def carries_mark(pid: int, mark: str | None = None) -> bool:
    """True if the process's environment holds this agent's mark, or any agent's when None."""
    if mark is not None:
        return environ_holds(pid, f"{MARKER_ENV}={mark}".encode())
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    prefix = f"{MARKER_ENV}=".encode()
    return any(entry.startswith(prefix) for entry in entries)


def processes_with_marker(mark: str) -> list[int]:
    """PIDs whose environment holds `MARKER_ENV=mark` (readable for our own processes)."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and carries_mark(int(entry.name), mark)
    ]


def tty_number(device: str) -> int:
    """A terminal device (/dev/pts/7) as /proc/PID/stat's tty_nr encodes it; 0 if unknown."""
    try:
        rdev = os.stat(device).st_rdev
    except OSError:
        return 0
    major, minor = os.major(rdev), os.minor(rdev)
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def closure(
    table: Mapping[int, ProcInfo],
    known: Mapping[Proc, Any],
    seen: Mapping[int, tuple[int, Any]],
    ttys: Mapping[int, Any],
) -> dict[int, Any]:
    """Who owns which process in `table`: the owners of `known` processes, and by inheritance.

    A process belongs to an owner when it is one of its `known` processes, has
    its controlling terminal (`ttys`), is in a session or process group led by
    a pid in its `seen` (pid -> start time; a leader still alive with another
    start time means the number was reused), or descends from one that does.
    """
    owner: dict[int, Any] = {}
    for info in table.values():
        found = known.get(info.proc)
        if found is None and info.tty:
            found = ttys.get(info.tty)
        for number in (info.sid, info.pgid):
            if found is not None:
                break
            entry = seen.get(number)
            leader = table.get(number)
            if entry is not None and (leader is None or leader.start == entry[0]):
                found = entry[1]
        if found is not None:
            owner[info.pid] = found
    return descend(table, owner)


def descend(table: Mapping[int, ProcInfo], owner: dict[int, Any]) -> dict[int, Any]:
    """Extend `owner` to every descendant (by parent pid) of an owned process."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    queue = list(owner)
    while queue:
        parent = queue.pop()
        for child in children.get(parent, ()):
            if child not in owner:
                owner[child] = owner[parent]
                queue.append(child)
    return owner
