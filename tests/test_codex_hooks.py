"""Codex's hooks as a structured channel, read from payloads recorded from Codex CLI 0.169.0.

The fixtures under tests/fixtures/channels/codex-0.169.0/ are what the real CLI sent
its hooks on stdin (RUN: touch approved.txt, approved), and the trust entry it wrote
after "Trust all": our `-c` overrides must carry the hash Codex itself computes.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from tundra_tui.cli.detect import explain_lines
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.detect import Detected
from tundra_tui.session.hooks import (
    CODEX_HOOK_VERSIONS,
    CODEX_TRUST_SOURCE,
    channel_of,
    codex_has_hooks,
    codex_hook_args,
    codex_trusted_hash,
    hook_detection,
    permission_ask,
    permission_rule,
    with_codex_hooks,
)

FIXTURES = Path(__file__).parent / "fixtures" / "channels" / "codex-0.169.0"
HOOK = ("/venv/bin/python", "-m", "tundra_tui", "hook-event")


def payload(event: str) -> dict[str, object]:
    return dict(json.loads((FIXTURES / f"{event}.json").read_text()))


def test_our_trust_hash_is_the_one_codex_wrote() -> None:
    written = tomllib.loads((FIXTURES / "trust-written-by-codex.toml").read_text())
    state = written["hooks"]["state"][f"{CODEX_TRUST_SOURCE}:stop:0:0"]
    command = "python3 /tmp/wx/hooklog.py /tmp/wx/hooks.jsonl Stop"
    assert codex_trusted_hash("stop", command, 600) == state["trusted_hash"]
    assert codex_trusted_hash("stop", command, 30) != state["trusted_hash"]


def _overrides(args: list[str]) -> dict[str, object]:
    """The `-c key=value` pairs as Codex reads them (the value is TOML)."""
    assert args[::2] == ["-c"] * (len(args) // 2)
    merged: dict[str, object] = {}
    for item in args[1::2]:
        key, value = item.split("=", 1)
        merged[key] = tomllib.loads(f"v = {value}")["v"]
    return merged


def test_every_hook_we_add_is_trusted_by_its_own_hash() -> None:
    overrides = _overrides(codex_hook_args(HOOK))
    state = overrides.pop("hooks.state")
    assert isinstance(state, dict)
    keys = {"SessionStart", "UserPromptSubmit", "PostToolUse", "Stop", "PermissionRequest"}
    assert set(overrides) == {f"hooks.{event}" for event in keys}
    for name, groups in overrides.items():
        event = name.removeprefix("hooks.")
        assert isinstance(groups, list) and len(groups) == 1
        (handler,) = groups[0]["hooks"]
        assert handler["type"] == "command"
        assert shlex.split(handler["command"]) == [*HOOK, event]
        key = {"PermissionRequest": "permission_request", "UserPromptSubmit": "user_prompt_submit"}
        key |= {"SessionStart": "session_start", "PostToolUse": "post_tool_use", "Stop": "stop"}
        trusted = state[f"{CODEX_TRUST_SOURCE}:{key[event]}:0:0"]["trusted_hash"]
        assert trusted == codex_trusted_hash(key[event], handler["command"], handler["timeout"])
    # The operator has up to an hour to answer; a state hook must not hold the agent.
    assert overrides["hooks.PermissionRequest"][0]["hooks"][0]["timeout"] == 3600  # type: ignore[index]
    assert overrides["hooks.Stop"][0]["hooks"][0]["timeout"] == 30  # type: ignore[index]


def test_a_command_with_quotes_and_spaces_survives_toml_and_the_shell() -> None:
    odd = ('/opt/my venv/bin/python "3"', "-m", "tundra_tui", "hook-event")
    overrides = _overrides(codex_hook_args(odd))
    command = overrides["hooks.Stop"][0]["hooks"][0]["command"]  # type: ignore[index]
    assert shlex.split(command) == [*odd, "Stop"]


@pytest.mark.parametrize(
    ("version", "has"),
    [
        ("codex-cli 0.169.0", True),
        ("codex-cli 0.170.2", True),
        ("codex-cli 1.0.0", True),
        ("codex-cli 0.135.0", True),
        ("codex-cli 0.134.9", False),
        ("codex-cli 0.98.0", False),
        ("unknown", False),
        ("", False),
    ],
)
def test_hooks_are_used_only_from_the_version_checked(version: str, has: bool) -> None:
    assert codex_has_hooks(version) is has


def test_hooks_go_right_after_the_program() -> None:
    argv = with_codex_hooks(["/bin/codex", "--model", "m"], HOOK)
    assert argv[0] == "/bin/codex" and argv[-2:] == ["--model", "m"]
    assert channel_of(Runtime.CODEX, argv) == "Codex hooks"
    assert channel_of(Runtime.CODEX, ["/bin/codex", "-c", "notify=[]"]).startswith("Codex notify")
    assert channel_of(Runtime.CODEX, ["/bin/codex"]) == "none (the screen only)"
    assert channel_of(Runtime.CLAUDE, ["claude", "--settings", "f"]) == "Claude Code hooks"
    assert channel_of(Runtime.GEMINI, ["gemini"]) == "none (the screen only)"


@pytest.mark.parametrize(
    ("event", "state"),
    [
        ("SessionStart", Detected.IDLE),
        ("UserPromptSubmit", Detected.WORKING),
        ("PermissionRequest", Detected.AWAITING_APPROVAL),
        ("PostToolUse", Detected.WORKING),
        ("Stop", Detected.IDLE),
    ],
)
def test_recorded_payloads_map_to_states_named_as_codex(event: str, state: Detected) -> None:
    detection = hook_detection(Runtime.CODEX, event, payload(event))
    assert detection is not None and detection.evidence is not None
    assert detection.state is state
    assert detection.evidence.source == "hook"
    assert detection.evidence.rule.startswith("codex.hook.")
    assert detection.evidence.versions == CODEX_HOOK_VERSIONS
    claude = hook_detection(Runtime.CLAUDE, event, payload(event))
    assert claude is not None and claude.evidence is not None
    assert claude.evidence.rule.startswith("claude.hook.")


def test_the_recorded_permission_request_asks_the_exact_command() -> None:
    ask = permission_ask(payload("PermissionRequest"))
    assert (ask.tool, ask.subject, ask.cwd) == ("Bash", "touch approved.txt", "/tmp/wx/work")
    assert permission_rule(Runtime.CODEX) == "codex.hook.permission_request"
    assert permission_rule(Runtime.CLAUDE) == "claude.hook.permission_request"


def test_explain_never_passes_the_agents_text_through_raw() -> None:
    reply = SimpleNamespace(
        state="awaiting_approval",
        source="hook",
        rule="codex.hook.permission_request",
        matched="PermissionRequest Bash: \x1b[31mrm -rf /\x1b[0m [bold]x[/]\nsecond",
        versions=CODEX_HOOK_VERSIONS,
        since=0.0,
        channel="Codex hooks",
    )
    lines = explain_lines("cx", reply)
    assert all("\x1b" not in line and "\n" not in line for line in lines)
    assert (
        lines[1]
        == "  decided by a hook: codex.hook.permission_request (codex 0.135.0-0.169.0 hooks)"
    )
    assert "[bold]x[/]" in lines[2]
