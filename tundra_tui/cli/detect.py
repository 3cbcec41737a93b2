"""`at detect`: classify agent screens read as JSON lines on stdin; needs no town.

A filter, so the detector can be checked against captures, recordings or a live
`tmux capture-pane` without a daemon: one JSON line out per JSON line in, flushed
at once, and a bad line yields an error line instead of ending the stream.

The flight recorder: `--record AGENT [--label STATE]` asks the daemon to save the
agent's screen and verdict under `.tundra/recordings/`; `--replay DIR` scores every
recording (and screen fixture) in DIR again, exiting 1 if any now differs from its
label; `--to-fixture FILE` copies a recording into the detector's fixture corpus.
`--explain AGENT` says which channel decided a running agent's state: a hook (Claude
Code's, Codex's), our OpenCode plugin, Codex's notify program, or a screen rule with
its versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.domain.agents import Runtime
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json
from tundra_tui.session.detect import detect_screen
from tundra_tui.session.recording import (
    LABELS,
    Replayed,
    read_recording,
    replay_files,
    replay_one,
    write_fixture,
)

HELP = "classify agent screens: JSON lines {agent, screen} in, {state, evidence} out"
FIXTURES = Path("tests") / "fixtures" / "screens"
"""Where `--to-fixture` writes by default (the detector's corpus, from a checkout's root)."""


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Register `at detect [--agent RUNTIME]`; `common` adds the shared --town/--debug options."""
    parser = commands.add_parser("detect", help=HELP, description=HELP)
    if common is not None:
        common(parser)
    parser.add_argument(
        "--agent",
        metavar="RUNTIME",
        choices=[runtime.value for runtime in Runtime],
        help='the runtime for lines without an "agent" field: '
        + ", ".join(runtime.value for runtime in Runtime),
    )
    recorder = parser.add_mutually_exclusive_group()
    recorder.add_argument(
        "--record",
        metavar="AGENT",
        help="save AGENT's screen and verdict under .tundra/recordings/ (needs the daemon)",
    )
    recorder.add_argument(
        "--explain",
        metavar="AGENT",
        help="say which channel decided AGENT's state: hook, notify or screen rule (needs the "
        "daemon)",
    )
    recorder.add_argument(
        "--replay",
        metavar="DIR",
        type=Path,
        help="score every recording (*.json) and screen fixture (<runtime>/<state>-*.txt) "
        "in DIR again; exit 1 if any differs from its label",
    )
    recorder.add_argument(
        "--to-fixture",
        metavar="FILE",
        type=Path,
        help="copy a recording into the fixture corpus as <runtime>/<label>-recorded-<n>.txt",
    )
    parser.add_argument(
        "--label",
        choices=LABELS,
        help="with --record: the state the screen really shows (default: the verdict)",
    )
    parser.add_argument(
        "--fixtures",
        metavar="DIR",
        type=Path,
        default=FIXTURES,
        help=f"with --to-fixture: the corpus directory (default: {FIXTURES})",
    )
    parser.add_argument(
        "--json", action="store_true", help="with --record/--replay/--explain: print JSON"
    )
    parser.set_defaults(handler=cmd_detect)


async def cmd_detect(ctx: Context) -> int:
    """Read stdin to its end, writing one result line per input line (or record, replay)."""
    args = ctx.args
    if getattr(args, "label", None) and not getattr(args, "record", None):
        raise TundraError("--label goes with --record AGENT")
    if getattr(args, "record", None):
        return await _record(ctx, args.record, args.label)
    if getattr(args, "explain", None):
        return await _explain(ctx, args.explain)
    if getattr(args, "replay", None) is not None:
        return _replay(args.replay, as_json=ctx.json)
    if getattr(args, "to_fixture", None) is not None:
        path = write_fixture(read_recording(args.to_fixture), args.fixtures)
        print(path)
        return 0
    for line in detect_lines(sys.stdin, default_agent=getattr(ctx.args, "agent", None)):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


def detect_lines(lines_in: Iterable[str], default_agent: str | None = None) -> Iterator[str]:
    """Yield one JSON result per non-blank input line; never raises on bad input."""
    for raw in lines_in:
        if raw.strip():
            yield json.dumps(_detect_one(raw, default_agent), ensure_ascii=True)


def _detect_one(raw: str, default_agent: str | None) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except ValueError as error:
        return _error(f"malformed JSON: {error}")
    if not isinstance(item, dict):
        return _error('expected a JSON object {"agent": ..., "screen": ...}')
    agent = item.get("agent") or default_agent
    if not isinstance(agent, str):
        return _error('no runtime: give --agent or an "agent" field')
    screen = item.get("screen")
    if not isinstance(screen, str):
        return _error('"screen" must be a string (the screen text, with newlines)')
    try:
        detection = detect_screen(agent, screen.splitlines())
    except TundraError as error:
        return _error(str(error))
    return detection.to_dict()


def _error(message: str) -> dict[str, Any]:
    return {"state": "unknown", "error": message}


async def _record(ctx: Context, agent: str, label: str | None) -> int:
    # Imported here: reading screens from stdin should not load the client and protocol.
    from tundra_tui.daemon.client import DaemonClient
    from tundra_tui.daemon.protocol import Record, Recorded

    client = await DaemonClient.connect(ctx.town())
    try:
        reply: Recorded = await client.call(Record(name=agent, label=label))  # type: ignore[arg-type]
    finally:
        await client.close()
    if ctx.json:
        dump_json(
            {"path": reply.path, "state": reply.state, "rule": reply.rule, "label": reply.label}
        )
    else:
        verdict = visible(f"{reply.state} ({reply.rule or 'no rule'})", single_line=True)
        path = visible(reply.path, single_line=True)
        print(f"recorded {path}: detected {verdict}, labelled {reply.label}")
    return 0


_SOURCES = {"hook": "a hook", "notify": "a notify report", "screen": "the screen"}
OPENCODE_PLUGIN_RULES = "opencode.plugin."
"""OpenCode's plugin reports as a hook does (source `hook`); its rules say it was the plugin."""


async def _explain(ctx: Context, agent: str) -> int:
    """Print which channel decided `agent`'s state, and when it entered that state."""
    from tundra_tui.daemon.client import DaemonClient
    from tundra_tui.daemon.protocol import Explain, Explained

    client = await DaemonClient.connect(ctx.town())
    try:
        reply: Explained = await client.call(Explain(name=agent))
    finally:
        await client.close()
    if ctx.json:
        dump_json(
            {
                "agent": agent,
                "state": reply.state,
                "source": reply.source,
                "rule": reply.rule,
                "matched": reply.matched,
                "versions": reply.versions,
                "since": reply.since,
                "channel": reply.channel,
            }
        )
        return 0
    for line in explain_lines(agent, reply):
        print(line)
    return 0


def explain_lines(agent: str, reply: Any) -> list[str]:
    """The lines `--explain` prints, each sanitised (the matched text is the agent's)."""

    def clean(text: str, limit: int = 200) -> str:
        return visible(text, single_line=True, limit=limit)

    since = time.strftime("%H:%M:%S UTC", time.gmtime(reply.since)) if reply.since else "?"
    lines = [f"{clean(agent, 64)}: {clean(reply.state, 40)} since {since}"]
    if reply.rule:
        source = _SOURCES.get(reply.source, clean(reply.source, 20))
        if reply.rule.startswith(OPENCODE_PLUGIN_RULES):
            source = "its OpenCode plugin"
        versions = f" ({clean(reply.versions, 80)})" if reply.versions else ""
        lines.append(f"  decided by {source}: {clean(reply.rule, 80)}{versions}")
    else:
        lines.append("  decided by: no rule matched (nothing reported)")
    if reply.matched:
        lines.append(f"  matched: {clean(reply.matched)}")
    lines.append(f"  structured channel: {clean(reply.channel, 80)}")
    return lines


def _replay(directory: Path, *, as_json: bool) -> int:
    """One line per file and a summary; 1 if any file differs or could not be read."""
    if not directory.is_dir():
        raise TundraError(f"{directory} is not a directory")
    results = [replay_one(path) for path in replay_files(directory)]
    differ = sum(1 for r in results if r.error is None and not r.ok)
    errors = sum(1 for r in results if r.error is not None)
    if as_json:
        dump_json(
            {
                "files": [r.to_dict() for r in results],
                "ok": len(results) - differ - errors,
                "differ": differ,
                "errors": errors,
            }
        )
    else:
        for result in results:
            print(_replay_line(result))
        ok = len(results) - differ - errors
        print(f"{len(results)} files: {ok} ok, {differ} differ, {errors} errors")
    return 1 if differ or errors else 0


def _replay_line(result: Replayed) -> str:
    name = visible(str(result.path), single_line=True)
    if result.error is not None:
        return f"{name}: error: {visible(result.error, single_line=True, limit=200)}"
    assert result.label is not None and result.detected is not None
    evidence = result.detected.evidence
    rule = evidence.rule if evidence else "none"
    verdict = "ok" if result.ok else "DIFF"
    label, now = result.label.value, result.detected.state.value
    return f"{name}: label {label}, detected {now}, {verdict} ({rule})"
