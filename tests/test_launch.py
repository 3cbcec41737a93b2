"""From tundra.toml to a launch: commands, overrides, environment and Claude's hook settings."""

from __future__ import annotations

import json
import os
import stat
import sys
import uuid
from pathlib import Path

from tundra_tui.config import AgentSpec, load_config
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters import adapter_for
from tundra_tui.session.adapters.base import ENTER, ESC, keys_from_config
from tundra_tui.session.hooks import permission_ask, permission_reply
from tundra_tui.session.launch import agent_config, agent_dir, relaunch
from tundra_tui.town import Town, init_town


def test_claude_agent_gets_hook_settings_and_its_identity(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "t")
    specs = load_config(town).agents()
    config = agent_config(specs["mayor"], town, base_env={"PATH": "/usr/bin"})
    argv = config.launch.argv
    assert argv[0] == "claude" and argv[1] == "--settings"
    settings_path = Path(argv[2])
    assert stat.S_IMODE(settings_path.stat().st_mode) == 0o600
    settings = json.loads(settings_path.read_text())
    command = settings["hooks"]["PermissionRequest"][0]["hooks"][0]["command"]
    assert command.endswith("-m tundra_tui hook-event PermissionRequest")
    assert command.startswith(sys.executable)
    assert settings["hooks"]["PermissionRequest"][0]["hooks"][0]["timeout"] >= 600
    assert set(settings["hooks"]) >= {"SessionStart", "UserPromptSubmit", "Stop"}
    env = config.launch.env
    assert (env["TUNDRA_AGENT"], env["TUNDRA_TOWN"]) == ("mayor", str(town.root))
    # Our `at` comes first: /usr/bin/at is POSIX `at`.
    assert env["PATH"] == f"{os.path.dirname(sys.executable)}:/usr/bin"
    assert "TUNDRA_BEAD" not in env
    with_bead = agent_config(specs["mayor"], town, base_env={}, bead=12).launch.env
    assert with_bead["TUNDRA_BEAD"] == "12"
    assert with_bead["PATH"] == os.path.dirname(sys.executable)


def test_overrides_from_tundra_toml(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "t")
    town.config_path.write_text(
        town.config_path.read_text()
        + '\n[runtimes.codex]\ncommand = "codex-beta --fast"\n'
        + 'env = { OPENAI_BASE_URL = "http://127.0.0.1:9" }\n'
        + '\n[agents.crew-2]\nrole = "crew"\nruntime = "codex"\nargs = ["-m", "o9"]\n'
        + 'env = { EXTRA = "1" }\n'
    )
    spec = load_config(town).agents()["crew-2"]
    config = agent_config(spec, town, base_env={})
    argv = config.launch.argv
    assert argv[:2] == ["codex-beta", "--fast"] and argv[-2:] == ["-m", "o9"]
    assert argv[2] == "-c" and argv[3].startswith("notify=")
    assert config.launch.env["OPENAI_BASE_URL"] == "http://127.0.0.1:9"
    assert config.launch.env["EXTRA"] == "1"


def test_adapter_keys_and_config_overrides() -> None:
    assert adapter_for(Runtime.AIDER).approve_keys == b"y\r"
    assert adapter_for(Runtime.CODEX).deny_keys == ESC
    assert adapter_for(Runtime.OPENCODE).approve_keys == ENTER
    custom = adapter_for(
        Runtime.CUSTOM,
        {"approve_keys": "a Enter", "deny_keys": "Esc", "approval_pattern": r"\[y/n\]"},
    )
    assert (custom.approve_keys, custom.deny_keys) == (b"a\r", ESC)
    assert custom.patterns == {"approval": r"\[y/n\]"}
    assert keys_from_config("Down Enter") == b"\x1b[B\r"


def test_trust_dialogs_need_configured_trust() -> None:
    trust_screen = "Do you trust the files in this folder?\n● 1. Trust folder"
    assert adapter_for(Runtime.GEMINI).dialog_on(trust_screen) is None
    trusting = adapter_for(Runtime.GEMINI, {"auto_trust": True})
    dialog = trusting.dialog_on(trust_screen)
    assert dialog is not None and dialog.trust
    offer = "Make auto mode your default permission mode?"
    assert adapter_for(Runtime.CLAUDE).dialog_on(offer) is not None


def test_permission_payloads_and_replies() -> None:
    ask = permission_ask(
        {
            "tool_name": "Bash",
            "tool_input": {"command": "ls\u202e -la", "description": "x"},
            "cwd": "/w",
        }
    )
    assert (ask.tool, ask.subject, ask.cwd) == ("Bash", "ls\u202e -la", "/w")
    edit = permission_ask({"tool_name": "Write", "tool_input": {"file_path": "/w/a.py"}})
    assert edit.subject == "/w/a.py"
    allow = permission_reply(True)["hookSpecificOutput"]
    assert allow == {"hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}
    deny = permission_reply(False)["hookSpecificOutput"]["decision"]
    assert deny["behavior"] == "deny" and deny["message"]


def test_codex_is_launched_with_our_notify_program(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "t")
    spec = load_config(town).agents()["deacon"]
    argv = agent_config(spec, town, base_env={}).launch.argv
    assert argv[:2] == ["codex", "-c"]
    program = json.loads(argv[2].removeprefix("notify="))
    assert program[-2:] == ["hook-event", "codex-notify"] and program[0] == sys.executable


def _town_with(tmp_path: Path, extra: str) -> tuple[Town, dict[str, AgentSpec]]:
    town, _ = init_town(tmp_path / "t")
    town.config_path.write_text(town.config_path.read_text() + extra)
    return town, load_config(town).agents()


def test_claude_gets_a_session_id_of_ours_unless_the_operator_chose_a_session(
    tmp_path: Path,
) -> None:
    town, specs = _town_with(
        tmp_path,
        '\n[agents.resumer]\nrole = "crew"\nruntime = "claude"\nargs = ["--resume", "abc"]\n'
        '\n[agents.named]\nrole = "crew"\nruntime = "claude"\nargs = ["--session-id=1-2"]\n'
        '\n[agents.cont]\nrole = "crew"\nruntime = "claude"\ncommand = "claude -c"\n',
    )
    argv = agent_config(specs["mayor"], town, base_env={}).launch.argv
    assert argv[-2] == "--session-id" and str(uuid.UUID(argv[-1])) == argv[-1]
    again = agent_config(specs["mayor"], town, base_env={}).launch.argv
    assert again[-1] != argv[-1]  # each launch its own session, so its own log
    for name in ("resumer", "cont"):
        assert "--session-id" not in agent_config(specs[name], town, base_env={}).launch.argv
    named = agent_config(specs["named"], town, base_env={}).launch.argv
    assert [arg for arg in named if arg.startswith("--session-id")] == ["--session-id=1-2"]
    assert "--session-id" not in agent_config(specs["deacon"], town, base_env={}).launch.argv


def test_aider_gets_a_private_analytics_log_unless_it_names_one(tmp_path: Path) -> None:
    town, specs = _town_with(
        tmp_path,
        '\n[agents.ai]\nrole = "crew"\nruntime = "aider"\ncommand = "aider"\n'
        '\n[agents.own]\nrole = "crew"\nruntime = "aider"\ncommand = "aider"\n'
        'args = ["--analytics-log=/tmp/mine.jsonl"]\n',
    )
    argv = agent_config(specs["ai"], town, base_env={}).launch.argv
    assert argv[-3:-1] == ["--no-analytics", "--analytics-log"]
    assert "--analytics-disable" not in argv  # that would change the operator's settings
    log = Path(argv[-1])
    assert log.parent == agent_dir(town, "ai") / "usage" and log.name.startswith("aider-")
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    own = agent_config(specs["own"], town, base_env={}).launch.argv
    assert own[1:] == ["--analytics-log=/tmp/mine.jsonl"]


def test_a_private_home_only_when_asked_and_the_operators_env_wins(tmp_path: Path) -> None:
    town, specs = _town_with(
        tmp_path,
        '\n[agents.mine]\nrole = "crew"\nruntime = "claude"\nenv = { CLAUDE_CONFIG_DIR = "/c" }\n',
    )
    base = {"HOME": "/home/op"}
    plain = agent_config(specs["mayor"], town, base_env=base).launch.env
    assert "CLAUDE_CONFIG_DIR" not in plain and plain["HOME"] == "/home/op"
    private = {"private_home": True}
    env = agent_config(specs["mayor"], town, base_env=base, runtime_settings=private).launch.env
    home = agent_dir(town, "mayor") / "home"
    assert env["CLAUDE_CONFIG_DIR"] == str(home) and env["HOME"] == "/home/op"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    codex = agent_config(specs["deacon"], town, base_env=base, runtime_settings=private)
    assert codex.launch.env["CODEX_HOME"] == str(agent_dir(town, "deacon") / "home")
    mine = agent_config(specs["mine"], town, base_env=base, runtime_settings=private)
    assert mine.launch.env["CLAUDE_CONFIG_DIR"] == "/c"


def test_claude_and_demo_rate_limit_patterns() -> None:
    claude = adapter_for(Runtime.CLAUDE)
    assert claude.trouble("  x = 429  # a constant in code") is None
    assert claude.trouble("API Error: 429 Too Many Requests") == "rate_limited"
    assert claude.trouble('{"type":"rate_limit_error"}') == "rate_limited"
    demo = adapter_for(Runtime.DEMO)
    assert demo.trouble("Claude usage limit reached · resets in 2 minutes") == "rate_limited"
    assert demo.trouble("demo❯ ") is None


def test_a_restarted_claude_gets_a_fresh_session_id_and_others_start_as_they_were(
    tmp_path: Path,
) -> None:
    town, specs = _town_with(
        tmp_path, '\n[agents.own]\nrole = "crew"\nruntime = "claude"\nargs = ["--session-id=x"]\n'
    )
    first = agent_config(specs["mayor"], town, base_env={})
    again = relaunch(first)
    # Claude refuses an id whose log exists: "Session ID … is already in use".
    assert again.launch.argv[:-1] == first.launch.argv[:-1]
    assert again.launch.argv[-1] != first.launch.argv[-1]
    assert str(uuid.UUID(again.launch.argv[-1])) == again.launch.argv[-1]
    assert again.launch.env == first.launch.env and again.name == first.name
    own = relaunch(agent_config(specs["own"], town, base_env={})).launch.argv
    assert [a for a in own if a.startswith("--session-id=")] != ["--session-id=x"]
    codex = agent_config(specs["deacon"], town, base_env={})
    assert relaunch(codex) is codex
