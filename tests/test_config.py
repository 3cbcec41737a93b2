"""Layered configuration: precedence, validation messages and edits that keep the user's text."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tundra_tui.config import (
    MISSING,
    AgentSpec,
    ConfigError,
    account_of,
    add_agent,
    global_config_path,
    load_config,
    remove_agent,
    set_value,
    unset_value,
)
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Lane
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.town import Town, init_town

COMMENTED = """\
# The team for the harbour project.
[general]
name = "harbour"    # shown in the title bar
max_agents = 20

# Keep the screen calm.
[ui]
max_fps = 30  # frames per second
theme = "nord"

[agents.mayor]
# Plans the work.
role = "mayor"
runtime = "claude"
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private $HOME so the global layer never touches the real one."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return path


@pytest.fixture
def town(tmp_path: Path) -> Town:
    root = tmp_path / "town"
    (root / ".tundra").mkdir(parents=True)
    (root / "tundra.toml").write_text(COMMENTED)
    return Town(root)


def _global(text: str) -> Path:
    path = global_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _error(town: Town | None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(town)
    message = str(caught.value)
    assert "\n" not in message
    return message


# Layering


def test_each_layer_overrides_the_one_below(town: Town) -> None:
    key = "general.max_ptys"
    assert (load_config(town).get(key), load_config(town).winner(key)) == (20, "default")
    _global("[general]\nmax_ptys = 7\n")
    assert (load_config(town).get(key), load_config(town).winner(key)) == (7, "global")
    town.config_path.write_text(COMMENTED.replace("max_agents = 20", "max_ptys = 8"))
    assert (load_config(town).get(key), load_config(town).winner(key)) == (8, "project")
    town.local_config_path.write_text("[general]\nmax_ptys = 9\n")
    config = load_config(town)
    assert (config.get(key), config.winner(key)) == (9, "local")
    assert [config.value_in(key, layer) for layer in ("default", "global", "project", "local")] == [
        20,
        7,
        8,
        9,
    ]


def test_without_a_town_only_default_and_global_exist(town: Town) -> None:
    _global('[ui]\ntheme = "gruvbox"\n')
    config = load_config(None)
    assert config.get("ui.theme") == "gruvbox"
    assert config.get("general.max_agents") == 20
    assert config.paths == {
        "default": None,
        "global": global_config_path(),
        "project": None,
        "local": None,
    }
    assert config.agents() == {}


def test_tables_merge_key_by_key_but_leaves_replace(town: Town) -> None:
    _global('[ui.keys]\nquit = "ctrl+q"\nhelp = "f1"\n\n[runtimes.claude]\nenv = { A = "1" }\n')
    town.local_config_path.write_text('[ui.keys]\nhelp = "?"\n\n[runtimes.claude]\nenv = {}\n')
    config = load_config(town)
    assert config.get("ui.keys") == {"quit": "ctrl+q", "help": "?"}
    assert config.winner("ui.keys.help") == "local"
    assert config.get("runtimes.claude") == {"command": "claude", "env": {}}
    general = config.get("general")
    assert general["name"] == "harbour"
    assert general["default_lane"] == "standard"


def test_lookups_of_unknown_or_unset_keys(town: Town) -> None:
    config = load_config(town)
    with pytest.raises(ConfigError, match=r"^unknown config key 'general.nope'$"):
        config.get("general.nope")
    with pytest.raises(ConfigError, match="unknown runtime 'vim'"):
        config.get("runtimes.vim.command")
    assert config.get("agents.mayor.model") is None
    assert config.value_in("agents.mayor.model", "project") is MISSING
    with pytest.raises(ConfigError, match="not set"):
        config.winner("agents.mayor.model")


def test_leaf_keys_follow_the_schema_with_dynamic_keys(town: Town) -> None:
    town.local_config_path.write_text(
        '[agents.crew-1]\nruntime = "demo"\nrole = "crew"\n[agents.mayor]\nmodel = "opus"\n'
    )
    keys = load_config(town).leaf_keys()
    assert keys[:3] == ["general.name", "general.default_lane", "general.default_priority"]
    assert keys.index("ui.theme") < keys.index("runtimes.aider.command")
    assert keys[-5:] == [
        "agents.crew-1.role",
        "agents.crew-1.runtime",
        "agents.mayor.role",
        "agents.mayor.runtime",
        "agents.mayor.model",
    ]


# Agents


def test_agent_specs_fall_back_to_runtime_tables_then_built_ins(town: Town) -> None:
    town.config_path.write_text(
        COMMENTED
        + '\n[agents.a]\nrole = "crew"\nruntime = "codex"\n'
        + '\n[agents.b]\nrole = "crew"\nruntime = "codex"\ncommand = "my-codex"\n'
        + 'args = ["--fast"]\nenv = { B = "2" }\nmodel = "o3"\nworktree = true\n'
        + '\n[agents.c]\nrole = "crew"\nruntime = "demo"\n'
        + '\n[runtimes.codex]\ncommand = "codex-beta"\nargs = ["--quiet"]\nenv = { A = "1" }\n'
    )
    agents = load_config(town).agents()
    assert list(agents) == ["mayor", "a", "b", "c"]
    assert agents["a"] == AgentSpec(
        "a", Role.CREW, Runtime.CODEX, command="codex-beta", args=["--quiet"], env={"A": "1"}
    )
    assert agents["b"] == AgentSpec(
        "b",
        Role.CREW,
        Runtime.CODEX,
        "o3",
        "my-codex",
        ["--fast"],
        {"A": "1", "B": "2"},
        worktree=True,
    )
    assert agents["c"].command == ""
    assert agents["mayor"].command == "claude"


def test_a_local_layer_can_override_one_field_of_an_agent(town: Town) -> None:
    town.local_config_path.write_text('[agents.mayor]\nmodel = "opus"\nruntime = "gemini"\n')
    mayor = load_config(town).agents()["mayor"]
    assert (mayor.role, mayor.runtime, mayor.model) == (Role.MAYOR, Runtime.GEMINI, "opus")


def test_an_agent_missing_required_fields_names_its_table(town: Town) -> None:
    town.local_config_path.write_text('# mine\n\n[agents.scout]\nmodel = "opus"\n')
    assert _error(town) == (
        f"{town.local_config_path}:3: agents.scout: missing required keys 'role', 'runtime'"
    )


def test_sample_town_validates_cleanly_with_four_agents(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "fresh", name="fresh")
    config = load_config(town)
    assert config.warnings == []
    assert config.get("general.name") == "fresh"
    agents = config.agents()
    assert list(agents) == ["mayor", "deacon", "polecat-1", "crew-1"]
    assert [a.runtime for a in agents.values()] == ["claude", "codex", "gemini", "aider"]
    text = town.config_path.read_text()
    for example in ("# [runtimes.claude]", '# command = "claude"', "# args = []", "# [ui.keys]"):
        assert example in text
    assert "# env = { ANTHROPIC_BASE_URL =" in text


# Errors in files


@pytest.mark.parametrize(
    "text",
    [
        '[general]\nname = "unterminated\n',
        "[general]\nmax_agents = 20 30\n",
        "[general\nname = 'x'\n",
        "[ui]\ntheme = 'a'\ntheme = 'b'\n",
        "[general]\nname = nope\n",
        "[a]\nb = 1\n[a.b]\nc = 1\n",
    ],
)
def test_malformed_toml_reports_file_line_and_column(town: Town, text: str) -> None:
    """Where a syntax error sits is the parser's finding, and tomlkit releases disagree
    on it (3:12 vs 3:1 for a repeated key), so the test pins our form, `FILE:LINE:COL:
    reason` with a position inside the file, and not the parser's arithmetic."""
    town.config_path.write_text(text)
    error = _error(town)
    match = re.match(rf"{re.escape(str(town.config_path))}:(\d+):(\d+): \S", error)
    assert match is not None, error
    line, column = int(match.group(1)), int(match.group(2))
    assert 1 <= line <= text.count("\n") + 1
    assert column >= 1
    assert "\n" not in error


def test_truncated_file_says_end_of_file(town: Town) -> None:
    town.config_path.write_text("[general]\nmax_agents = ")
    assert _error(town) == f"{town.config_path}:2:1: unexpected end of file"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            '[general]\nmax_agents = "many"\n',
            2,
            "general.max_agents: expected integer >= 1, got 'many'",
        ),
        (
            "[general]\ndefault_priority = 9\n",
            2,
            "general.default_priority: expected integer between 0 and 4, got 9",
        ),
        (
            "[general]\n\ndefault_lane = 'fast'\n",
            3,
            "general.default_lane: expected one of critical, standard, experimental, got 'fast'",
        ),
        ("[store]\nbusy_timeout_ms = true\n", 2, "store.busy_timeout_ms: expected integer"),
        ("[costs]\ndaily_budget_usd = inf\n", 2, "costs.daily_budget_usd: expected number >= 0"),
        ("[costs]\nmonthly_budget_usd = nan\n", 2, "got nan"),
        ("[costs]\ndaily_budget_usd = 1e309\n", 2, "got inf"),
        ("general.max_fps = 3\nui.max_fps = 0\n", 2, "ui.max_fps: expected integer between 1"),
        ("[runtimes.vim]\ncommand = 'vim'\n", 1, "runtimes.vim: unknown runtime 'vim'"),
        ("[agents.'-x']\nrole = 'crew'\n", 1, "invalid agent name '-x'"),
        ("[agents]\nmayor = { role = 'king', runtime = 'demo' }\n", 2, "agents.mayor.role"),
        ("[agents.a]\nrole='crew'\nruntime='demo'\nargs = ['a', 1]\n", 4, "agents.a.args"),
        ("[agents.a]\nrole='crew'\nruntime='demo'\nenv = { A = 1 }\n", 4, "got {'A': 1}"),
        ("general = 3\n", 1, "general: expected a table, got 3"),
        ("[general]\nname = 2024-01-01\n", 2, "expected string, got 2024-01-01"),
        ("[orchestra]\nmax_polecats = -1\n", 2, "orchestra.max_polecats: expected integer >= 0"),
        ("[orchestra.lanes.fast]\nruntime = 'demo'\n", 1, "unknown lane 'fast'"),
        ("[orchestra.lanes.critical]\nruntime = 'vim'\n", 2, "expected one of claude"),
        ("[orchestra]\n\n[orchestra.prompts]\nking = 'k.md'\n", 4, "unknown role 'king'"),
        ("[witness]\nstall_seconds = 0\n", 2, "witness.stall_seconds: expected number >= 0.1"),
        (
            "[agents.a]\nrole='crew'\nruntime='demo'\nlanes = ['critical', 'fast']\n",
            4,
            "agents.a.lanes: expected list of critical, standard, experimental",
        ),
        ("[agents.a]\nrole='crew'\nruntime='demo'\nstart = 'yes'\n", 4, "agents.a.start"),
        (
            "[refinery]\ngates = []\nstrategy = 'squash'\n",
            3,
            "refinery.strategy: expected one of rebase, merge, got 'squash'",
        ),
        ("[refinery]\ngates = 'pytest'\n", 2, "refinery.gates: expected list of strings"),
        ("[refinery]\nmax_attempts = 0\n", 2, "refinery.max_attempts: expected integer >= 1"),
    ],
)
def test_wrong_values_report_file_and_line(town: Town, text: str, line: int, message: str) -> None:
    town.config_path.write_text(text)
    assert _error(town).startswith(f"{town.config_path}:{line}: ")
    assert message in _error(town)


def test_every_error_in_a_file_is_collected(town: Town) -> None:
    town.local_config_path.write_text(
        "[general]\nmax_agents = 0\nmax_ptys = 0\n[ui]\nmax_fps = 0\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(town)
    assert str(caught.value).endswith("expected integer >= 1, got 0 (and 2 more)")
    assert [issue.line for issue in caught.value.issues] == [2, 3, 5]


def test_unknown_keys_warn_with_their_line_and_are_ignored(town: Town) -> None:
    town.config_path.write_text(COMMENTED + "\n[general.extra]\nx = 1\n\n[plugins]\nfoo = 1\n")
    town.local_config_path.write_text("[ui]\ncolour = 'red'\n")
    config = load_config(town)
    assert [str(w) for w in config.warnings] == [
        f"{town.config_path}:16: general.extra: unknown key, ignored",
        f"{town.config_path}:19: plugins: unknown key, ignored",
        f"{town.local_config_path}:2: ui.colour: unknown key, ignored",
    ]
    assert "colour" not in config.get("ui")


def test_files_over_one_mebibyte_are_refused_unparsed(town: Town) -> None:
    town.config_path.write_text("# " + "x" * (1 << 20) + "\n")
    assert _error(town) == f"{town.config_path}: larger than 1 MiB, not a configuration file"


def test_invalid_utf8_is_reported_with_its_line(town: Town) -> None:
    town.config_path.write_bytes(b'[general]\nname = "caf\xe9"\n')
    assert _error(town) == f"{town.config_path}:2:12: not valid UTF-8"


def test_a_byte_order_mark_is_ignored(town: Town) -> None:
    town.config_path.write_bytes(b"\xef\xbb\xbf" + COMMENTED.encode())
    assert load_config(town).get("general.name") == "harbour"


def test_an_unreadable_config_path_is_one_line(town: Town) -> None:
    town.local_config_path.mkdir()
    assert _error(town) == f"{town.local_config_path}: cannot read: Is a directory"


# Editing


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_set_changes_one_line_and_keeps_everything_else(town: Town) -> None:
    path = set_value(town, "ui.max_fps", "60", "project")
    after = town.config_path.read_text()
    assert path == town.config_path
    assert _changed_lines(COMMENTED, after) == [
        ("max_fps = 30  # frames per second", "max_fps = 60  # frames per second")
    ]
    assert load_config(town).get("ui.max_fps") == 60


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("general.name", '"quoted"', "quoted"),
        ("general.name", "plain words", "plain words"),
        ("general.name", "2024", "2024"),
        ("ui.theme", "true", "true"),
        ("costs.daily_budget_usd", "12", 12),
        ("costs.daily_budget_usd", "1.5", 1.5),
        ("agents.mayor.worktree", "true", True),
        ("agents.mayor.args", '["--a", "b"]', ["--a", "b"]),
        ("agents.mayor.env", '{ A = "b" }', {"A": "b"}),
        ("store.synchronous", "full", "full"),
    ],
)
def test_set_reads_the_value_as_toml_or_plain_text(
    town: Town, key: str, raw: str, expected: object
) -> None:
    set_value(town, key, raw, "local")
    config = load_config(town)
    assert config.get(key) == expected
    assert config.winner(key) == "local"


def test_set_creates_a_missing_global_file_in_a_private_directory(home: Path) -> None:
    path = set_value(None, "ui.keys.quit", "ctrl+q", "global")
    assert path == home / ".auto-tundra" / "config.toml"
    assert path.read_text() == '[ui.keys]\nquit = "ctrl+q"\n'
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_config(None).get("ui.keys.quit") == "ctrl+q"


def test_set_creates_a_missing_local_file_and_state_dir(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "tundra.toml").write_text(COMMENTED)
    town = Town(root)
    path = set_value(town, "agents.mayor.model", "opus", "local")
    assert path == town.local_config_path
    assert path.read_text() == '[agents.mayor]\nmodel = "opus"\n'
    assert stat.S_IMODE(town.state_dir.stat().st_mode) == 0o700


def test_set_keeps_the_file_mode(town: Town) -> None:
    town.config_path.chmod(0o640)
    set_value(town, "general.name", "x", "project")
    assert stat.S_IMODE(town.config_path.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("key", "raw", "layer", "message"),
    [
        ("general.colour", "red", "project", "unknown config key 'general.colour'"),
        ("general.max_agents", "lots", "project", "expected integer >= 1, got 'lots'"),
        ("general.max_agents", "0", "project", "general.max_agents: expected integer >= 1"),
        ("ui.max_fps", "1e309", "local", "expected integer between 1 and 120"),
        ("costs.daily_budget_usd", "nan", "local", "expected number >= 0, got nan"),
        ("general", "x", "project", "'general' is a table"),
        ("general.name", "x", "default", "the default layer is built in"),
        ("general.name", "x", "team", "unknown layer 'team'"),
        ("agents.scout.model", "opus", "project", "missing required keys 'role', 'runtime'"),
        ("agents.-x.model", "opus", "project", "invalid agent name '-x'"),
    ],
)
def test_set_refuses_and_leaves_files_byte_identical(
    town: Town, key: str, raw: str, layer: str, message: str
) -> None:
    town.local_config_path.write_text("# mine\n")
    before = town.config_path.read_bytes()
    with pytest.raises(ConfigError, match=re.escape(message)):
        set_value(town, key, raw, layer)
    assert town.config_path.read_bytes() == before
    assert town.local_config_path.read_text() == "# mine\n"
    assert not global_config_path().exists()


@pytest.mark.parametrize("layer", ["project", "local"])
def test_town_layers_need_a_town(layer: str) -> None:
    with pytest.raises(ConfigError, match=f"the {layer} layer needs a town"):
        set_value(None, "general.name", "x", layer)


def test_set_refuses_to_write_over_a_broken_file(town: Town) -> None:
    town.local_config_path.write_text("[general\n")
    with pytest.raises(ConfigError, match=r"local\.toml:1:9: "):
        set_value(town, "general.name", "x", "local")
    assert town.local_config_path.read_text() == "[general\n"


def test_unset_removes_a_key_and_the_lower_layer_shows_through(town: Town) -> None:
    town.local_config_path.write_text("# mine\n[ui]\nmax_fps = 10\ntheme = 'x'\n")
    unset_value(town, "ui.max_fps", "local")
    assert town.local_config_path.read_text() == "# mine\n[ui]\ntheme = 'x'\n"
    config = load_config(town)
    assert (config.get("ui.max_fps"), config.winner("ui.max_fps")) == (30, "project")


def test_unset_of_a_key_that_is_not_there(town: Town) -> None:
    before = town.config_path.read_bytes()
    with pytest.raises(NotFound, match=r"'general\.max_ptys' is not set in"):
        unset_value(town, "general.max_ptys", "project")
    assert town.config_path.read_bytes() == before
    with pytest.raises(NotFound):
        unset_value(town, "ui.theme", "local")
    with pytest.raises(ConfigError, match="unknown config key"):
        unset_value(town, "ui.nope", "project")


def test_add_then_remove_agent_restores_the_file(town: Town) -> None:
    add_agent(town, "polecat.2", runtime="demo", role="polecat", model="small")
    added = town.config_path.read_text()
    assert added == COMMENTED + (
        '\n[agents."polecat.2"]\nrole = "polecat"\nruntime = "demo"\nmodel = "small"\n'
    )
    assert load_config(town).agents()["polecat.2"].model == "small"

    remove_agent(town, "polecat.2")
    assert town.config_path.read_text() == COMMENTED


def test_remove_agent_keeps_the_comments_of_its_neighbours(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "t")
    before = town.config_path.read_text()
    remove_agent(town, "deacon")
    after = town.config_path.read_text()
    assert "[agents.deacon]" not in after
    assert "# Patrols the town" not in after
    assert len(before.splitlines()) - len(after.splitlines()) == 5
    assert "# Works one bead at a time" in after
    assert list(load_config(town).agents()) == ["mayor", "polecat-1", "crew-1"]


def test_add_agent_to_a_file_without_agents(town: Town) -> None:
    town.config_path.write_text("[general]\nname = 'x'")
    add_agent(town, "crew-1", runtime="aider", role="crew")
    assert town.config_path.read_text() == (
        '[general]\nname = \'x\'\n\n[agents.crew-1]\nrole = "crew"\nruntime = "aider"\n'
    )


@pytest.mark.parametrize(
    ("name", "runtime", "role", "message"),
    [
        ("mayor", "claude", "mayor", "agent 'mayor' already exists in tundra.toml"),
        ("../x", "claude", "crew", "invalid agent name"),
        ("-rf", "claude", "crew", "invalid agent name"),
        ("ok", "vim", "crew", "unknown runtime 'vim'"),
        ("ok", "claude", "boss", "unknown role 'boss'"),
    ],
)
def test_add_agent_refuses_bad_input_and_writes_nothing(
    town: Town, name: str, runtime: str, role: str, message: str
) -> None:
    with pytest.raises(TundraError, match=re.escape(message)):
        add_agent(town, name, runtime=runtime, role=role)
    assert town.config_path.read_text() == COMMENTED


def test_remove_agent_that_is_missing_names_where_it_lives(town: Town) -> None:
    with pytest.raises(NotFound, match=r"^agent 'ghost' is not in tundra.toml$"):
        remove_agent(town, "ghost")
    town.local_config_path.write_text("[agents.scout]\nrole = 'crew'\nruntime = 'demo'\n")
    with pytest.raises(NotFound, match=r"it is defined in .*local\.toml"):
        remove_agent(town, "scout")
    assert town.config_path.read_text() == COMMENTED


def test_remove_agent_refuses_to_orphan_a_local_override(town: Town) -> None:
    town.local_config_path.write_text("[agents.mayor]\nmodel = 'opus'\n")
    with pytest.raises(ConfigError, match=r"not changed: .*missing required keys"):
        remove_agent(town, "mayor")
    assert town.config_path.read_text() == COMMENTED


def test_unsetting_a_tables_last_key_leaves_no_empty_table(town: Town) -> None:
    town.config_path.write_text('[general]\nname = "t"\n\n[ui]\ntheme = "x"\n')
    unset_value(town, "ui.theme", "project")
    assert "[ui]" not in town.config_path.read_text()
    town.config_path.write_text('[ui]\n# why the theme is set\ntheme = "x"\n')
    unset_value(town, "ui.theme", "project")
    assert "# why the theme is set" in town.config_path.read_text(), "a comment is kept"
    town.config_path.write_text('[ui]\ntheme = "x"\n\n[ui.keys]\nquit = "q"\n')
    unset_value(town, "ui.theme", "project")
    assert 'quit = "q"' in town.config_path.read_text()


def test_dispatch_keys_have_their_defaults(town: Town) -> None:
    config = load_config(town)
    expected = {
        "orchestra.max_polecats": 3,
        "orchestra.polecat_runtime": "claude",
        "orchestra.target_branch": "",
        "orchestra.ready_timeout_seconds": 120.0,
        "orchestra.prompt_attempts": 3,
        "orchestra.prompt_max_chars": 4000,
        "orchestra.polecat_retire_seconds": 60.0,
        "witness.idle_nudge_seconds": 300.0,
        "witness.max_nudges": 2,
        "witness.stall_seconds": 600.0,
        "witness.approval_wait_seconds": 300.0,
        "notify.command": "",
        "mail.max_batch": 20,
        "mail.stop_hook": True,
    }
    assert {key: config.get(key) for key in expected} == expected
    assert config.get("orchestra.lanes") == {} and config.get("orchestra.prompts") == {}


def test_refinery_keys_have_their_defaults_and_gates_none_until_set(town: Town) -> None:
    config = load_config(town)
    expected = {
        "refinery.enabled": True,
        "refinery.gates": None,
        "refinery.gate_timeout_seconds": 900.0,
        "refinery.max_attempts": 3,
        "refinery.strategy": "rebase",
    }
    assert {key: config.get(key) for key in expected} == expected
    town.config_path.write_text("[refinery]\ngates = []\n")
    assert load_config(town).get("refinery.gates") == [], "[] is not unset: no gates"


def test_agent_lanes_and_start_reach_the_spec(town: Town) -> None:
    town.config_path.write_text(
        "[orchestra.lanes.critical]\nruntime = 'demo'\n[orchestra.prompts]\ncrew = 'p/crew.md'\n"
        "[agents.c]\nrole = 'crew'\nruntime = 'demo'\nlanes = ['critical']\nstart = true\n"
        "[agents.d]\nrole = 'crew'\nruntime = 'demo'\n"
    )
    config = load_config(town)
    specs = config.agents()
    assert specs["c"].lanes == (Lane.CRITICAL,) and specs["c"].start
    assert specs["d"].lanes == () and not specs["d"].start
    assert config.get("orchestra.lanes.critical.runtime") == "demo"
    assert config.get("orchestra.prompts.crew") == "p/crew.md"


def test_add_agent_to_the_local_layer_keeps_tundra_toml(town: Town) -> None:
    before = town.config_path.read_text()
    add_agent(town, "polecat-9", runtime="demo", role="polecat", layer="local", worktree=True)
    assert town.config_path.read_text() == before
    assert "[agents.polecat-9]" in town.local_config_path.read_text()
    spec = load_config(town).agents()["polecat-9"]
    assert spec.worktree and spec.role is Role.POLECAT
    with pytest.raises(ConfigError, match="already exists"):
        add_agent(town, "polecat-9", runtime="demo", role="polecat", layer="local")
    with pytest.raises(ConfigError, match="already exists"):
        add_agent(town, "mayor", runtime="demo", role="polecat", layer="local")


def test_init_in_git_records_the_checked_out_branch(tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(repo)], check=True)
    town, _ = init_town(repo)
    assert load_config(town).get("orchestra.target_branch") == "trunk"
    plain, _ = init_town(tmp_path / "plain")
    assert load_config(plain).get("orchestra.target_branch") == ""
    assert '# target_branch = "main"' in plain.config_path.read_text()


def test_cost_keys_defaults_prices_with_dots_and_accounts(town: Town) -> None:
    config = load_config(town)
    expected = {
        "costs.daily_budget_usd": 0.0,
        "costs.warn_percent": 80,
        "costs.price_table": "genai-prices",
        "costs.rate_limit_pause_seconds": 900.0,
        "costs.attribution_grace_seconds": 120.0,
        "daemon.kpi_snapshot_interval_seconds": 300,
    }
    assert {key: config.get(key) for key in expected} == expected
    assert config.get("costs.prices") == {} and config.get("convoys") == {}
    # Model names hold dots: quoted, the key round-trips through the file.
    path = set_value(town, 'costs.prices."gpt-5.5".input', "5", "project")
    set_value(town, 'costs.prices."gpt-5.5".output', "30", "project")
    set_value(town, "convoys.release.budget_usd", "25", "project")
    set_value(town, "runtimes.claude.account", "work", "project")
    assert '[costs.prices."gpt-5.5"]' in path.read_text()
    config = load_config(town)
    assert config.warnings == []
    assert config.get("costs.prices") == {"gpt-5.5": {"input": 5.0, "output": 30.0}}
    assert config.get('costs.prices."gpt-5.5".input') == 5.0
    assert config.get("convoys.release.budget_usd") == 25.0
    assert account_of(config, "mayor", Runtime.CLAUDE) == "work"
    assert account_of(config, "polecat-9", "codex") == "codex"
    set_value(town, "agents.mayor.account", "own", "local")
    assert account_of(load_config(town), "mayor", "claude") == "own"
    with pytest.raises(TundraError, match="warn_percent"):
        set_value(town, "costs.warn_percent", "0", "project")


def test_the_sample_costs_block_is_valid_once_uncommented(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "fresh", name="fresh")
    text = town.config_path.read_text()
    start = text.index("# [costs]")
    block = text[start : text.index("\n\n", start)].splitlines()
    town.config_path.write_text(
        text + "\n" + "\n".join(line[2:] for line in block if not line.startswith("# A ")) + "\n"
    )
    config = load_config(town)
    assert config.warnings == []
    assert config.get("costs.prices") == {
        "my-model": {"input": 3.0, "output": 15.0, "cache_read": 0.3}
    }
    assert config.get("convoys.release.budget_usd") == 25.0
