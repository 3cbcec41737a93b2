"""Aider 0.86.2: line prompts answered `y` or `n` followed by Enter.

Aider talks to whichever provider its model names, so it is given that provider's
variables only. With no model configured it picks one from the keys it finds;
it then gets Anthropic's and OpenAI's, its usual first choices. Any other
provider's key reaches it only through `runtimes.aider.env` or `agents.NAME.env`.
"""

from __future__ import annotations

import re

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import Adapter

_ANTHROPIC = ("ANTHROPIC_*",)
_OPENAI = ("OPENAI_*",)

ADAPTER = Adapter(
    runtime=Runtime.AIDER,
    approve_keys=b"y\r",
    deny_keys=b"n\r",
    interrupt_keys=b"\x03",
    rate_limited=re.compile(r"(?i)(RateLimitError|rate limit)"),
    auth_failed=re.compile(r"(?i)(AuthenticationError|invalid api key)"),
    env_keys=("AIDER_*",),
    model_env=(
        ("", (*_ANTHROPIC, *_OPENAI)),
        ("*claude*", _ANTHROPIC),
        ("sonnet*", _ANTHROPIC),
        ("opus*", _ANTHROPIC),
        ("haiku*", _ANTHROPIC),
        ("anthropic/*", _ANTHROPIC),
        ("gpt*", _OPENAI),
        ("o[134]*", _OPENAI),
        ("4o*", _OPENAI),
        ("openai/*", _OPENAI),
        ("gemini*", ("GEMINI_*",)),
        ("deepseek*", ("DEEPSEEK_*",)),
        ("openrouter/*", ("OPENROUTER_*",)),
        ("ollama*", ("OLLAMA_*",)),
    ),
)
