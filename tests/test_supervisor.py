"""The restart policy: growing backoff, a limit per window, early exits count as failed starts."""

from __future__ import annotations

from tundra_tui.orchestra.supervisor import RestartPolicy


def test_backoff_grows_then_gives_up_within_the_window() -> None:
    policy = RestartPolicy(max_restarts=3, window=100, start_seconds=1, base_delay=1)
    now = 0.0
    delays = []
    for _ in range(3):
        policy.started(now)
        now += 10  # ran for a while: not a failed start
        decision = policy.exited(now, code=1, signal=None)
        assert decision.restart
        delays.append(decision.delay)
    assert delays == [1, 2, 4]
    policy.started(now)
    decision = policy.exited(now + 10, code=1, signal=None)
    assert not decision.restart and "restarted 3 times in 100 s" in decision.reason


def test_old_restarts_leave_the_window() -> None:
    policy = RestartPolicy(max_restarts=2, window=50, start_seconds=1)
    for now in (0.0, 20.0, 200.0, 220.0):
        policy.started(now)
        assert policy.exited(now + 5, code=1, signal=None).restart


def test_repeated_early_exits_are_failed_starts() -> None:
    policy = RestartPolicy(start_seconds=3, max_failed_starts=3)
    decisions = []
    for now in (0.0, 10.0, 20.0):
        policy.started(now)
        decisions.append(policy.exited(now + 0.5, code=127, signal=None))
    assert [d.restart for d in decisions] == [True, True, False]
    assert "within 3 s of starting, 3 times in a row" in decisions[-1].reason


def test_a_long_run_clears_failed_starts_and_reset_forgets() -> None:
    policy = RestartPolicy(start_seconds=3, max_failed_starts=2, max_restarts=2)
    policy.started(0)
    assert policy.exited(1, code=1, signal=None).restart
    policy.started(2)
    assert policy.exited(50, code=None, signal=9).restart  # ran 48 s: not a failed start
    policy.reset()
    policy.started(60)
    decision = policy.exited(61, code=1, signal=None)
    assert decision.restart and decision.delay == 1
