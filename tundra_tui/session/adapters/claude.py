"""Claude Code 2.1.330: numbered approval menu, hooks for state and approvals."""

from __future__ import annotations

import re

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import DOWN, ENTER, ESC, UP, Adapter, Dialog

ADAPTER = Adapter(
    runtime=Runtime.CLAUDE,
    approve_keys=b"1",
    deny_keys=ESC,
    dialogs=(
        # Default is "No, exit": Down selects "Yes, I trust this folder".
        Dialog("claude.trust", re.compile(r"Yes, I trust this folder"), (DOWN, ENTER), trust=True),
        # Keeps manual mode, so approvals still reach the operator.
        Dialog(
            "claude.auto_mode_offer",
            re.compile(r"Make auto mode your default permission mode\?"),
            (DOWN, ENTER),
        ),
        # The key came from the agent's own configured environment.
        Dialog(
            "claude.api_key",
            re.compile(r"Detected a custom API key in your environment"),
            (UP, ENTER),
        ),
    ),
    # Not a bare 429: a number in code or a diff on screen is no rate limit.
    rate_limited=re.compile(
        r"(?i)(rate limit|usage limit reached|limit reached|hit your limit|overloaded_error"
        r"|429 Too Many Requests|rate_limit_error)"
    ),
    auth_failed=re.compile(
        r"(?i)(invalid api key|authentication_error|401 unauthorized|please run /login"
        r"|unable to connect to anthropic services)"
    ),
    env_keys=("ANTHROPIC_*", "CLAUDE_*"),
)
