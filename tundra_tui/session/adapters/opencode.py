"""OpenCode 1.18.33: Enter allows once (the preselected answer), Esc rejects."""

from __future__ import annotations

import re

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import ENTER, ESC, Adapter

ADAPTER = Adapter(
    runtime=Runtime.OPENCODE,
    approve_keys=ENTER,
    deny_keys=ESC,
    rate_limited=re.compile(r"(?i)(rate limit|429)"),
    auth_failed=re.compile(r"(?i)(401|unauthorized|invalid api key)"),
    env_keys=("OPENCODE_*",),
)
