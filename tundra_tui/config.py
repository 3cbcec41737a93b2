"""Layered configuration: built-in defaults < global < project (tundra.toml) < local.

Files are read and edited with tomlkit so that `at config set` and `at agent add`
change one line and keep the user's comments, order and formatting. Every edit
is checked by loading the whole result first: an edit that would leave a layer
unloadable is refused and nothing is written.
"""

from __future__ import annotations

import copy
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tundra_tui.config_schema import (
    BUILTIN_COMMANDS,
    MISSING,
    ConfigError,
    ConfigIssue,
    Leaf,
    check_tree,
    default_layer,
    dig,
    is_table,
    join_key,
    key_lines,
    leaf_for,
    line_of,
    missing_required,
    sort_key,
    split_key,
)
from tundra_tui.domain.agents import (
    Role,
    Runtime,
    parse_role,
    parse_runtime,
    validate_agent_name,
)
from tundra_tui.domain.beads import Lane
from tundra_tui.domain.errors import NotFound
from tundra_tui.domain.redact import SECRET_NAME, redact
from tundra_tui.town import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    SHARED_FILE_MODE,
    TOWN_FILE,
    Town,
    ensure_state_dir,
    write_text_atomic,
)

if TYPE_CHECKING:
    from tomlkit.items import Item
    from tomlkit.toml_document import TOMLDocument

# tomlkit is imported where a file is edited or a value spelled: reading the config (every
# command, and `at tui` before its first frame) parses with tomllib, several times faster.

__all__ = [
    "LAYERS",
    "MISSING",
    "AgentSpec",
    "ConfigError",
    "ConfigIssue",
    "LayeredConfig",
    "add_agent",
    "command_trust_problem",
    "global_config_path",
    "load_config",
    "mask_args",
    "mask_url",
    "masked",
    "remove_agent",
    "set_value",
    "short_path",
    "show_value",
    "unset_value",
]

LAYERS = ("default", "global", "project", "local")
"""Lowest precedence first."""
_FILE_LAYERS = LAYERS[1:]
MAX_CONFIG_BYTES = 1 << 20
"""Larger files are refused unread: configuration never needs it, and parsing is not free."""

_LAYER_MODES = {"global": SHARED_FILE_MODE, "project": SHARED_FILE_MODE, "local": PRIVATE_FILE_MODE}
"""The most each layer's file is written with: local.toml lives with the town's state."""
_SECRET_WORD = re.compile(r"token|key|secret|passw|auth|credential|cookie", re.IGNORECASE)
"""In a flag, a NAME=value or a header name: the value beside it is a secret. Broader than
redact's SECRET_NAME, since `--key X` on a command line is as telling as API_KEY."""
_WRITERS = {0o022: "group and others", 0o020: "group", 0o002: "others"}
_ENV_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", re.DOTALL)
_HEADER_ARG = re.compile(r"([A-Za-z0-9_-]+)[ \t]*:[ \t]*(.+)", re.DOTALL)
_POSITION_SUFFIX = re.compile(r" at line \d+ col \d+$")
_TOMLLIB_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def global_config_path() -> Path:
    """The user's own settings, shared by every town; found through $HOME."""
    return Path.home() / ".auto-tundra" / "config.toml"


@dataclass(frozen=True)
class AgentSpec:
    """An agent as configured, with its command resolved through its runtime."""

    name: str
    role: Role
    runtime: Runtime
    model: str = ""
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    worktree: bool = False
    lanes: tuple[Lane, ...] = ()
    """Lanes whose beads dispatch may hand this (crew) agent; none: it takes no dispatch."""
    start: bool = False
    """Started by `at up`."""


@dataclass
class LayeredConfig:
    """Every layer's validated values, kept apart so each value can name its source."""

    layers: dict[str, dict[str, Any]]
    paths: dict[str, Path | None]
    """Each file layer's path, whether or not the file exists; None where there is none."""
    warnings: list[ConfigIssue]
    """Unknown keys: reported, then ignored."""

    def get(self, key: str) -> Any:
        """The winning value of a leaf (None if no layer sets it), or a table merged over layers."""
        path = _known(key)
        if leaf_for(path) is None:
            merged: dict[str, Any] = {}
            for layer in LAYERS:
                node = dig(self.layers[layer], path)
                if isinstance(node, dict):
                    _merge(merged, node, path)
            return merged
        for layer in reversed(LAYERS):
            value = dig(self.layers[layer], path)
            if value is not MISSING:
                return copy.deepcopy(value)
        return None

    def winner(self, key: str) -> str:
        """The highest layer that sets `key`."""
        path = _known(key)
        for layer in reversed(LAYERS):
            if dig(self.layers[layer], path) is not MISSING:
                return layer
        raise ConfigError(f"config key '{key}' is not set in any layer")

    def value_in(self, key: str, layer: str) -> Any:
        """What one layer says about `key`, or MISSING."""
        if layer not in LAYERS:
            raise ConfigError(f"unknown layer '{layer}': expected one of {', '.join(LAYERS)}")
        return copy.deepcopy(dig(self.layers[layer], _known(key)))

    def leaf_keys(self) -> list[str]:
        """Every key some layer sets, in schema order, one runtime's or agent's keys together."""
        found: dict[tuple[str, ...], Leaf] = {}
        for data in self.layers.values():
            found.update((path, leaf) for leaf, path in _leaves(data, ()))
        ordered = sorted(found, key=lambda path: sort_key(found[path], path))
        return [join_key(path) for path in ordered]

    def agents(self) -> dict[str, AgentSpec]:
        """The team, merged across layers; unset command and args come from the runtime."""
        runtimes: dict[str, Any] = self.get("runtimes")
        team: dict[str, AgentSpec] = {}
        for name, table in self.get("agents").items():
            runtime = Runtime(table["runtime"])
            inherited = runtimes.get(runtime.value, {})
            team[name] = AgentSpec(
                name=name,
                role=Role(table["role"]),
                runtime=runtime,
                model=table.get("model", ""),
                command=table.get("command", inherited.get("command", BUILTIN_COMMANDS[runtime])),
                args=table.get("args", inherited.get("args", [])),
                # Agent env adds to (and overrides) its runtime's env rather than replacing it,
                # so a runtime-wide endpoint survives a per-agent key.
                env={**inherited.get("env", {}), **table.get("env", {})},
                worktree=table.get("worktree", False),
                lanes=tuple(Lane(lane) for lane in table.get("lanes", [])),
                start=table.get("start", False),
            )
        return team


SECRET_MASK = "••••"
"""Shown in place of each value of a table of strings (env, often API keys) and of any
value whose name says it is a secret."""


def show_value(value: Any) -> str:
    """One layer's value in its TOML spelling ("" for MISSING); table values are masked.

    Other values are exact, since an editor starts from them: pass them through
    `masked` first where they are only shown.
    """
    if value is MISSING:
        return ""
    if isinstance(value, dict):
        inner = ", ".join(f"{join_key((name,))} = {SECRET_MASK}" for name in value)
        return f"{{{inner}}}" if inner else "{}"
    import tomlkit

    return str(tomlkit.item(value).as_string())


def masked(key: str, value: Any) -> Any:
    """`value` (of `key`, "" if unknown) as it may be shown to anyone looking over a shoulder.

    Tables of strings (env) keep their names only; a value whose own name says secret
    (`...api_key`) is masked whole; argument lists lose what `mask_args` hides; any
    other string loses its well-known token shapes; MISSING and other values pass
    through. Never write the result back: it is for eyes only.
    """
    return _masked(split_key(key) if key else (), value)


def _masked(path: tuple[str, ...], value: Any) -> Any:
    if isinstance(value, dict):
        leaf = leaf_for(path) if path else None
        if leaf is not None and leaf.kind == "table":
            return {name: SECRET_MASK for name in value}
        return {name: _masked((*path, name), item) for name, item in value.items()}
    if isinstance(value, list):
        return mask_args(value)
    if isinstance(value, str):
        return SECRET_MASK if value and path and SECRET_NAME.search(path[-1]) else redact(value)
    return value


def mask_args(args: Iterable[str]) -> list[str]:
    """A command's arguments as they may be shown, one for one.

    Masked: the value of a secret-named flag (`--token X`, `--api-key=X`), of a
    secret-named `NAME=value` or `Name: value` (a header), and a URL's password and
    query values; every well-known token shape anywhere (`ghp_…`, `AKIA…`, a Slack
    webhook, `Bearer …`) is redacted.
    """
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("--"):
            shown.append(SECRET_MASK)
            hide_next = False
            continue
        hide_next = False
        flag, equals, _value = arg.partition("=")
        if arg.startswith("-") and _SECRET_WORD.search(flag):
            shown.append(f"{flag}={SECRET_MASK}" if equals else redact(arg))
            hide_next = not equals
        elif (assign := _ENV_ASSIGN.fullmatch(arg)) and _SECRET_WORD.search(assign[1]):
            shown.append(f"{assign[1]}={SECRET_MASK}")
        elif (header := _HEADER_ARG.fullmatch(arg)) and _SECRET_WORD.search(header[1]):
            shown.append(f"{header[1]}: {SECRET_MASK}")
        elif "://" in arg:
            shown.append(mask_url(arg))
        else:
            shown.append(redact(arg))
    return shown


def mask_url(url: str) -> str:
    """A URL without its password, with every query value masked and token shapes redacted
    (a Slack webhook's secret is its path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{parts.username}:{SECRET_MASK}@{host}" if parts.password else parts.netloc
        if parts.password and parts.port:
            netloc += f":{parts.port}"
        query = "&".join(
            f"{pair.partition('=')[0]}={SECRET_MASK}" for pair in parts.query.split("&")
        )
        shown = urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "", ""))
    except ValueError:
        return SECRET_MASK
    return redact(shown)


def command_trust_problem(config: LayeredConfig, agent: str) -> str | None:
    """Why agent `agent` must not be started from this configuration, or None when it may.

    Whoever can write a file that says what an agent runs (its command, args, env or
    runtime, or its runtime's) runs code as us the next time it starts. So every
    layer file that sets anything for the agent or its runtime must be ours (or
    root's) and writable by no one else. Pass the config the agent will be started
    from: the files are looked at after it was read, and a file someone else put in
    place since then is theirs, so it is refused too. Raises NotFound for an agent the
    configuration does not have.
    """
    runtime = config.get("agents").get(agent, {}).get("runtime")
    if runtime is None:
        raise NotFound(f"no agent named '{agent}' in the configuration")
    me = os.geteuid()
    for layer in _FILE_LAYERS:
        path = config.paths[layer]
        data = config.layers[layer]
        if path is None or (
            dig(data, ("agents", agent)) is MISSING and dig(data, ("runtimes", runtime)) is MISSING
        ):
            continue
        try:
            info = path.stat()
        except OSError as error:
            return f"refusing to start {agent}: cannot check {path}: {error.strerror or error}"
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid not in (me, 0):
            return (
                f"refusing to start {agent}: {path} sets what it runs and belongs to another "
                f"user (uid {info.st_uid})"
            )
        if mode & 0o022:
            return (
                f"refusing to start {agent}: {path} sets what it runs and is writable by "
                f"{_WRITERS[mode & 0o022]} (mode {mode:04o}); run `chmod go-w {path}`"
            )
    return None


def account_of(config: LayeredConfig, agent: str, runtime: Runtime | str) -> str:
    """The account an agent's calls are billed and rate limited on: `agents.<a>.account`,
    else `runtimes.<rt>.account`, else the runtime's name. A name, never a secret."""
    name = runtime.value if isinstance(runtime, Runtime) else str(runtime)
    own = config.get("agents").get(agent, {}).get("account")
    if own:
        return str(own)
    shared = config.get("runtimes").get(name, {}).get("account")
    return str(shared) if shared else name


def short_path(path: Path, root: Path | None = None) -> str:
    """`path` as an operator would type it: relative to `root` (the town) or to `~`."""
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    home = Path.home()
    if path.is_relative_to(home):
        return str(Path("~") / path.relative_to(home))
    return str(path)


def load_config(town: Town | None) -> LayeredConfig:
    """Read and validate every layer; raise ConfigError for the first file with errors."""
    return _load(town, {})


def set_value(town: Town | None, key: str, raw: str, layer: str) -> Path:
    """Set `key` in one layer's file from command-line text; return the file written.

    `raw` is read as a TOML value when it is one (20, true, ["a"], {A = "b"}),
    else as a plain string. For string keys any text that is not a quoted
    string is taken literally, so `set general.name 2024` needs no quotes.
    """
    path = _known(key)
    leaf = leaf_for(path)
    if leaf is None:
        raise ConfigError(f"'{key}' is a table: set one of its keys")
    item = _value_item(raw, leaf)
    problem = leaf.problem(item.unwrap())
    if problem:
        raise ConfigError(f"{key}: {problem}")

    def change(doc: TOMLDocument, file: Path) -> str:
        import tomlkit

        node: Any = doc
        for depth, part in enumerate(path[:-1]):
            if part not in node:
                # Only the innermost new table gets a [header]; outer ones stay implicit.
                node[part] = tomlkit.table(is_super_table=depth < len(path) - 2)
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"{file}: {join_key(path[: depth + 1])} is not a table")
        node[path[-1]] = item
        return doc.as_string()

    return _edit(town, layer, change)


def unset_value(town: Town | None, key: str, layer: str) -> Path:
    """Remove `key` (a value or a whole table) from one layer's file; return the file written."""
    path = _known(key)

    def change(doc: TOMLDocument, file: Path) -> str:
        chain: list[Any] = [doc]
        for part in path[:-1]:
            node = chain[-1]
            chain.append(node.get(part) if isinstance(node, dict) else None)
        if not isinstance(chain[-1], dict) or path[-1] not in chain[-1]:
            raise NotFound(f"'{key}' is not set in {file}")
        del chain[-1][path[-1]]
        # A table left holding nothing (not even a comment of the user's) goes too, so
        # `[ui]` does not linger after its last key is unset.
        for depth in range(len(chain) - 1, 0, -1):
            if not _bare(chain[depth]):
                break
            del chain[depth - 1][path[depth - 1]]
        return doc.as_string()

    return _edit(town, layer, change)


def _bare(table: Any) -> bool:
    """True for a tomlkit table with no keys, comments or sub-tables left in it."""
    from tomlkit.items import Null, Table, Whitespace

    body = getattr(getattr(table, "value", None), "body", None)
    if not isinstance(table, Table) or body is None:
        return False
    return all(key is None and isinstance(item, Whitespace | Null) for key, item in body)


def add_agent(
    town: Town,
    name: str,
    *,
    runtime: str,
    role: str,
    model: str = "",
    layer: str = "project",
    worktree: bool = False,
) -> None:
    """Append an `[agents.NAME]` table to one layer's file (tundra.toml by default; the
    polecats dispatch makes go to the local layer, so tundra.toml stays the user's),
    refusing a name any layer already has."""
    validate_agent_name(name)
    fields = {"role": parse_role(role).value, "runtime": parse_runtime(runtime).value}
    if model:
        fields["model"] = model
    if layer != "project" and name in load_config(town).get("agents"):
        raise ConfigError(f"agent '{name}' already exists")

    def change(doc: TOMLDocument, file: Path) -> str:
        import tomlkit

        agents = doc.get("agents")
        if isinstance(agents, dict) and name in agents:
            where = TOWN_FILE if layer == "project" else str(file)
            raise ConfigError(f"agent '{name}' already exists in {where}")
        # Appended as text so the new table always lands at the end after a blank line;
        # tomlkit would slot it into the first block of agents.
        text = doc.as_string()
        lines = [f"[{join_key(('agents', name))}]"]
        lines += [f"{key} = {tomlkit.string(value).as_string()}" for key, value in fields.items()]
        if worktree:
            lines.append("worktree = true")
        separator = "" if not text.strip() else "\n" if text.endswith("\n") else "\n\n"
        return f"{text}{separator}" + "\n".join(lines) + "\n"

    _edit(town, layer, change)


def remove_agent(town: Town, name: str) -> None:
    """Delete `[agents.NAME]` from tundra.toml; other layers are left to their owner."""
    validate_agent_name(name)

    def change(doc: TOMLDocument, file: Path) -> str:
        agents = doc.get("agents")
        if not isinstance(agents, dict) or name not in agents:
            raise NotFound(f"agent '{name}' is not in {TOWN_FILE}{_defined_elsewhere(town, name)}")
        del agents[name]
        # The blank line before a table belongs to the one above it; do not let them pile up.
        return doc.as_string().rstrip("\n") + "\n"

    _edit(town, "project", change)


def _defined_elsewhere(town: Town, name: str) -> str:
    """A hint naming the other files that define agent `name`, for a failed removal."""
    try:
        config = load_config(town)
    except ConfigError:
        return ""
    files = [
        str(config.paths[layer])
        for layer in ("global", "local")
        if dig(config.layers[layer], ("agents", name)) is not MISSING
    ]
    return f" (it is defined in {', '.join(files)})" if files else ""


def _known(key: str) -> tuple[str, ...]:
    """Split a dotted key, refusing one the schema does not know."""
    path = split_key(key)
    try:
        if leaf_for(path) is not None or is_table(path):
            return path
    except ConfigError as error:
        raise ConfigError(f"unknown config key '{key}': {error}") from None
    raise ConfigError(f"unknown config key '{key}'")


def _leaves(
    data: Mapping[str, Any], path: tuple[str, ...]
) -> Iterator[tuple[Leaf, tuple[str, ...]]]:
    for key, value in data.items():
        sub = (*path, key)
        leaf = leaf_for(sub)
        if leaf is not None:
            yield leaf, sub
        elif isinstance(value, dict):
            yield from _leaves(value, sub)


def _merge(into: dict[str, Any], data: Mapping[str, Any], path: tuple[str, ...]) -> None:
    """Overlay `data` on `into`: tables merge key by key; leaves, even lists and env, replace."""
    for key, value in data.items():
        sub = (*path, key)
        if isinstance(value, dict) and leaf_for(sub) is None:
            _merge(into.setdefault(key, {}), value, sub)
        else:
            into[key] = copy.deepcopy(value)


def _value_item(raw: str, leaf: Leaf) -> Item:
    """Command-line text as a tomlkit value, with its TOML spelling kept (0x1F stays hex)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        item = tomlkit.value(raw)
    except (TOMLKitError, ValueError):
        return tomlkit.item(raw)
    if leaf.kind in ("str", "enum") and not isinstance(item.unwrap(), str):
        return tomlkit.item(raw)
    return item


def _paths(town: Town | None) -> dict[str, Path | None]:
    return {
        "default": None,
        "global": global_config_path(),
        "project": town.config_path if town else None,
        "local": town.local_config_path if town else None,
    }


def _load(town: Town | None, overrides: Mapping[str, str]) -> LayeredConfig:
    """Load every layer, taking a layer's text from `overrides` to try an edit before writing it."""
    paths = _paths(town)
    layers: dict[str, dict[str, Any]] = {"default": default_layer()}
    files: dict[str, tuple[Path, str]] = {}
    warnings: list[ConfigIssue] = []
    for layer in _FILE_LAYERS:
        path = paths[layer]
        layers[layer] = {}
        if path is None:
            continue
        text = overrides[layer] if layer in overrides else _read_text(path)
        if text is None:
            continue
        files[layer] = path, text
        layers[layer], issues = _check_file(path, text)
        warnings += issues
    merged: dict[str, Any] = {}
    for data in layers.values():
        _merge(merged, data, ())
    missing: list[ConfigIssue] = []
    for problem in missing_required(merged):
        # Blame the lowest file that introduces the incomplete table.
        path, text = next(files[n] for n in files if dig(layers[n], problem.path) is not MISSING)
        line = line_of(key_lines(text), problem.path)
        missing.append(ConfigIssue(path, line, join_key(problem.path), problem.message))
    if missing:
        raise _error(missing)
    return LayeredConfig(layers=layers, paths=paths, warnings=warnings)


def _check_file(path: Path, text: str) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Validate one file; return its known values and warnings, or raise with all its errors."""
    try:
        # tomllib reads what tomlkit reads, several times faster; tomlkit (whose errors the
        # messages are worded from) parses only a file tomllib refuses.
        tree = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        tree = _parse(path, text).unwrap()
    data, problems = check_tree(tree)
    index = key_lines(text)
    errors: list[ConfigIssue] = []
    warnings: list[ConfigIssue] = []
    for problem in problems:
        line = line_of(index, problem.path)
        issue = ConfigIssue(path, line, join_key(problem.path), problem.message)
        (errors if problem.fatal else warnings).append(issue)
    if errors:
        raise _error(errors)
    return data, warnings


def _error(issues: list[ConfigIssue]) -> ConfigError:
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return ConfigError(f"{issues[0]}{more}", issues)


def _read_text(path: Path) -> str | None:
    """A config file's text, or None if it does not exist; anything unusable is a ConfigError."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than 1 MiB, not a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - raw.rfind(b"\n", 0, error.start)
        raise ConfigError(f"{path}:{line}:{column}: not valid UTF-8") from None
    return text.removeprefix("\ufeff")


def _parse(path: Path, text: str) -> TOMLDocument:
    """Parse with tomlkit, turning its errors into one `PATH:LINE:COL: reason` line."""
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError

    try:
        return tomlkit.parse(text)
    except ParseError as error:
        reason = _POSITION_SUFFIX.sub("", str(error))
        if reason == "Unexpected character: '\\x00'":
            reason = "unexpected end of file"
        # tomlkit counts columns from 0; editors and compilers count from 1.
        raise ConfigError(f"{path}:{error.line}:{error.col + 1}: {reason}") from None
    except TOMLKitError as error:
        # Some tomlkit errors carry no position; tomllib finds the same fault and knows where.
        raise ConfigError(f"{path}{_tomllib_position(text)}: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def _tomllib_position(text: str) -> str:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = _TOMLLIB_POSITION.search(str(error))
        if match:
            return f":{match[1]}:{match[2]}"
    return ""


def _edit(town: Town | None, layer: str, change: Callable[[TOMLDocument, Path], str]) -> Path:
    """Apply `change` to one layer's file, then write it only if the whole config still loads."""
    if layer == "default":
        raise ConfigError("the default layer is built in; choose global, project or local")
    if layer not in LAYERS:
        raise ConfigError(f"unknown layer '{layer}': expected global, project or local")
    path = _paths(town)[layer]
    if path is None:
        raise ConfigError(
            f"the {layer} layer needs a town: not in a town (run `at init` or pass --town)"
        )
    text = change(_parse(path, _read_text(path) or ""), path)
    try:
        _load(town, {layer: text})
    except ConfigError as error:
        raise ConfigError(f"{path} not changed: {error}", error.issues) from None
    try:
        if layer == "global" and not path.parent.is_dir():
            path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
            path.parent.chmod(PRIVATE_DIR_MODE)  # the umask may have taken more than asked
        elif layer == "local" and town is not None:
            ensure_state_dir(town)
        write_text_atomic(path, text, mode=_LAYER_MODES[layer])
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror or error}") from None
    return path
