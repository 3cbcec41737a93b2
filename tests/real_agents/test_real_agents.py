"""Real agent CLIs against the fake model server: idle, working, approve, deny, usage logs.

Opt-in: ``TUNDRA_REAL_AGENTS=1 .venv/bin/python -m pytest -m real_agents tests/real_agents``.
With ``TUNDRA_RECORD_SCREENS=1`` the screens are also written to
``tests/fixtures/screens/<runtime>/<state>-recorded-<n>.txt``.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from real_agent_harness import Driver, Sandbox, agent_binary, submit, wait_for, wait_until

pytestmark = pytest.mark.real_agents

CLAUDE_VERSION = "2.1.330"
FAKE_AIDER_MODEL = "openai/fake"


# --------------------------------------------------------------------------- per-CLI specs


@dataclass(frozen=True)
class AgentSpec:
    """How to launch one CLI offline and read its screen."""

    name: str
    setup: Callable[[Sandbox], tuple[list[str], dict[str, str]]]
    is_idle: Callable[[str], bool]
    is_working: Callable[[str], bool]
    is_awaiting_approval: Callable[[str], bool]
    approve_keys: Sequence[str]
    deny_keys: Sequence[str]
    usage_tokens: Callable[[Sandbox], int]
    start_timeout: float = 60.0


def _last_line(screen: str) -> str:
    lines = [line for line in screen.splitlines() if line.strip()]
    return lines[-1].rstrip() if lines else ""


# Claude Code --------------------------------------------------------------------------


def claude_setup(box: Sandbox) -> tuple[list[str], dict[str, str]]:
    state = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        # Claude Code stores the last 20 characters of an approved key.
        "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
        "hasSeenAutoDefaultNotice": True,
        "hasSeenAutoDefaultNudge": True,
        "lastReleaseNotesSeen": CLAUDE_VERSION,
        "projects": {
            str(box.work): {
                "hasTrustDialogAccepted": True,
                "hasCompletedProjectOnboarding": True,
                "projectOnboardingSeenCount": 1,
            }
        },
    }
    (box.home / ".claude.json").write_text(json.dumps(state, indent=2))
    (box.home / ".claude").mkdir(exist_ok=True)
    # 2.1.330 defaults to auto mode, which runs `touch` without asking.
    settings = {"permissions": {"defaultMode": "default"}}
    (box.home / ".claude" / "settings.json").write_text(json.dumps(settings))
    env = box.base_env() | {
        "ANTHROPIC_BASE_URL": box.base_url,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    return [str(agent_binary("claude"))], env


def claude_idle(screen: str) -> bool:
    return (
        "? for shortcuts" in screen
        and re.search(r"^❯\s*$", screen, re.M) is not None
        and "esc to interrupt" not in screen
        and "Do you want to proceed?" not in screen
    )


def claude_working(screen: str) -> bool:
    return "esc to interrupt" in screen


def claude_approval(screen: str) -> bool:
    return "Do you want to proceed?" in screen and re.search(r"1\. Yes", screen) is not None


def claude_usage(box: Sandbox) -> int:
    total = 0
    seen: set[str] = set()
    for log in (box.home / ".claude" / "projects").glob("*/*.jsonl"):
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            msg = rec.get("message") if rec.get("type") == "assistant" else None
            if isinstance(msg, dict) and msg.get("id") not in seen and "usage" in msg:
                seen.add(str(msg.get("id")))
                total += int(msg["usage"].get("input_tokens", 0))
                total += int(msg["usage"].get("output_tokens", 0))
    return total


CLAUDE = AgentSpec(
    name="claude",
    setup=claude_setup,
    is_idle=claude_idle,
    is_working=claude_working,
    is_awaiting_approval=claude_approval,
    approve_keys=("1",),
    deny_keys=("Escape",),
    usage_tokens=claude_usage,
)


# Aider ------------------------------------------------------------------------------


def aider_setup(box: Sandbox) -> tuple[list[str], dict[str, str]]:
    (box.work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    subprocess.run(["git", "add", "calc.py"], cwd=box.work, check=True)
    metadata = {
        FAKE_AIDER_MODEL: {
            "max_input_tokens": 128000,
            "max_output_tokens": 8192,
            "max_tokens": 8192,
            "input_cost_per_token": 0.000003,
            "output_cost_per_token": 0.000015,
            "litellm_provider": "openai",
            "mode": "chat",
        }
    }
    meta_file = box.home / "fake.model.metadata.json"
    meta_file.write_text(json.dumps(metadata))
    cache = box.home / ".aider" / "caches"
    cache.mkdir(parents=True)
    # Present in the cache, so aider does not try to download litellm's price list.
    (cache / "model_prices_and_context_window.json").write_text(json.dumps(metadata))
    argv = [
        str(agent_binary("aider")),
        "--model", FAKE_AIDER_MODEL,
        "--openai-api-base", f"{box.base_url}/v1",
        "--openai-api-key", "dummy",
        "--model-metadata-file", str(meta_file),
        "--edit-format", "diff",  # with "whole", a bash block would overwrite calc.py
        "--no-auto-commits",
        "--no-dirty-commits",
        "--analytics-disable",
        "--analytics-log", str(box.root / "aider-analytics.jsonl"),
        "--no-check-update",
        "--no-show-release-notes",
        "--no-gitignore",
        "--no-show-model-warnings",
    ]  # fmt: skip
    env = box.base_env() | {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return argv, env


def aider_idle(screen: str) -> bool:
    return re.fullmatch(r"\w*>", _last_line(screen)) is not None


def aider_working(screen: str) -> bool:
    return "Waiting for " in screen


def aider_approval(screen: str) -> bool:
    return (
        re.search(r"Run shell command\? \(Y\)es/\(N\)o.*\[Yes\]:", _last_line(screen)) is not None
    )


def aider_usage(box: Sandbox) -> int:
    log = box.root / "aider-analytics.jsonl"
    if not log.exists():
        return 0
    total = 0
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "message_send":
            total += int(rec["properties"].get("total_tokens", 0))
    return total


AIDER = AgentSpec(
    name="aider",
    setup=aider_setup,
    is_idle=aider_idle,
    is_working=aider_working,
    is_awaiting_approval=aider_approval,
    approve_keys=("y", "Enter"),
    deny_keys=("n", "Enter"),
    usage_tokens=aider_usage,
)


# Codex CLI ------------------------------------------------------------------------------


def codex_setup(box: Sandbox) -> tuple[list[str], dict[str, str]]:
    config = f"""\
model = "fake-model"
model_provider = "fake"
approval_policy = "on-request"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
daemon_auto_start = false
in_app_updates = false

[model_providers.fake]
name = "Fake local"
base_url = "{box.base_url}/v1"
env_key = "FAKE_API_KEY"
wire_api = "responses"

[projects."{box.work}"]
trust_level = "trusted"
"""
    (box.home / ".codex").mkdir()
    (box.home / ".codex" / "config.toml").write_text(config)
    return [str(agent_binary("codex"))], box.base_env() | {"FAKE_API_KEY": "dummy"}


def codex_idle(screen: str) -> bool:
    if "Ask Codex to do anything" not in screen or "esc to interrupt" in screen:
        return False
    if codex_approval(screen):
        return False
    prompts = [m.end() for m in re.finditer(r"^› (?!Ask Codex to do anything).+$", screen, re.M)]
    if not prompts:
        return True
    tail = screen[prompts[-1] :]
    return "Worked for" in tail or "Conversation interrupted" in tail


def codex_working(screen: str) -> bool:
    return "esc to interrupt" in screen


def codex_approval(screen: str) -> bool:
    return "Would you like to run the following command?" in screen and "Yes, proceed" in screen


def codex_usage(box: Sandbox) -> int:
    total = 0
    for log in (box.home / ".codex" / "sessions").glob("**/rollout-*.jsonl"):
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            payload = rec.get("payload") or {}
            if rec.get("type") == "event_msg" and payload.get("type") == "token_count":
                usage = (payload.get("info") or {}).get("total_token_usage") or {}
                total = max(total, int(usage.get("total_tokens", 0)))
    return total


CODEX = AgentSpec(
    name="codex",
    setup=codex_setup,
    is_idle=codex_idle,
    is_working=codex_working,
    is_awaiting_approval=codex_approval,
    approve_keys=("y",),
    deny_keys=("Escape",),
    usage_tokens=codex_usage,
)


# Gemini CLI ---------------------------------------------------------------------------


def gemini_setup(box: Sandbox) -> tuple[list[str], dict[str, str]]:
    gdir = box.home / ".gemini"
    gdir.mkdir()
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    }
    (gdir / "settings.json").write_text(json.dumps(settings))
    (gdir / "trustedFolders.json").write_text(json.dumps({str(box.work): "TRUST_FOLDER"}))
    env = box.base_env() | {
        "GEMINI_API_KEY": "dummy",
        "GOOGLE_GEMINI_BASE_URL": box.base_url,
        "COLORTERM": "truecolor",
    }
    return [str(agent_binary("gemini"))], env


def gemini_idle(screen: str) -> bool:
    return (
        "Type your message" in screen
        and "esc to cancel" not in screen
        and not gemini_approval(screen)
    )


def gemini_working(screen: str) -> bool:
    return "esc to cancel" in screen


def gemini_approval(screen: str) -> bool:
    return "Allow execution of" in screen and "Allow once" in screen


def gemini_usage(box: Sandbox) -> int:
    tokens: dict[str, int] = {}
    for log in (box.home / ".gemini" / "tmp").glob("*/chats/session-*.jsonl"):
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if isinstance(rec.get("tokens"), dict):
                tokens[str(rec.get("id"))] = int(rec["tokens"].get("total", 0))
    return sum(tokens.values())


GEMINI = AgentSpec(
    name="gemini",
    setup=gemini_setup,
    is_idle=gemini_idle,
    is_working=gemini_working,
    is_awaiting_approval=gemini_approval,
    approve_keys=("1",),
    deny_keys=("Escape",),
    usage_tokens=gemini_usage,
)


# OpenCode -------------------------------------------------------------------------------


def opencode_setup(box: Sandbox) -> tuple[list[str], dict[str, str]]:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "model": "fake/fake-model",
        "autoupdate": False,
        "share": "disabled",
        "permission": {"bash": "ask", "edit": "ask"},
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake local",
                "options": {"baseURL": f"{box.base_url}/v1", "apiKey": "dummy"},
                "models": {
                    "fake-model": {
                        "name": "Fake model",
                        "tools": True,
                        "cost": {"input": 3, "output": 15},
                    }
                },
            }
        },
    }
    cdir = box.home / ".config" / "opencode"
    cdir.mkdir(parents=True)
    (cdir / "opencode.json").write_text(json.dumps(config))
    env = box.base_env() | {
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "COLORTERM": "truecolor",
    }
    return [str(agent_binary("opencode"))], env


def opencode_idle(screen: str) -> bool:
    return (
        "ctrl+p commands" in screen
        and "esc interrupt" not in screen
        and not opencode_approval(screen)
    )


def opencode_working(screen: str) -> bool:
    return "esc interrupt" in screen


def opencode_approval(screen: str) -> bool:
    return "Permission required" in screen and "Allow once" in screen


def opencode_usage(box: Sandbox) -> int:
    db = box.home / ".local" / "share" / "opencode" / "opencode.db"
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT sum(tokens_input + tokens_output) FROM session").fetchone()
    return int(row[0] or 0)


OPENCODE = AgentSpec(
    name="opencode",
    setup=opencode_setup,
    is_idle=opencode_idle,
    is_working=opencode_working,
    is_awaiting_approval=opencode_approval,
    approve_keys=("Enter",),
    deny_keys=("Escape",),
    usage_tokens=opencode_usage,
    start_timeout=120.0,
)

# Claude Code and Aider are the primary pair; the others run too when installed
# (scripts/install-real-agents.sh --all).
SPECS = {spec.name: spec for spec in (CLAUDE, AIDER, CODEX, GEMINI, OPENCODE)}


# --------------------------------------------------------------------------- the flows


def press(driver: Driver, keys: Sequence[str]) -> None:
    for key in keys:
        driver.send_key(key)
        time.sleep(0.2)


def launch(spec: AgentSpec, box: Sandbox, driver: Driver) -> str:
    argv, env = spec.setup(box)
    driver.start(argv, env, box.work)
    screen = wait_for(driver, spec.is_idle, spec.start_timeout, f"{spec.name} idle prompt")
    time.sleep(0.5)  # keys sent right after a screen is painted can be dropped
    return screen


def ask_to_run(spec: AgentSpec, driver: Driver, cmd: str) -> str:
    submit(driver, f"RUN: {cmd}")
    return wait_for(driver, spec.is_awaiting_approval, 30, f"{spec.name} approval prompt")


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_approve(runtime: str, make_sandbox: Callable[[str], Sandbox], driver: Driver) -> None:
    spec = SPECS[runtime]
    box = make_sandbox(runtime)
    rec = box.recorder

    rec.record("idle", launch(spec, box, driver))

    submit(driver, "SLOW hello")
    rec.record("working", wait_for(driver, spec.is_working, 20, f"{runtime} working"))
    answered = "Hello from the fake model! You said: SLOW hello"
    time.sleep(1.5)  # mid-answer: spinner with a token count, or text still streaming
    screen = driver.screen()
    if answered not in screen and not spec.is_idle(screen):
        rec.record("working", screen)
    screen = wait_for(
        driver, lambda s: answered in s and spec.is_idle(s), 40, f"{runtime} idle after answer"
    )
    rec.record("idle", screen)
    time.sleep(0.5)

    rec.record("awaiting_approval", ask_to_run(spec, driver, "touch approved.txt"))
    time.sleep(0.5)
    press(driver, spec.approve_keys)
    assert wait_until((box.work / "approved.txt").exists, 20), driver.screen()
    screen = wait_for(
        driver,
        lambda s: spec.is_idle(s) and not spec.is_awaiting_approval(s),
        30,
        f"{runtime} idle after approval",
    )
    rec.record("idle", screen)

    assert wait_until(lambda: spec.usage_tokens(box) > 0, 15), f"no token counts in {runtime} log"
    kinds = [r["reply"]["kind"] for r in box.requests() if r.get("reply")]  # type: ignore[index]
    assert "run-tool" in kinds or "run-fenced" in kinds, kinds
    for req in box.requests():
        headers = {k.lower(): v for k, v in req["headers"].items()}  # type: ignore[union-attr]
        for secret in ("authorization", "x-api-key"):
            assert headers.get(secret, "***") == "***", "API key leaked into the request log"


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_deny(runtime: str, make_sandbox: Callable[[str], Sandbox], driver: Driver) -> None:
    spec = SPECS[runtime]
    box = make_sandbox(runtime)

    launch(spec, box, driver)
    box.recorder.record("awaiting_approval", ask_to_run(spec, driver, "touch approved.txt"))
    time.sleep(0.5)
    press(driver, spec.deny_keys)
    screen = wait_for(
        driver,
        lambda s: spec.is_idle(s) and not spec.is_awaiting_approval(s),
        30,
        f"{runtime} idle after deny",
    )
    box.recorder.record("idle", screen)
    time.sleep(1.0)  # give a wrongly-run command time to show up
    assert not (box.work / "approved.txt").exists(), screen
    kinds = [r["reply"]["kind"] for r in box.requests() if r.get("reply")]  # type: ignore[index]
    assert "done" not in kinds, f"{runtime} sent a tool result after the deny: {kinds}"


def test_sandbox_paths_are_sanitised(make_sandbox: Callable[[str], Sandbox]) -> None:
    box = make_sandbox("claude")
    raw = f"  {box.work}  \n{box.home}/.claude\n\n"
    assert box.recorder.sanitise(raw) == "  <work>\n<home>/.claude\n"
    assert Path(box.work).is_dir()
