"""`at refinery …` and `at bead show --json` on a seeded store, with no daemon."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from at_cli import AT, at, git, git_town
from helpers.refinery_seed import Review, commit_on, seed

from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.refinery import CHECKOUT_BASE, Escalate, GateResult, Outcome, Strategy
from tundra_tui.store import open_store


def status(town: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(at(town, "refinery", "status", "--json").stdout)
    return data


async def _attempts(town: Path, bead_id: int, escalate: int) -> None:
    """A merged attempt on `bead_id` (gate green) and an escalation of bead `escalate`
    after a red gate whose output carries an escape sequence."""
    store = await open_store(town / ".tundra" / "town.db")
    try:
        for bead, tip in ((bead_id, "aaa111"), (escalate, "bbb222")):
            attempt = await store.merges.begin(
                bead,
                agent="p1",
                branch=f"polecat/p1/{bead}",
                branch_tip=tip,
                commits=[(tip, f"bead #{bead}")],
                strategy=Strategy.REBASE,
                target="refs/heads/main",
                target_before="m0",
                actor="refinery",
            )
            assert attempt is not None
            await store.merges.gate_started(attempt.id, 0, "make test", log_path="")
            ok = bead == bead_id
            tail = "all good" if ok else "\x1b[31mFAILED\x1b[0m test_x\n"
            gate = GateResult(0, "make test", ok=ok, exit_code=0 if ok else 1, tail=tail)
            await store.merges.gate_finished(attempt.id, gate, actor="refinery")
            if ok:
                assert await store.merges.verified(attempt.id, result_commit="c0ffee", actor="r")
                await store.merges.merged(attempt.id, actor="refinery")
            else:
                await store.merges.reject(
                    attempt.id,
                    Outcome.GATE_FAILED,
                    reason="gate `make test` exit 1",
                    then=Escalate("1 attempt(s) failed"),
                    actor="refinery",
                )
    finally:
        await store.close()


def test_status_control_retry_and_bead_show_without_a_daemon() -> None:
    with git_town() as town:
        first, second, third = seed(town, Review("one"), Review("two"), Review("three"))
        shown = status(town)
        assert shown["state"] == "needs gates" and shown["gates"] is None
        assert [row["bead"] for row in shown["queue"]] == [first, second, third]  # type: ignore[index,union-attr]

        at(town, "config", "set", "refinery.gates", "[]")
        assert status(town)["state"] == "daemon not running"

        at(town, "refinery", "pause", "--reason", "release day")
        shown = status(town)
        assert (shown["state"], shown["paused"], shown["pause_reason"]) == (
            "paused",
            True,
            "release day",
        )
        inside = subprocess.run(
            [*AT, "--town", str(town), "refinery", "resume"],
            capture_output=True,
            text=True,
            env={**os.environ, "TUNDRA_AGENT": "p1"},
            check=False,
        )
        assert inside.returncode != 0 and "refused" in inside.stderr
        assert inside.stderr.count("\n") == 1, "one line"
        at(town, "refinery", "resume")
        assert status(town)["paused"] is False
        kinds = json.loads(at(town, "events", "--kind", "refinery.", "--json").stdout)
        assert [e["kind"] for e in kinds] == ["refinery.paused", "refinery.resumed"]

        asyncio.run(_attempts(town, first, second))
        text = at(town, "refinery", "status").stdout
        assert "FAILED" in text and "\x1b" not in text, "gate output is made visible"
        shown = status(town)
        assert [row["bead"] for row in shown["queue"]] == [third]  # type: ignore[index,union-attr]
        assert [a["outcome"] for a in shown["recent"]] == ["gate_failed", "merged"]  # type: ignore[index,union-attr]

        done = at(town, "refinery", "retry", str(third), check=False)
        assert done.returncode == 0, "a review bead may be retried (it only wakes)"
        refused = at(town, "refinery", "retry", "99", check=False)
        assert refused.returncode != 0 and "no bead #99" in refused.stderr
        at(town, "refinery", "retry", f"#{second}")
        again = json.loads(at(town, "bead", "show", str(second), "--json").stdout)
        assert again["bead"]["status"] == BeadStatus.REVIEW.value
        assert again["grade"] == "submitted"

        shown_bead = json.loads(at(town, "bead", "show", str(first), "--json").stdout)
        assert {
            key: shown_bead[key]
            for key in ("grade", "branch", "merged_commit", "target", "attempts")
        } == {
            "grade": "merged",
            "branch": f"polecat/p1/{first}",
            "merged_commit": "c0ffee",
            "target": "main",
            "attempts": 1,
        }
        assert shown_bead["bead"]["status"] == "done"
        assert [g["ok"] for g in shown_bead["gates"]] == [True]
        merge = shown_bead["merges"][0]
        assert (merge["outcome"], merge["result_commit"], merge["commits"]) == (
            "merged",
            "c0ffee",
            [["aaa111", f"bead #{first}"]],
        )
        table = at(town, "bead", "show", str(first)).stdout
        assert "grade" in table and "merged" in table and "refinery (target main)" in table


def test_sync_brings_the_checkout_up_to_the_moved_target_keeping_edits() -> None:
    with git_town() as town:
        assert "nothing to sync" in at(town, "refinery", "sync").stdout
        old = git(town, "rev-parse", "main").strip()
        git(town, "update-ref", f"{CHECKOUT_BASE}/main", old, "")
        commit_on(town, "main", {"merged.txt": "landed\n"}, message="merged by the refinery")
        (town / "README.md").write_text("my local edit\n")
        assert "D  merged.txt" in git(town, "status", "--porcelain"), "the trap: staged reversal"
        out = at(town, "refinery", "sync").stdout
        assert "now matches main" in out
        assert (town / "merged.txt").read_text() == "landed\n"
        assert (town / "README.md").read_text() == "my local edit\n"
        porcelain = git(town, "status", "--porcelain")
        assert porcelain.strip() == "M README.md", porcelain
        refs = git(town, "for-each-ref", CHECKOUT_BASE)
        assert refs == ""
