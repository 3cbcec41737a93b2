"""A stand-in coding agent, so the control room runs and is tested with no account or network.

Run it as `python -m tundra_tui.demo_agent` (runtime `demo`). It behaves like a real agent CLI in a
PTY: an idle prompt, a spinner while it works, a command-approval prompt, and a Claude Code style
usage log. Only the standard library is used, so it starts fast inside our session host.
"""

from __future__ import annotations
