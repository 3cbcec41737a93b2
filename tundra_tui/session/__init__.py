"""Agent sessions: PTY host, pyte emulator, state detection and per-runtime adapters."""
