"""Whose log is whose: the usage logs of each launch, told apart from the operator's own.

`at` launches every agent, so it knows each run's runtime, cwd, start and end, and the session
id or log path it asked for (`session/launch.py`). Claude's log is `projects/*/<our id>.jsonl`,
and its subagents' are `projects/*/<our id>/subagents/**/*.jsonl`; after `/clear` typed into
the agent, the new session its own `SessionStart` hook reported is its too;
Aider's is the file we named. Codex, Gemini and OpenCode are matched by the cwd and start time
their logs record, within the run's window `[start - 5 s, end + 60 s]`. When two runs match
(two agents in one cwd), the run that started last before the log's first line wins. A log
that matches no run is the operator's: never read (plan §1.5). Everything here only reads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.usage import opencode
from tundra_tui.usage.jsonl import read_head, timestamp

BEFORE: Final = timedelta(seconds=5)
AFTER: Final = timedelta(seconds=60)
HEAD_BYTES: Final = 64 << 10
"""What `source_head` reads of a log: its first lines, enough for a cwd and a start time."""


class Run(Protocol):
    """What a recorded launch (`agent_runs`) tells about its logs."""

    @property
    def id(self) -> int: ...
    @property
    def agent(self) -> str: ...
    @property
    def runtime(self) -> str: ...
    @property
    def cwd(self) -> str: ...
    @property
    def session_hint(self) -> str: ...
    @property
    def started_at(self) -> str: ...
    @property
    def ended_at(self) -> str: ...


def log_roots(runtime: str, env: Mapping[str, str], cwd: str) -> dict[str, str]:
    """Where `runtime` keeps its logs given the agent's own environment (not the daemon's).

    `{runtime: root}`; {} when the runtime's logs are not under a home (Aider, the demo) or
    there is no home. A relative path is relative to the agent's cwd.
    """
    home = env.get("HOME", "")

    def under(value: str, *parts: str) -> str:
        return os.path.normpath(os.path.join(cwd, value, *parts)) if value else ""

    root = ""
    if runtime == "claude":
        root = (
            under(env["CLAUDE_CONFIG_DIR"])
            if env.get("CLAUDE_CONFIG_DIR")
            else under(home, ".claude")
        )
    elif runtime == "codex":
        root = under(env["CODEX_HOME"]) if env.get("CODEX_HOME") else under(home, ".codex")
    elif runtime == "gemini":
        root = under(home, ".gemini")
    elif runtime == "opencode":
        data = (
            under(env["XDG_DATA_HOME"])
            if env.get("XDG_DATA_HOME")
            else under(home, ".local", "share")
        )
        root = os.path.join(data, "opencode", "opencode.db") if data else ""
    return {runtime: root} if root else {}


def session_hint(runtime: str, argv: Sequence[str]) -> str:
    """What the launch's argv says its log is: Claude's `--session-id`, Aider's
    `--analytics-log` (both are added by `session/launch.py` unless the operator chose)."""
    option = {"claude": "--session-id", "aider": "--analytics-log"}.get(runtime)
    if option is None:
        return ""
    for index, arg in enumerate(argv):
        if arg == option and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return ""


def window(run: Run) -> tuple[datetime, datetime | None]:
    """The times a log of `run` may start in: `[start - 5 s, end + 60 s]`, open while it runs."""
    start = parse_iso(run.started_at) - BEFORE
    return start, (parse_iso(run.ended_at) + AFTER) if run.ended_at else None


def candidates(
    run: Run, roots: Mapping[str, str], since: str, sessions: Collection[str] = ()
) -> list[Path | str]:
    """The logs that may be `run`'s: written to since `since` (an ISO time) under its root.
    `belongs` decides; OpenCode's are `<db>#<session>` sources already matched by cwd.
    `sessions`: Claude sessions the run's own hooks reported besides its id (`/clear`)."""
    root = roots.get(run.runtime, "")
    after = parse_iso(since).timestamp() - BEFORE.total_seconds()
    if run.runtime == "aider":
        return [Path(run.session_hint)] if run.session_hint else []
    if not root:
        return []
    base = Path(root)
    if run.runtime == "claude":
        if run.session_hint:
            paths: list[Path] = []
            for hint in (run.session_hint, *sorted(set(sessions) - {run.session_hint})):
                if not session_id_like(hint):
                    continue  # never a pattern or a path out of projects/
                paths += base.glob(f"projects/*/{hint}.jsonl")
                paths += base.glob(f"projects/*/{hint}/subagents/**/*.jsonl")
            return _recent(paths, 0)
        return _recent(
            [*base.glob("projects/*/*.jsonl"), *base.glob("projects/*/*/subagents/**/*.jsonl")],
            after,
        )
    if run.runtime == "codex":
        start, end = window(run)
        found: list[Path | str] = []
        for day in _days(start - timedelta(days=1), (end or _now()) + timedelta(days=1)):
            found.extend(_recent((base / "sessions" / day).glob("rollout-*.jsonl"), after))
        return found
    if run.runtime == "gemini":
        return _recent(base.glob("tmp/*/chats/session-*.jsonl"), after)
    if run.runtime == "opencode":
        start, end = window(run)
        until = int(end.timestamp() * 1000) if end else None
        sessions = opencode.sessions(base, run.cwd, int(start.timestamp() * 1000), until)
        return [opencode.source_path(base, session) for session in sessions]
    return []


def session_id_like(text: str) -> bool:
    """Whether `text` can name a Claude session file (never a pattern or a path)."""
    return bool(text) and not (
        "/" in text or text.startswith(".") or any(c in text for c in "*?[\\\0")
    )


def discover(run: Run, runs: Sequence[Run], roots: Mapping[str, str], since: str) -> list[str]:
    """`run`'s logs written to since `since`: its `candidates` that `belongs` gives it, as
    source paths (`usage_sources.path`). `runs` are every run that may own a log there (the
    open ones and those ended within the last minute). Blocking I/O: call from a thread."""
    found: list[str] = []
    for path in candidates(run, roots, since):
        if belongs(run, runs, path, source_head(run.runtime, path)):
            found.append(str(path))
    return found


def source_head(runtime: str, path: Path | str) -> bytes:
    """What identifies a log for `belongs`: its first lines; for an OpenCode source, its
    session's directory and creation time (read from the database, read-only)."""
    if runtime == "opencode":
        db, session = opencode.split_source(path)
        info = opencode.session_info(db, session)
        return json.dumps(info).encode() if info else b""
    return read_head(Path(path), HEAD_BYTES)


def belongs(
    run: Run, runs: Sequence[Run], path: Path | str, head: bytes, sessions: Collection[str] = ()
) -> bool:
    """Whether the log at `path` (whose first bytes are `head`, from `source_head`) is `run`'s.

    A log no run matches is the operator's and is never `run`'s. `sessions`: the Claude
    sessions the run's own hooks reported (`SessionStart` after `/clear`: a new file in the
    same project dir), which are the run's as its id is.
    """
    path = Path(path)
    if run.runtime == "demo":
        return path.stem == run.agent
    if run.runtime == "aider":
        return bool(run.session_hint) and os.path.abspath(path) == os.path.abspath(run.session_hint)
    if run.runtime == "claude" and run.session_hint:
        return claude_session(path) in {run.session_hint, *sessions}
    found = _identity(run.runtime, path, head)
    if found is None:
        return False
    same_cwd, started = found
    if run.runtime == "claude":
        # A resume (no session id of ours): a file none of our ids names, whose lines are in
        # this cwd, written to while a run without an id of its own ran there.
        session = claude_session(path)
        if any(other.session_hint == session for other in runs if other.runtime == "claude"):
            return False
        peers = [r for r in runs if r.runtime == "claude" and not r.session_hint]
    else:
        peers = [r for r in runs if r.runtime == run.runtime]
    if started is None:
        return False
    matching = [r for r in peers if same_cwd(r.cwd) and _inside(r, started)]
    winner = _latest_before(matching, started)
    return winner is not None and winner.id == run.id


def claude_session(path: Path) -> str:
    """The Claude session a transcript is part of: its own name, or for a subagent's
    (`projects/<slug>/<session>/subagents/**/agent-*.jsonl`) its parent session's."""
    for folder in path.parents:
        if folder.name == "subagents" and folder.parent.parent.parent.name == "projects":
            return folder.parent.name
    return path.stem


def _identity(
    runtime: str, path: Path, head: bytes
) -> tuple[Callable[[str], bool], datetime | None] | None:
    """Whether a cwd is the one a log says it ran in, and when it started; None if unknown."""
    lines = [_json(line) for line in head.split(b"\n")[:-1] or [head]]
    records = [line for line in lines if isinstance(line, dict)]
    if not records:
        return None
    first = records[0]
    if runtime == "codex":
        payload = first.get("payload")
        if first.get("type") != "session_meta" or not isinstance(payload, dict):
            return None
        at = timestamp(payload.get("timestamp")) or timestamp(first.get("timestamp"))
        cwd = payload.get("cwd")
        return (lambda other: other == cwd), _time(at)
    if runtime == "gemini":
        project = first.get("projectHash")
        directory = path.parent.parent.name

        def same(cwd: str) -> bool:
            if isinstance(project, str) and project:
                return hashlib.sha256(cwd.encode()).hexdigest() == project
            return os.path.basename(os.path.normpath(cwd)) == directory

        return same, _time(timestamp(first.get("startTime")))
    if runtime == "claude":
        # A resumed file starts with old lines copied: it is placed by when it was written.
        cwds = {r["cwd"] for r in records if isinstance(r.get("cwd"), str)}
        return cwds.__contains__, _mtime(path)
    if runtime == "opencode":
        where, created = first.get("directory"), first.get("time_created")
        if not isinstance(created, int | float) or isinstance(created, bool):
            return None
        return (lambda other: other == where), datetime.fromtimestamp(created / 1000, UTC)
    return None


def _inside(run: Run, moment: datetime) -> bool:
    start, end = window(run)
    return start <= moment and (end is None or moment <= end)


def _latest_before(runs: Iterable[Run], moment: datetime) -> Run | None:
    """The run that started last before `moment` (within the 5 s slack); ties: the larger id."""
    ordered = sorted(runs, key=lambda r: (r.started_at, r.id))
    before = [r for r in ordered if parse_iso(r.started_at) <= moment]
    if before:
        return before[-1]
    return ordered[0] if ordered else None


def _recent(paths: Iterable[Path], after: float) -> list[Path | str]:
    found: list[Path | str] = []
    for path in paths:
        try:
            if path.is_file() and path.stat().st_mtime >= after:
                found.append(path)
        except OSError:
            continue
    return sorted(found, key=str)


def _days(start: datetime, end: datetime) -> list[str]:
    """`YYYY/MM/DD` of every day between, in UTC and local time (Codex names its days locally)."""
    days: set[str] = set()
    moment = start
    while moment <= end + timedelta(days=1):
        for zone_moment in (moment.astimezone(UTC), moment.astimezone()):
            days.add(zone_moment.strftime("%Y/%m/%d"))
        moment += timedelta(hours=12)
    return sorted(days)


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def _time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _now() -> datetime:
    return parse_iso(iso(datetime.now(UTC)))


def _json(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
