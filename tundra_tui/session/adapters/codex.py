"""Codex CLI 0.169.0: `y` approves, Esc denies; a fast burst ending in Enter reads as a paste."""

from __future__ import annotations

import re

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import ENTER, ESC, Adapter, Dialog

ADAPTER = Adapter(
    runtime=Runtime.CODEX,
    approve_keys=b"y",
    deny_keys=ESC,
    dialogs=(Dialog("codex.trust", re.compile(r"1\. Trust and continue"), (ENTER,), trust=True),),
    rate_limited=re.compile(r"(?i)(rate limit|429 too many requests|usage limit)"),
    auth_failed=re.compile(r"(?i)(401 unauthorized|invalid api key|not logged in)"),
    env_keys=("OPENAI_*", "CODEX_*"),
)
