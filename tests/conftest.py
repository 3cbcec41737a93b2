"""Shared fixtures: every test gets a private HOME so nothing touches the real one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot

from tundra_tui.daemon.log import DaemonLog

os.environ["TZ"] = "UTC"
time.tzset()  # times shown on screens (and in snapshots) do not depend on the machine

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"


class _TopLevelSnapshots(pytest_textual_snapshot.SVGImageExtension):
    """SVG snapshots live in the top-level `snapshots/<test module>/`, not beside the tests."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(SNAPSHOTS / Path(test_location.filepath).stem)


pytest_textual_snapshot.SVGImageExtension = _TopLevelSnapshots  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _working_directory_kept() -> Iterator[None]:
    """Give the next test the working directory this one started in, even when this one
    changed it by hand or its directory was removed (the next test would fail in it)."""
    start = os.getcwd()
    yield
    os.chdir(start)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME at an empty directory and clear variables that pick a town or an actor."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TUNDRA_TOWN", raising=False)
    monkeypatch.delenv("TUNDRA_ACTOR", raising=False)
    for name, value in (
        ("GIT_AUTHOR_NAME", "Test"),
        ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
        ("GIT_COMMITTER_NAME", "Test"),
        ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
    ):
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture
def town_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A freshly initialised town, with the working directory inside it."""
    from tundra_tui.cli import main

    root = tmp_path / "town"
    assert main(["init", str(root)]) == 0
    monkeypatch.chdir(root)
    yield root


@pytest.fixture
def log(tmp_path: Path) -> Iterator[DaemonLog]:
    """A daemon log in the test's directory, closed afterwards."""
    opened = DaemonLog(tmp_path / "daemon.log")
    yield opened
    opened.close()
