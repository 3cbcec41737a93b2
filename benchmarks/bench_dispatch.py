"""Dispatch: latency from a bead becoming ready to its work prompt taken, wall time for ten
beads through three polecats to review, and the daemon's CPU meanwhile (issue 11's figures).

    .venv/bin/python benchmarks/bench_dispatch.py [--rounds 3] [--beads 10] [--polecats 3]

Each round makes a git town under /tmp whose polecats are the bundled demo agent at speed 0
(no approvals) and runs `at up` with nothing ready. Then:

- batch: the beads, held in a convoy, are released all at once by `at convoy start`. Wall
  time runs from there to the last bead in review; daemon CPU is its /proc utime+stime over
  that wall time. Latency is each dispatch's `delivered_at - ready_at` from the store, so a
  bead that waited for a free polecat counts its wait: the first `--polecats` of them are
  the cold starts (a new demo agent process each), the rest queued.
- warm: `--warm` beads more are added one at a time, each after the last reached review, so
  an idle polecat is always there to be reused in place: the latency of dispatch itself
  (the event, the plan, the claim, the worktree switch, the typed prompt taken).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchlib import AT, NEUTRAL_CWD, CpuMeter, header, p, spread, wait_until

DEADLINE_S = 300.0


@dataclass
class Round:
    cold_ms: list[float]
    queued_ms: list[float]
    warm_ms: list[float]
    wall_s: float
    daemon_cpu_pct: float

    @property
    def batch_ms(self) -> list[float]:
        return self.cold_ms + self.queued_ms


def at(town: Path, *argv: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [*AT, "--town", str(town), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=NEUTRAL_CWD,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"at {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def git(repo: Path, *argv: str) -> None:
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "-C", str(repo), *identity, *argv], capture_output=True, check=True)


def make_town(polecats: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="at-bd-", dir="/tmp"))
    git(root, "init", "-q", "-b", "main")
    at(root, "init", str(root))
    (root / "tundra.toml").write_text(
        '[general]\nname = "bench-dispatch"\n\n'
        f'[orchestra]\nmax_polecats = {polecats}\npolecat_runtime = "demo"\n'
        'target_branch = "main"\n\n'
        '[runtimes.demo]\nargs = ["--speed", "0", "--approval-rate", "0"]\n'
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def daemon_pid(town: Path) -> int:
    return int(json.loads(at(town, "daemon", "start", "--json"))["pid"])


def statuses(town: Path) -> list[str]:
    return [b["status"] for b in json.loads(at(town, "bead", "list", "--json"))]


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def latencies(town: Path, where: str = "") -> list[float]:
    """`delivered_at - ready_at` of delivered dispatches, in claim order, in ms."""
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        rows = conn.execute(
            "SELECT ready_at, delivered_at FROM dispatches WHERE delivered_at != '' "
            f"{where} ORDER BY id"
        ).fetchall()
    return [1000 * seconds(ready, delivered) for ready, delivered in rows]


def one_round(beads: int, polecats: int, warm: int) -> Round:
    town = make_town(polecats)
    try:
        at(town, "convoy", "create", "batch")
        ids = [
            str(json.loads(at(town, "bead", "add", f"bench bead {n}", "--json"))["id"])
            for n in range(1, beads + 1)
        ]
        at(town, "convoy", "add", "batch", *ids)
        at(town, "up")
        meter = CpuMeter({"daemon": daemon_pid(town)})
        started = time.monotonic()
        at(town, "convoy", "start", "batch")
        wait_until(
            lambda: statuses(town).count("review") == beads,
            DEADLINE_S,
            f"{beads} beads in review",
            every=0.05,
        )
        wall = time.monotonic() - started
        cpu = meter.read()["daemon"]
        batch = latencies(town)
        for n in range(1, warm + 1):
            at(town, "bead", "add", f"warm bead {n}")
            wait_until(
                lambda n=n: statuses(town).count("review") == beads + n,  # type: ignore[misc]
                DEADLINE_S,
                f"warm bead {n} in review",
                every=0.05,
            )
        warm_ms = latencies(town)[len(batch) :]
        return Round(batch[:polecats], batch[polecats:], warm_ms, wall, cpu)
    finally:
        subprocess.run([*AT, "--town", str(town), "down"], capture_output=True, check=False)
        subprocess.run(
            [*AT, "--town", str(town), "daemon", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(town, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh towns, one after another")
    parser.add_argument("--beads", type=int, default=10)
    parser.add_argument("--polecats", type=int, default=3)
    parser.add_argument("--warm", type=int, default=5, help="beads added one at a time after")
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    header(
        f"bench_dispatch: {args.beads} beads through {args.polecats} demo polecats "
        f"(speed 0, no approvals), then {args.warm} one at a time; {rounds} round(s)"
    )
    results = [one_round(args.beads, args.polecats, args.warm) for _ in range(rounds)]
    for number, result in enumerate(results, 1):
        print(
            f"round {number}: wall {result.wall_s:6.2f} s to all {args.beads} in review, "
            f"daemon CPU {result.daemon_cpu_pct:5.1f}% of a core; latency batch p50 "
            f"{p(result.batch_ms, 0.5):.0f} p95 {p(result.batch_ms, 0.95):.0f} ms, warm p50 "
            f"{p(result.warm_ms, 0.5):.0f} p95 {p(result.warm_ms, 0.95):.0f} ms"
        )
    cold = [ms for r in results for ms in r.cold_ms]
    queued = [ms for r in results for ms in r.queued_ms]
    warm = [ms for r in results for ms in r.warm_ms]
    print(f"latency, warm (an idle polecat reused)     {spread(warm)}")
    print(f"latency, cold (a polecat started for it)   {spread(cold)}")
    print(f"latency, batch incl. waiting for capacity  {spread(cold + queued)}")
    walls = sorted(r.wall_s for r in results)
    cpus = sorted(r.daemon_cpu_pct for r in results)
    print(
        f"summary: dispatch latency p50 {p(warm, 0.5):.0f} ms, p95 {p(warm, 0.95):.0f} ms warm; "
        f"cold p50 {p(cold, 0.5):.0f} ms; wall median {walls[len(walls) // 2]:.2f} s for "
        f"{args.beads} beads; daemon CPU median {cpus[len(cpus) // 2]:.1f}% of a core"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
