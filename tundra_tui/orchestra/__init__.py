"""Orchestration: mayor, deacon, witness, refinery, supervisor and git worktrees."""
