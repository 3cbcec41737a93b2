"""Fixtures for the opt-in real-agent tier (see README.md in this folder).

Everything here is skipped unless ``TUNDRA_REAL_AGENTS=1`` *and* the CLI under
test was installed by ``scripts/install-real-agents.sh``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_model_server import start_server
from real_agent_harness import ENABLED, Sandbox, TmuxDriver, git_init, reap_by_home


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    reasons: list[str] = []
    if not ENABLED:
        reasons.append("real-agent tests are opt-in: set TUNDRA_REAL_AGENTS=1")
    if shutil.which("tmux") is None:
        reasons.append("tmux is not installed")
    if not reasons:
        return
    skip = pytest.mark.skip(reason="; ".join(reasons))
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[[str], Sandbox]]:
    """Factory: ``make_sandbox("claude")`` -> a fresh :class:`Sandbox` (cleaned up after)."""
    made: list[Sandbox] = []

    def make(runtime: str) -> Sandbox:
        # Short real paths: they show up in agent headers and are replaced by <work>/<home>.
        root = Path(tempfile.mkdtemp(prefix=f"at-real-{runtime}-")).resolve()
        home, work = root / "home", root / "work"
        for d in (home, work, root / "tmp"):
            d.mkdir()
        git_init(work)
        log = root / "server.jsonl"
        server, port = start_server(log)
        box = Sandbox(root, home, work, server, port, log, runtime)
        made.append(box)
        return box

    yield make
    for box in made:
        box.server.shutdown()
        box.server.server_close()
        reap_by_home(box.home)
        if os.environ.get("TUNDRA_REAL_AGENTS_KEEP") != "1":
            shutil.rmtree(box.root, ignore_errors=True)


@pytest.fixture
def driver() -> Iterator[TmuxDriver]:
    drv = TmuxDriver()
    yield drv
    drv.close()
