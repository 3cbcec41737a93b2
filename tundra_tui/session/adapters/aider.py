"""Aider 0.86.2: line prompts answered `y` or `n` followed by Enter."""

from __future__ import annotations

import re

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import Adapter

ADAPTER = Adapter(
    runtime=Runtime.AIDER,
    approve_keys=b"y\r",
    deny_keys=b"n\r",
    interrupt_keys=b"\x03",
    rate_limited=re.compile(r"(?i)(RateLimitError|rate limit)"),
    auth_failed=re.compile(r"(?i)(AuthenticationError|invalid api key)"),
)
