"""What a configuration file may say: every key, its type, limits and default, as data.

Loading, `at config set` and the tests all answer "is this key and value valid?"
from the one SCHEMA table here. No file I/O: the key syntax and the line finder
for messages work on text handed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, time
from enum import Enum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from tundra_tui.domain.agents import Role, Runtime, parse_runtime, validate_agent_name
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.redact import redact


@dataclass
class ConfigIssue:
    """A problem at a place in a file, printed the way editors and compilers do."""

    path: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.key}: {self.message}"


class ConfigError(TundraError):
    """A configuration file, key or value the user must fix; `issues` lists every one found."""

    def __init__(self, message: str, issues: list[ConfigIssue] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


class _Missing(Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing.MISSING
"""Stands for "no value" where None could be mistaken for one."""

Kind = Literal["str", "int", "float", "bool", "list", "table", "enum"]
_KIND_NAMES: dict[str, str] = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "true or false",
    "list": "list of strings",
    "table": "table of strings",
}


@dataclass(frozen=True)
class Leaf:
    """One settable key. `<...>` segments in `pattern` stand for names the user chooses."""

    pattern: str
    kind: Kind
    default: Any = MISSING
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False

    @cached_property
    def parts(self) -> tuple[str, ...]:
        """The pattern's segments (cached: the checks read them for every leaf, every key)."""
        return tuple(self.pattern.split("."))

    def describe(self) -> str:
        """What a valid value looks like, in the words of an error message."""
        if self.kind == "enum":
            return "one of " + ", ".join(self.choices)
        if self.kind == "list" and self.choices:
            return "list of " + ", ".join(self.choices)
        base = _KIND_NAMES[self.kind]
        if self.low is not None and self.high is not None:
            return f"{base} between {self.low} and {self.high}"
        if self.low is not None:
            return f"{base} >= {self.low}"
        return base

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit here, or None if it does."""
        return None if self._fits(value) else f"expected {self.describe()}, got {show(value)}"

    def _fits(self, value: Any) -> bool:
        if self.kind in ("int", "float"):
            number = self.kind == "float" and isinstance(value, float) and math.isfinite(value)
            if not (number or (isinstance(value, int) and not isinstance(value, bool))):
                return False
            return (self.low is None or value >= self.low) and (
                self.high is None or value <= self.high
            )
        checks: dict[str, Callable[[Any], bool]] = {
            "str": lambda v: isinstance(v, str),
            "enum": lambda v: isinstance(v, str) and v in self.choices,
            "bool": lambda v: isinstance(v, bool),
            "list": lambda v: (
                isinstance(v, list)
                and all(isinstance(x, str) and (not self.choices or x in self.choices) for x in v)
            ),
            "table": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        }
        return checks[self.kind](value)


_LANES = ("critical", "standard", "experimental")
_ROLES = tuple(role.value for role in Role)
_RUNTIMES = tuple(runtime.value for runtime in Runtime)

SCHEMA: tuple[Leaf, ...] = (
    Leaf("general.name", "str", ""),
    Leaf("general.default_lane", "enum", "standard", choices=_LANES),
    Leaf("general.default_priority", "int", 2, low=0, high=4),
    Leaf("general.max_agents", "int", 20, low=1),
    Leaf("general.max_ptys", "int", 20, low=1),
    Leaf("store.busy_timeout_ms", "int", 5000, low=0),
    Leaf("store.synchronous", "enum", "normal", choices=("normal", "full")),
    Leaf("ui.theme", "str", "textual-dark"),
    Leaf("ui.refresh_interval_ms", "int", 2000, low=50),
    Leaf("ui.terminal_scrollback_lines", "int", 5000, low=0),
    Leaf("ui.max_fps", "int", 30, low=1, high=120),
    Leaf("ui.keys.<binding>", "str"),
    Leaf("ui.approval_popup", "bool", True),
    Leaf("ui.approval_arm_ms", "int", 600, low=0, high=5000),
    Leaf("ui.agents_layout", "enum", "grid", choices=("single", "split", "grid")),
    Leaf("ui.away_minutes", "int", 30, low=0, high=7 * 24 * 60),
    Leaf("daemon.heartbeat_interval_seconds", "int", 30, low=1),
    Leaf("daemon.patrol_interval_seconds", "int", 60, low=1),
    Leaf("daemon.kpi_snapshot_interval_seconds", "int", 300, low=1),
    Leaf("daemon.restart_max", "int", 5, low=0),
    Leaf("daemon.restart_window_seconds", "int", 300, low=1),
    Leaf("daemon.subscriber_queue", "int", 512, low=8),
    Leaf("costs.daily_budget_usd", "float", 0.0, low=0),
    Leaf("costs.monthly_budget_usd", "float", 0.0, low=0),
    # Costs: budgets warn at warn_percent and stop new beads at 100%; prices come from the kept
    # genai-prices table unless [costs.prices."<model>"] overrides them ($ per million tokens).
    Leaf("costs.warn_percent", "int", 80, low=1, high=100),
    Leaf("costs.price_table", "enum", "genai-prices", choices=("genai-prices", "none")),
    Leaf("costs.prices.<model>.input", "float", low=0),
    Leaf("costs.prices.<model>.output", "float", low=0),
    Leaf("costs.prices.<model>.cache_read", "float", low=0),
    Leaf("costs.prices.<model>.cache_write", "float", low=0),
    Leaf("costs.prices.<model>.cache_write_1h", "float", low=0),
    Leaf("costs.rate_limit_pause_seconds", "float", 900.0, low=1),
    Leaf("costs.attribution_grace_seconds", "float", 120.0, low=0),
    Leaf("convoys.<convoy>.budget_usd", "float", low=0),
    # Dispatch: how many polecats at once, what they run, and how the work is handed over.
    Leaf("orchestra.max_polecats", "int", 3, low=0),
    Leaf("orchestra.polecat_runtime", "enum", "claude", choices=_RUNTIMES),
    Leaf("orchestra.target_branch", "str", ""),
    Leaf("orchestra.lanes.<lane>.runtime", "enum", choices=_RUNTIMES),
    Leaf("orchestra.prompts.<role>", "str"),
    Leaf("orchestra.ready_timeout_seconds", "float", 120.0, low=1),
    Leaf("orchestra.prompt_attempts", "int", 3, low=1),
    Leaf("orchestra.prompt_max_chars", "int", 4000, low=200),
    Leaf("orchestra.polecat_retire_seconds", "float", 60.0, low=0),
    # The refinery: gates run on each submitted branch rebased onto the target, then it lands.
    # `gates` unset: the refinery waits ("needs gates"); [] merges with no gates.
    Leaf("refinery.enabled", "bool", True),
    Leaf("refinery.gates", "list"),
    Leaf("refinery.gate_timeout_seconds", "float", 900.0, low=1),
    Leaf("refinery.max_attempts", "int", 3, low=1),
    Leaf("refinery.strategy", "enum", "rebase", choices=("rebase", "merge")),
    Leaf("witness.idle_nudge_seconds", "float", 300.0, low=0.1),
    Leaf("witness.max_nudges", "int", 2, low=0),
    Leaf("witness.stall_seconds", "float", 600.0, low=0.1),
    Leaf("witness.approval_wait_seconds", "float", 300.0, low=0.1),
    Leaf("notify.command", "str", ""),
    Leaf("mail.max_batch", "int", 20, low=1),
    Leaf("mail.stop_hook", "bool", True),
    Leaf("runtimes.<runtime>.command", "str"),
    Leaf("runtimes.<runtime>.args", "list"),
    Leaf("runtimes.<runtime>.env", "table"),
    Leaf("runtimes.<runtime>.approve_keys", "str"),
    Leaf("runtimes.<runtime>.deny_keys", "str"),
    Leaf("runtimes.<runtime>.idle_pattern", "str"),
    Leaf("runtimes.<runtime>.working_pattern", "str"),
    Leaf("runtimes.<runtime>.approval_pattern", "str"),
    Leaf("runtimes.<runtime>.auto_trust", "bool"),
    Leaf("runtimes.<runtime>.account", "str"),
    Leaf("runtimes.<runtime>.private_home", "bool", False),
    Leaf("agents.<agent>.role", "enum", choices=_ROLES, required=True),
    Leaf("agents.<agent>.runtime", "enum", choices=_RUNTIMES, required=True),
    Leaf("agents.<agent>.model", "str"),
    Leaf("agents.<agent>.command", "str"),
    Leaf("agents.<agent>.args", "list"),
    Leaf("agents.<agent>.env", "table"),
    Leaf("agents.<agent>.worktree", "bool"),
    Leaf("agents.<agent>.lanes", "list", choices=_LANES),
    Leaf("agents.<agent>.start", "bool"),
    Leaf("agents.<agent>.account", "str"),
)

BUILTIN_COMMANDS: Mapping[Runtime, str] = {
    Runtime.CLAUDE: "claude",
    Runtime.CODEX: "codex",
    Runtime.GEMINI: "gemini",
    Runtime.OPENCODE: "opencode",
    Runtime.AIDER: "aider",
    # Resolved where agents are launched: demo is our own program, custom has no default.
    Runtime.DEMO: "",
    Runtime.CUSTOM: "",
}
"""The command each runtime runs when no layer overrides `runtimes.<runtime>.command`."""


def _bad_runtime(name: str) -> str | None:
    try:
        parse_runtime(name)
    except TundraError as error:
        return str(error)
    return None


def _bad_choice(what: str, choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(name: str) -> str | None:
        if name in choices:
            return None
        return f"unknown {what} {name!r}: expected one of {', '.join(choices)}"

    return check


def _bad_agent(name: str) -> str | None:
    try:
        validate_agent_name(name)
    except TundraError as error:
        return str(error)
    return None


_NAME_CHECKS: dict[str, Callable[[str], str | None]] = {
    "<binding>": lambda name: None,
    "<runtime>": _bad_runtime,
    "<agent>": _bad_agent,
    "<lane>": _bad_choice("lane", _LANES),
    "<role>": _bad_choice("role", _ROLES),
    "<model>": lambda name: None if name else "a model name cannot be empty",
    "<convoy>": lambda name: None if name else "a convoy name cannot be empty",
}


@lru_cache(maxsize=1024)
def _matching(path: tuple[str, ...]) -> tuple[Leaf, ...]:
    """Leaves whose pattern starts with `path`; raises when `path` misnames a runtime or agent.
    Cached: loading a config asks about every key of every file, and `at tui` loads it at
    start and again at each brake check (a scan of the schema per key took 10-20 ms a load)."""
    found: list[Leaf] = []
    problem: str | None = None
    for leaf in SCHEMA:
        if len(leaf.parts) < len(path):
            continue
        for segment, expected in zip(path, leaf.parts, strict=False):
            check = _NAME_CHECKS.get(expected)
            if check is None:
                if segment != expected:
                    break
            elif reason := check(segment):
                problem = problem or reason
                break
        else:
            found.append(leaf)
    if not found and problem:
        raise ConfigError(problem)
    return tuple(found)


def leaf_for(path: tuple[str, ...]) -> Leaf | None:
    """The leaf at `path`, or None if `path` is a table or unknown."""
    return next((leaf for leaf in _matching(path) if len(leaf.parts) == len(path)), None)


def is_table(path: tuple[str, ...]) -> bool:
    """True if `path` holds other keys (`general`, `agents.mayor`, the root `()`)."""
    return any(len(leaf.parts) > len(path) for leaf in _matching(path))


def sort_key(leaf: Leaf, path: tuple[str, ...]) -> tuple[int, tuple[str, ...], int]:
    """Schema order, with the keys of one runtime or agent kept together by name."""
    names = tuple(seg for seg, part in zip(path, leaf.parts, strict=True) if part.startswith("<"))
    first = next((i for i, part in enumerate(leaf.parts) if part.startswith("<")), None)
    group = leaf.parts if first is None else leaf.parts[: first + 1]
    rank = next(i for i, other in enumerate(SCHEMA) if other.parts[: len(group)] == group)
    return rank, names, SCHEMA.index(leaf)


def default_layer() -> dict[str, Any]:
    """The built-in layer: every default in SCHEMA plus each runtime's command."""
    data: dict[str, Any] = {}
    for leaf in SCHEMA:
        if leaf.default is not MISSING and "<" not in leaf.pattern:
            put(data, leaf.parts, leaf.default)
    for runtime, command in BUILTIN_COMMANDS.items():
        put(data, ("runtimes", runtime.value, "command"), command)
    return data


@dataclass(frozen=True)
class Problem:
    """Something wrong at `path`; `fatal` problems stop loading, the rest are warnings."""

    path: tuple[str, ...]
    message: str
    fatal: bool = True


def check_tree(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Return `data` without the keys the schema does not know, and every problem in it."""
    problems: list[Problem] = []
    return _check(data, (), problems), problems


def _check(data: Mapping[str, Any], path: tuple[str, ...], out: list[Problem]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in data.items():
        sub = (*path, key)
        try:
            leaf = leaf_for(sub)
            table = leaf is None and is_table(sub)
        except ConfigError as error:
            out.append(Problem(sub, str(error)))
            continue
        if leaf is not None:
            problem = leaf.problem(value)
            if problem:
                out.append(Problem(sub, problem))
            else:
                kept[key] = value
        elif not table:
            out.append(Problem(sub, "unknown key, ignored", fatal=False))
        elif isinstance(value, dict):
            kept[key] = _check(value, sub, out)
        else:
            out.append(Problem(sub, f"expected a table, got {show(value)}"))
    return kept


def missing_required(data: Mapping[str, Any]) -> Iterator[Problem]:
    """Tables in merged `data` lacking required keys, one problem per table."""
    missing: dict[tuple[str, ...], list[str]] = {}
    for leaf in SCHEMA:
        if leaf.required:
            for table_path in _instances(data, leaf.parts[:-1]):
                if leaf.parts[-1] not in dig(data, table_path):
                    missing.setdefault(table_path, []).append(f"'{leaf.parts[-1]}'")
    for table_path, keys in missing.items():
        noun = "key" if len(keys) == 1 else "keys"
        yield Problem(table_path, f"missing required {noun} {', '.join(keys)}")


def _instances(data: Mapping[str, Any], parts: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Concrete paths in `data` that match `parts`, placeholders standing for any key."""
    if not parts:
        yield ()
        return
    head, rest = parts[0], parts[1:]
    keys = list(data) if head.startswith("<") else [head] if head in data else []
    for key in keys:
        if isinstance(data[key], dict):
            for tail in _instances(data[key], rest):
                yield (key, *tail)


def dig(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path` in nested dicts, or MISSING."""
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set `path` in nested dicts, creating the tables on the way."""
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


_SEGMENT = r"""[A-Za-z0-9_-]+|"[^"\\\n]*"|'[^'\n]*'"""
_DOTTED_KEY = rf"(?:{_SEGMENT})(?:[ \t]*\.[ \t]*(?:{_SEGMENT}))*"
_HEADER_RE = re.compile(rf"[ \t]*\[\[?[ \t]*({_DOTTED_KEY})[ \t]*\]")
_ASSIGN_RE = re.compile(rf"[ \t]*({_DOTTED_KEY})[ \t]*=")
_SEGMENT_RE = re.compile(rf"[ \t]*({_SEGMENT})[ \t]*(\.|$)")
_BARE_RE = re.compile(r"[A-Za-z0-9_-]+")


def split_key(key: str) -> tuple[str, ...]:
    """`agents."polecat.1".role` -> ("agents", "polecat.1", "role")."""
    parts: list[str] = []
    position = 0
    while position < len(key):
        match = _SEGMENT_RE.match(key, position)
        if match is None or (match.group(2) == "." and match.end() == len(key)):
            raise ConfigError(f"invalid config key {key!r}")
        segment = match.group(1)
        parts.append(segment[1:-1] if segment[0] in "\"'" else segment)
        position = match.end()
    if not parts:
        raise ConfigError("empty config key")
    return tuple(parts)


def join_key(path: tuple[str, ...]) -> str:
    """The dotted key for `path`, quoting segments that are not bare keys."""
    return ".".join(_quote(part) for part in path)


def _quote(part: str) -> str:
    if _BARE_RE.fullmatch(part):
        return part
    return f"'{part}'" if '"' in part else f'"{part}"'


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The first line mentioning each key path, from `[table]` headers and `key =` lines.

    Best effort by design: good enough to point at a mistake, not a TOML parser.
    """
    index: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.split("\n"), 1):
        if header := _HEADER_RE.match(line):
            table = full = split_key(header[1])
        elif assign := _ASSIGN_RE.match(line):
            full = (*table, *split_key(assign[1]))
        else:
            continue
        for depth in range(1, len(full) + 1):
            index.setdefault(full[:depth], number)
    return index


def line_of(index: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of `path`, or of its nearest enclosing key (an inline table, say)."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in index:
            return index[path[:depth]]
    return None


def show(value: Any) -> str:
    """A value as a short, one-line quote for an error message, never quoting a secret.

    Error messages reach the terminal and CI logs: the strings of a table (env, often
    keys) are masked, and token shapes anywhere are redacted.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict):
        value = {name: "••••" if isinstance(item, str) else item for name, item in value.items()}
    text = redact(repr(value))
    return text if len(text) <= 40 else text[:37] + "..."
