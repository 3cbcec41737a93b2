"""The bundled demo agent: Claude-like keys, no account, no network."""

from __future__ import annotations

import re
import sys

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import ESC, Adapter, InputTiming

COMMAND = f"{sys.executable} -m tundra_tui.demo_agent"
"""The same interpreter that runs `at`, so the demo works in any virtualenv."""

ADAPTER = Adapter(
    runtime=Runtime.DEMO,
    approve_keys=b"1",
    deny_keys=ESC,
    timing=InputTiming(base_pause=0.15, per_char=0.0005, max_pause=0.5, settle=0.2),
    # Its scripted limit turn shows "Claude usage limit reached · resets in 2 minutes".
    rate_limited=re.compile(r"(?i)usage limit reached|rate limit"),
    # Where it writes its Claude-format usage log, which the daemon reads back.
    env_keys=("CLAUDE_CONFIG_DIR",),
)
