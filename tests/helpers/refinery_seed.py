"""Beads in review without agents: branches made with git plumbing, beads moved through the
store, so refinery tests start at the queue and spend no time on dispatch or demo work.

`commit_on` never touches a worktree (a temporary index, then `update-ref`), so it is safe
beside the operator's checkout and beside a running daemon. `seed_review` talks to the
store in-process, as a second writer the daemon hears through its event tail.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tundra_tui.config import load_config
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, Lane
from tundra_tui.domain.dispatch import polecat_branch
from tundra_tui.store import open_store
from tundra_tui.store.agents import RosterEntry
from tundra_tui.town import Town

IDENTITY = {
    "GIT_AUTHOR_NAME": "Seed",
    "GIT_AUTHOR_EMAIL": "seed@example.invalid",
    "GIT_COMMITTER_NAME": "Seed",
    "GIT_COMMITTER_EMAIL": "seed@example.invalid",
}
"""Commits made here name a fixed identity: the seed works with no git config at all."""
ACTOR = "test"


def _git(repo: Path, *argv: str, env: Mapping[str, str] | None = None, stdin: str = "") -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", **IDENTITY, **(env or {})},
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def _sha(repo: Path, rev: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def commit_on(
    repo: Path,
    branch: str,
    files: Mapping[str, str | None],
    *,
    base: str = "main",
    message: str,
) -> str:
    """Commit `files` (path to text; None deletes the path) on top of `base` and point
    `refs/heads/<branch>` at the commit (created, or moved from where it was with a
    compare-and-swap); its sha. Pass `base=branch` to add a commit to an existing branch.

    Only plumbing and a private index: no worktree, the operator's included, is read or
    written (moving the branch the operator has checked out still moves it under them)."""
    parent = _sha(repo, base)
    if parent is None:
        raise AssertionError(f"no commit {base!r} in {repo}")
    ref = f"refs/heads/{branch}"
    old = _sha(repo, ref) or ""
    with tempfile.TemporaryDirectory(prefix="seed-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git(repo, "read-tree", parent, env=env)
        for path, text in files.items():
            if text is None:
                _git(repo, "update-index", "--force-remove", "--", path, env=env)
                continue
            blob = _git(repo, "hash-object", "-w", "--stdin", stdin=text).strip()
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = _git(repo, "write-tree", env=env).strip()
    commit = _git(repo, "commit-tree", tree, "-p", parent, "-m", message).strip()
    _git(repo, "update-ref", "-m", f"seed: {message}", ref, commit, old)
    return commit


@dataclass(frozen=True)
class Review:
    """One bead to put in review: its branch `polecat/<agent>/<id>` holds one commit made
    from `base` with `files` (the text may name the bead as `{id}`)."""

    title: str
    files: Mapping[str, str | None] = field(default_factory=dict)
    agent: str = "p1"
    lane: Lane = Lane.STANDARD
    priority: int = 2
    labels: Sequence[str] = ()
    base: str = "main"
    blocked_by: Sequence[int] = ()


def bead_files(bead_id: int, title: str) -> dict[str, str]:
    """The file a demo agent writes for a bead, which the gate repo's test accepts."""
    return {f"beads/{bead_id}.md": f"# #{bead_id}: {title}\n\nseeded\n"}


async def seed_review(town: Path, specs: Sequence[Review]) -> list[int]:
    """Make each bead, its branch and commit, and move it backlog → hooked → slung →
    review as its agent would; the bead ids, in order.

    An agent the town does not configure is added to the store's roster only (the daemon's
    next roster sync hides it but keeps it on its beads), so no agent process is ever
    started for it: the refinery sees a bead whose agent is gone (rework path B)."""
    store = await open_store(town / ".tundra" / "town.db")
    try:
        config = load_config(Town(town))
        roster = {
            s.name: RosterEntry(s.name, s.role, s.runtime, s.model)
            for s in config.agents().values()
        }
        for spec in specs:
            roster.setdefault(spec.agent, RosterEntry(spec.agent, Role.POLECAT, Runtime.DEMO))
        await store.agents.sync_roster(roster.values(), actor=ACTOR)
        ids: list[int] = []
        for spec in specs:
            bead = await store.beads.add(
                spec.title,
                actor=ACTOR,
                lane=spec.lane,
                priority=spec.priority,
                labels=spec.labels,
                blocked_by=spec.blocked_by,
            )
            files = {
                path.format(id=bead.id): None if text is None else text.format(id=bead.id)
                for path, text in (spec.files or bead_files(bead.id, spec.title)).items()
            }
            branch = polecat_branch(spec.agent, bead.id)
            await asyncio.to_thread(
                commit_on,
                town,
                branch,
                files,
                base=spec.base,
                message=f"bead #{bead.id}: {spec.title}",
            )
            await store.beads.edit(bead.id, actor=ACTOR, branch=branch)
            await store.beads.apply(bead.id, Action.HOOK, actor=ACTOR, agent=spec.agent)
            await store.beads.apply(bead.id, Action.SLING, actor=ACTOR, agent=spec.agent)
            await store.beads.apply(bead.id, Action.SUBMIT, actor=ACTOR, reason="seeded")
            ids.append(bead.id)
        return ids
    finally:
        await store.close()


def seed(town: Path, *specs: Review) -> list[int]:
    """`seed_review` from synchronous test code."""
    return asyncio.run(seed_review(town, specs))
