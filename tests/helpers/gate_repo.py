"""A repository with a real, fast test suite for the refinery's gates to run.

`tests/test_beads.py` is stdlib unittest (pytest collects it too): every `beads/<id>.md`
starts `# #<id>: ` and has no line starting `TODO`, which is what the demo agent writes,
and what its `demo-gate-fails-*` labels break on purpose. `pytest.ini` pins pytest's
rootdir to the repository: without it, a gate run inside `.tundra/refinery/work` walks up
and takes the operator's conftest.py and rootdir.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tundra_tui.demo_town import GATE as DEMO_GATE
from tundra_tui.demo_town import GATE_FILES as DEMO_GATE_FILES

PYTEST_GATE = f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q -p no:cacheprovider"
"""The gate CI runs: real pytest, without the venv's plugins (about 1 s of start-up)."""
UNITTEST_GATE = DEMO_GATE
"""The demo's gate: a new user's Python may have no pytest."""

PYTEST_INI = DEMO_GATE_FILES["pytest.ini"]
GATE_FILES = {path: text for path, text in DEMO_GATE_FILES.items() if path != "CHANGELOG.md"}
"""The demo repository's test suite (one source): `pytest.ini`, `tests/__init__.py` (so that
`unittest discover -s tests -t .` imports the tests as a package) and `tests/test_beads.py`."""


def write_gate_repo(root: Path, extra: dict[str, str] | None = None) -> str:
    """Write and commit the gate's files (and `extra` ones) on the checked-out branch of
    `root`, a test's own fresh repository (this is the test's setup, so it commits in the
    checkout); the new commit's sha."""
    for path, text in {**GATE_FILES, **(extra or {})}.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    paths = [*GATE_FILES, *(extra or {})]
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    for argv in (
        ["add", "--", *paths],
        [*identity, "commit", "-q", "-m", "the gate: a test per bead file"],
    ):
        subprocess.run(["git", "-C", str(root), *argv], check=True, capture_output=True)
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()
