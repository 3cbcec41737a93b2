"""Per-CLI specs for the real-agent tier: offline seeding, screen predicates, keys, usage logs.

Shared by the host tier (test_host_real_agents.py, our SessionHost) and the tmux
tier (test_real_agents.py, screen recording). The screen predicates here are the
tier's own reading of each CLI; the host tests check *our* detector instead.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from real_agent_harness import Sandbox, agent_binary

from tundra_tui.domain.agents import Runtime

CLAUDE_VERSION = "2.1.330"
FAKE_AIDER_MODEL = "openai/fake"


# --------------------------------------------------------------------------- per-CLI specs


@dataclass(frozen=True)
class AgentSpec:
    """How to launch one CLI offline and read its screen."""

    name: str
    runtime: Runtime
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
    runtime=Runtime.CLAUDE,
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
    runtime=Runtime.AIDER,
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
    runtime=Runtime.CODEX,
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
    runtime=Runtime.GEMINI,
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
        "permission": {"bash": "ask", "edit": "ask", "webfetch": "ask"},
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
    # Read-only: a read-write connection closing last checkpoints the WAL into the database,
    # which is the change the cost tier's home check caught (and blamed on OpenCode).
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT sum(tokens_input + tokens_output) FROM session").fetchone()
    return int(row[0] or 0)


OPENCODE = AgentSpec(
    name="opencode",
    runtime=Runtime.OPENCODE,
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
