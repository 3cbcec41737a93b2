"""The tmux tier: real agent CLIs in tmux, for recording screens (not our product).

The product tier is test_host_real_agents.py (our SessionHost). These tests
drive the CLIs through tmux and record `tmux capture-pane` screens into
``tests/fixtures/screens/<runtime>/<state>-recorded-<n>.txt``, so they run only
with ``TUNDRA_RECORD_SCREENS=1`` (or ``TUNDRA_REAL_AGENTS_TMUX=1`` to run them
without writing the fixtures):

    TUNDRA_REAL_AGENTS=1 TUNDRA_RECORD_SCREENS=1 .venv/bin/python -m pytest -m real_agents \
        tests/real_agents/test_real_agents.py
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence

import pytest
from agent_specs import SPECS, AgentSpec
from real_agent_harness import RECORD, Driver, Sandbox, submit, wait_for, wait_until

pytestmark = [
    pytest.mark.real_agents,
    pytest.mark.skipif(
        not (RECORD or os.environ.get("TUNDRA_REAL_AGENTS_TMUX") == "1"),
        reason="tmux tier: set TUNDRA_RECORD_SCREENS=1 or TUNDRA_REAL_AGENTS_TMUX=1",
    ),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


# --------------------------------------------------------------------------- the flows


def press(driver: Driver, keys: Sequence[str]) -> None:
    for key in keys:
        driver.send_key(key)
        time.sleep(0.2)


def launch(spec: AgentSpec, box: Sandbox, driver: Driver) -> str:
    argv, env = spec.setup(box)
    driver.start(argv, env, box.work)
    screen = wait_for(driver, spec.is_idle, spec.start_timeout, f"{spec.name} idle prompt")
    time.sleep(0.5)  # keys sent right after a screen is painted can be dropped
    return screen


def ask_to_run(spec: AgentSpec, driver: Driver, cmd: str) -> str:
    submit(driver, f"RUN: {cmd}")
    return wait_for(driver, spec.is_awaiting_approval, 30, f"{spec.name} approval prompt")


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_approve(runtime: str, make_sandbox: Callable[[str], Sandbox], driver: Driver) -> None:
    spec = SPECS[runtime]
    box = make_sandbox(runtime)
    rec = box.recorder

    rec.record("idle", launch(spec, box, driver))

    submit(driver, "SLOW hello")
    rec.record("working", wait_for(driver, spec.is_working, 20, f"{runtime} working"))
    answered = "Hello from the fake model! You said: SLOW hello"
    time.sleep(1.5)  # mid-answer: spinner with a token count, or text still streaming
    screen = driver.screen()
    if answered not in screen and not spec.is_idle(screen):
        rec.record("working", screen)
    screen = wait_for(
        driver, lambda s: answered in s and spec.is_idle(s), 40, f"{runtime} idle after answer"
    )
    rec.record("idle", screen)
    time.sleep(0.5)

    rec.record("awaiting_approval", ask_to_run(spec, driver, "touch approved.txt"))
    time.sleep(0.5)
    press(driver, spec.approve_keys)
    assert wait_until((box.work / "approved.txt").exists, 20), driver.screen()
    screen = wait_for(
        driver,
        lambda s: spec.is_idle(s) and not spec.is_awaiting_approval(s),
        30,
        f"{runtime} idle after approval",
    )
    rec.record("idle", screen)

    assert wait_until(lambda: spec.usage_tokens(box) > 0, 15), f"no token counts in {runtime} log"
    kinds = [r["reply"]["kind"] for r in box.requests() if r.get("reply")]  # type: ignore[index]
    assert "run-tool" in kinds or "run-fenced" in kinds, kinds
    for req in box.requests():
        headers = {k.lower(): v for k, v in req["headers"].items()}  # type: ignore[attr-defined]
        for secret in ("authorization", "x-api-key"):
            assert headers.get(secret, "***") == "***", "API key leaked into the request log"


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_deny(runtime: str, make_sandbox: Callable[[str], Sandbox], driver: Driver) -> None:
    spec = SPECS[runtime]
    box = make_sandbox(runtime)

    launch(spec, box, driver)
    box.recorder.record("awaiting_approval", ask_to_run(spec, driver, "touch approved.txt"))
    time.sleep(0.5)
    press(driver, spec.deny_keys)
    screen = wait_for(
        driver,
        lambda s: spec.is_idle(s) and not spec.is_awaiting_approval(s),
        30,
        f"{runtime} idle after deny",
    )
    box.recorder.record("idle", screen)
    time.sleep(1.0)  # give a wrongly-run command time to show up
    assert not (box.work / "approved.txt").exists(), screen
    kinds = [r["reply"]["kind"] for r in box.requests() if r.get("reply")]  # type: ignore[index]
    assert "done" not in kinds, f"{runtime} sent a tool result after the deny: {kinds}"
