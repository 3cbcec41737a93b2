"""Time from an approval prompt arriving in an agent's output to `awaiting_approval` published.

    .venv/bin/python benchmarks/bench_approval.py [--rounds 40]

Target: p95 at most 100 ms. The agent is the bundled demo agent at full speed;
each round sends `RUN: true`, waits for the prompt, measures, then denies it.
The clock starts when the host's reader hands the chunk holding the prompt to
the emulator (the ScreenChanged event is emitted in the same call) and stops
when the StateChanged(awaiting_approval) event is emitted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.events import HostEvent, ScreenChanged, StateChanged
from tundra_tui.session.host import SessionHost
from tundra_tui.store import open_store

TARGET_P95_MS = 100.0
PROMPT = "Allow this command?"


async def run(rounds: int) -> list[float]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-approval-"))
    store = await open_store(workdir / "town.db")
    host = SessionHost(store)
    writer = StoreWriter()
    writer.start()
    book = ApprovalBook(host, store, writer)
    await book.load()
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(
        command=default_command(Runtime.DEMO),
        args=["--speed", "0", "--approval-rate", "0"],
        env={"HOME": str(workdir)},
        cwd=workdir,
        base_env=os.environ,
    )
    await host.start(AgentConfig("bench", adapter, launch, columns=120, rows=40))
    session = host.session("bench")
    seen_at: list[float] = []
    latencies: list[float] = []

    def listen(event: HostEvent) -> None:
        now = time.perf_counter()
        if isinstance(event, ScreenChanged) and not seen_at:
            if any(PROMPT in line for line in session.screen_lines()):
                seen_at.append(now)
        elif (
            isinstance(event, StateChanged)
            and event.state is AgentState.AWAITING_APPROVAL
            and seen_at
        ):
            latencies.append((now - seen_at[0]) * 1000)

    host.subscribe(listen)
    try:
        await session.wait_for(lambda s: s is AgentState.IDLE, 15)
        for _ in range(rounds):
            seen_at.clear()
            await host.send_text("bench", "RUN: true")
            if not await session.wait_for(lambda s: s is AgentState.AWAITING_APPROVAL, 15):
                raise SystemExit("the demo agent never asked for approval")
            approval_id = None
            for _ in range(200):
                approval_id = book.pending_for("bench")
                if approval_id is not None:
                    break
                await asyncio.sleep(0.01)
            assert approval_id is not None
            await book.deny(approval_id, actor="operator")
            await session.wait_for(lambda s: s is AgentState.IDLE, 15)
    finally:
        await host.close()
        await writer.close()
        await store.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    latencies = sorted(asyncio.run(run(args.rounds)))
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    print(f"machine   {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"rounds    {len(latencies)}")
    print(
        f"latency   p50 {statistics.median(latencies):.1f} ms   p95 {p95:.1f} ms   "
        f"max {latencies[-1]:.1f} ms   (target p95 <= {TARGET_P95_MS:g} ms: "
        f"{'PASS' if p95 <= TARGET_P95_MS else 'FAIL'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
