"""auto-tundra: a keyboard-driven control room for teams of AI coding agents."""

from __future__ import annotations

__version__ = "0.1.0"
