"""Flight recordings: an agent's screen, the detector's verdict and the operator's correction.

A recording is one JSON file (`<agent>-<UTC stamp>-<label>.json` under
`.tundra/recordings/`) that `at detect --replay` scores again with the detector as
it is now, so a state the operator saw wrongly becomes a test in one step. The
screen is data: it is stored as the emulator held it and never rendered as markup.
Screen fixtures (`tests/fixtures/screens/<runtime>/<label>-*.txt`) replay the same
way, and a recording can be written out as one.

Only the recording's own file is read or written here; the screen, verdict and
version come from the caller (the daemon).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tundra_tui.domain.errors import TundraError
from tundra_tui.session.detect import (
    Detected,
    Detection,
    Evidence,
    detect_screen,
    detection_rows,
    rules_for_custom,
)

FORMAT = 1
"""Bumped when a field changes meaning; a reader refuses formats it does not know."""
LABELS = tuple(state.value for state in Detected)
"""What an operator may say the screen really showed."""
RECORDINGS_DIR = "recordings"
"""Under the town's `.tundra/`."""
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
MAX_FILE_BYTES = 4 * 1024 * 1024
"""A recording larger than this is not read (a screen is a few kB)."""
_PATTERN_KINDS = ("idle", "working", "approval")


@dataclass(frozen=True, slots=True)
class Recording:
    """One screen as an agent showed it, what the detector said, and what was true."""

    agent: str
    runtime: str
    version: str
    """The CLI's version as `<command> --version` gave it, or `unknown`."""
    lines: list[str]
    cursor: tuple[int, int]
    verdict: Detection
    """What the daemon had decided when the screen was recorded (from a hook or the screen)."""
    label: Detected
    """The operator's correction: what the screen really shows (the verdict if they agreed)."""
    recorded_at: str
    """UTC, ISO 8601."""
    patterns: Mapping[str, str] = field(default_factory=dict)
    """A custom runtime's idle/working/approval patterns, so replay scores as the daemon did."""
    read_rows: int | None = None
    """How many rows above the last non-blank one the daemon gives the detector (it reads
    the bottom of the screen); replay reads the same. None: the whole screen."""

    @property
    def read(self) -> list[str]:
        """The rows the detector reads (`detection_rows`): the bottom `read_rows` up to the last
        non-blank one (Codex: from its last prompt, when that stands higher)."""
        if self.read_rows is None:
            return list(self.lines)
        return detection_rows(self.runtime, partial(bottom_rows, self.lines), self.read_rows)

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object."""
        return {
            "format": FORMAT,
            "agent": self.agent,
            "runtime": self.runtime,
            "version": self.version,
            "recorded_at": self.recorded_at,
            "label": self.label.value,
            "verdict": self.verdict.to_dict(),
            "patterns": dict(self.patterns),
            "read_rows": self.read_rows,
            "cursor": list(self.cursor),
            "lines": list(self.lines),
        }

    def rescore(self) -> Detection:
        """What the detector says about this screen now. Raises TundraError (unknown runtime,
        bad custom pattern)."""
        custom = None
        if self.patterns:
            custom = rules_for_custom(*(self.patterns.get(kind) for kind in _PATTERN_KINDS))
        return detect_screen(self.runtime, self.read, custom=custom)


def bottom_rows(lines: Sequence[str], count: int) -> list[str]:
    """The last `count` rows, ignoring blank rows at the very bottom (as the emulator gives
    the detector)."""
    last = len(lines)
    while last > 0 and not lines[last - 1].rstrip():
        last -= 1
    return list(lines[max(0, last - count) : last]) if count > 0 else []


def parse_label(text: str) -> Detected:
    """An operator's label, or TundraError naming the allowed ones."""
    try:
        return Detected(text)
    except ValueError:
        raise TundraError(f"label {text!r} is not one of {', '.join(LABELS)}") from None


def recording_from_dict(data: object) -> Recording:
    """Validate a parsed file; TundraError (one line, says what is wrong) if it is not one."""
    if not isinstance(data, dict):
        raise TundraError("not a recording: expected a JSON object")
    if data.get("format") != FORMAT:
        raise TundraError(f"unsupported recording format {data.get('format')!r}")
    for key in ("agent", "runtime", "version", "recorded_at", "label"):
        if not isinstance(data.get(key), str):
            raise TundraError(f"recording field {key!r} must be a string")
    lines = data.get("lines")
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise TundraError("recording field 'lines' must be a list of strings")
    cursor = data.get("cursor")
    if (
        not isinstance(cursor, list)
        or len(cursor) != 2
        or not all(isinstance(n, int) for n in cursor)
    ):
        raise TundraError("recording field 'cursor' must be [x, y]")
    patterns = data.get("patterns") or {}
    if not isinstance(patterns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in patterns.items()
    ):
        raise TundraError("recording field 'patterns' must map names to strings")
    read_rows = data.get("read_rows")
    if read_rows is not None and (not isinstance(read_rows, int) or read_rows < 1):
        raise TundraError("recording field 'read_rows' must be a positive number or null")
    return Recording(
        agent=data["agent"],
        runtime=data["runtime"],
        version=data["version"],
        lines=lines,
        cursor=(cursor[0], cursor[1]),
        verdict=_verdict(data.get("verdict")),
        label=parse_label(data["label"]),
        recorded_at=data["recorded_at"],
        patterns=patterns,
        read_rows=read_rows,
    )


def _verdict(data: object) -> Detection:
    if not isinstance(data, dict):
        raise TundraError("recording field 'verdict' must be an object")
    try:
        state = Detected(str(data.get("state")))
    except ValueError:
        raise TundraError(f"verdict state {data.get('state')!r} is not a state") from None
    evidence = data.get("evidence")
    if evidence is None:
        return Detection(state, None)
    if not isinstance(evidence, dict):
        raise TundraError("verdict evidence must be an object")
    source = evidence.get("source")
    if source not in ("screen", "hook", "notify", "process"):
        raise TundraError(f"evidence source {source!r} is not a source")
    detail = evidence.get("detail")
    return Detection(
        state,
        Evidence(
            source,
            str(evidence.get("rule", "")),
            str(evidence.get("matched", "")),
            None if detail is None else str(detail),
            versions=str(evidence.get("versions", "")),
        ),
    )


def file_name(agent: str, when: datetime, label: Detected) -> str:
    """`<agent>-<UTC stamp>-<label>.json`; characters a file name should not hold become `_`."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", agent).lstrip(".")[:64] or "agent"
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{safe}-{stamp}-{label.value}.json"


def write_recording(directory: Path, recording: Recording, when: datetime) -> Path:
    """Write `recording` as a new private file in `directory` (made 0700 if missing); never
    replaces a file (a second recording in the same second gets `-2`). Raises OSError."""
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(PRIVATE_DIR_MODE)
    text = json.dumps(recording.to_dict(), ensure_ascii=True, indent=1) + "\n"
    base = file_name(recording.agent, when, recording.label)
    for attempt in range(1, 1000):
        name = base if attempt == 1 else base.replace(".json", f"-{attempt}.json")
        path = directory / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), PRIVATE_FILE_MODE)
            file.write(text)
        return path
    raise OSError(f"no free file name for {base} in {directory}")


def read_recording(path: Path) -> Recording:
    """Read and validate one recording file; TundraError (one line) if it is not one."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TundraError(f"larger than {MAX_FILE_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TundraError(f"cannot read: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise TundraError(f"malformed JSON: {error}") from None
    return recording_from_dict(data)


# ---- replay ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replayed:
    """One file scored again: its label and what the detector says now (or why it could not)."""

    path: Path
    runtime: str = ""
    label: Detected | None = None
    detected: Detection | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The detector now says what the file is labelled."""
        return self.detected is not None and self.detected.state is self.label

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, as `at detect --replay --json` prints it."""
        if self.error is not None:
            return {"file": str(self.path), "error": self.error}
        assert self.label is not None and self.detected is not None
        return {
            "file": str(self.path),
            "runtime": self.runtime,
            "label": self.label.value,
            "detected": self.detected.state.value,
            "ok": self.ok,
            "evidence": self.detected.evidence.to_dict() if self.detected.evidence else None,
        }


def replay_files(directory: Path) -> Iterator[Path]:
    """Recordings (`*.json`) and screen fixtures (`<runtime>/<state>-*.txt`) under
    `directory`, sorted; other files are skipped."""
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        fixture = path.suffix == ".txt" and path.name.split("-", 1)[0] in LABELS
        if (path.suffix == ".json" and path.name != MATRIX_INDEX) or fixture:
            yield path


GENERIC_FIXTURES = "generic"
"""The fixture directory of screens in no one CLI's wording (tests/fixtures/screens)."""
MATRIX_INDEX = "index.json"
"""A fixture directory's index, not a recording: the version matrix's list of captures
(fixtures/screens/matrix/<cli>/), the long-command screens' commands (long_command/)."""
_MATRIX_SIZE = re.compile(r"\d+x\d+")
"""A version-matrix fixture sits in `matrix/<cli>/<version>/<columns>x<rows>/`."""


def replay_one(path: Path) -> Replayed:
    """Score one recording or fixture again; a bad file is a Replayed with an error."""
    try:
        if path.suffix == ".json":
            recording = read_recording(path)
            return Replayed(path, recording.runtime, recording.label, recording.rescore())
        runtime, label = path.parent.name, parse_label(path.name.split("-", 1)[0])
        if runtime == GENERIC_FIXTURES:
            runtime = "custom"  # screens of no runtime's wording: the generic layer's alone
        elif _MATRIX_SIZE.fullmatch(runtime):
            runtime = path.parents[2].name
        lines = path.read_text(encoding="utf-8").splitlines()
        return Replayed(path, runtime, label, detect_screen(runtime, lines))
    except TundraError as error:
        return Replayed(path, error=str(error))
    except (OSError, UnicodeDecodeError) as error:
        return Replayed(path, error=f"cannot read: {error}")


def fixture_text(lines: Sequence[str]) -> str:
    """A screen as a fixture file holds it: trailing spaces and blank bottom rows dropped."""
    kept = [line.rstrip() for line in lines]
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept) + "\n"


def write_fixture(recording: Recording, fixtures: Path) -> Path:
    """Copy the rows of `recording` the detector reads into
    `fixtures/<runtime>/<label>-recorded-<n>.txt` (the next free n), where the detector's
    corpus test picks it up (and scores what the daemon scored). Raises TundraError for a
    custom runtime (its rules live in one town's config, not in the detector) and OSError."""
    if recording.patterns or recording.runtime == "custom":
        raise TundraError("a custom runtime's screen has no fixture corpus (its rules are config)")
    if not re.fullmatch(r"[a-z]+", recording.runtime):
        raise TundraError(f"runtime {recording.runtime!r} is not a fixture directory name")
    directory = fixtures / recording.runtime
    directory.mkdir(parents=True, exist_ok=True)
    text = fixture_text(recording.read)
    for n in range(1, 10000):
        path = directory / f"{recording.label.value}-recorded-{n}.txt"
        try:
            with path.open("x", encoding="utf-8") as file:
                file.write(text)
        except FileExistsError:
            continue
        return path
    raise OSError(f"no free fixture name in {directory}")
