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

PYTEST_GATE = f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q -p no:cacheprovider"
"""The gate CI runs: real pytest, without the venv's plugins (about 1 s of start-up)."""
UNITTEST_GATE = "python3 -m unittest discover -q -s tests -t ."
"""The demo's gate: a new user's Python may have no pytest."""

TEST_BEADS = '''\
"""Each bead's file names its bead and leaves nothing to do: the refinery's gate."""

import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent


class BeadFiles(unittest.TestCase):
    def test_each_bead_file_names_its_bead(self) -> None:
        for path in sorted((ROOT / "beads").glob("*.md")):
            with self.subTest(path=path.name):
                head = path.read_text(encoding="utf-8").partition("\\n")[0]
                self.assertTrue(head.startswith(f"# #{path.stem}: "), head)

    def test_no_bead_file_is_left_unfinished(self) -> None:
        for path in sorted((ROOT / "beads").glob("*.md")):
            with self.subTest(path=path.name):
                lines = path.read_text(encoding="utf-8").splitlines()
                todo = [line for line in lines if line.startswith("TODO")]
                self.assertEqual(todo, [], f"{path.name} is unfinished")


if __name__ == "__main__":
    unittest.main()
'''
PYTEST_INI = "[pytest]\ntestpaths = tests\n"
GATE_FILES = {
    "pytest.ini": PYTEST_INI,
    "tests/__init__.py": "",
    "tests/test_beads.py": TEST_BEADS,
}
"""`tests/__init__.py` lets `unittest discover -s tests -t .` import the tests as a package."""


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
