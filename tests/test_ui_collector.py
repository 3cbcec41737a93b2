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
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
