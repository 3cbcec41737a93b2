"""The garbage collector as `at tui` sets it (ui/collector.py): held until start-up is over,
then start-up's objects frozen and young collections less frequent. Run in a child process:
the test process's own collector is left alone."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

from tundra_tui.ui import collector


def test_settle_without_hold_leaves_the_collector_alone() -> None:
    before = gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()
    collector.settle()
    assert (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()) == before
    assert not collector.spare(), "nor does spare"


def test_hold_then_settle_in_a_process_of_its_own() -> None:
    script = textwrap.dedent(
        """
        import gc
        from tundra_tui.ui import collector

        collector.hold()
        assert not gc.isenabled()
        start_up = [[i] for i in range(1000)]  # lives as long as the app
        collector.settle()
        assert gc.isenabled()
        assert gc.get_threshold() == collector.THRESHOLDS
        assert gc.get_freeze_count() >= len(start_up)
        collector.settle()  # once only
        assert gc.get_threshold() == collector.THRESHOLDS

        gc.collect(1)
        assert not collector.spare(), "no middle collection near: nothing runs"
        kept = []
        while gc.get_count()[1] < collector.SPARE_AT:  # make young collections happen
            kept.append([[] for _ in range(200)])
            assert len(kept) < 100_000
        assert collector.spare(), "one is near: it runs now"
        assert gc.get_count()[1] == 0
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
