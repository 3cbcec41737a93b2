"""Entry point for `python -m tundra_tui.demo_agent`."""

from __future__ import annotations

from tundra_tui.demo_agent.agent import main

raise SystemExit(main())
