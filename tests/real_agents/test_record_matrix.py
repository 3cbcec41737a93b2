"""The opt-in tier re-records the version matrix (issue 14) when asked to.

Skipped unless ``TUNDRA_REAL_AGENTS=1`` (the tier's switch) and
``TUNDRA_RECORD_MATRIX=1``: re-recording every CLI and version takes about 40 minutes
and rewrites tests/fixtures/screens/matrix. ``TUNDRA_RECORD_MATRIX_CLI=claude`` limits
it to one CLI. The default test run checks the recorded matrix from its fixtures
(tests/test_detect_matrix.py).
"""

from __future__ import annotations

import os

import pytest
import record_matrix

pytestmark = [
    pytest.mark.real_agents,
    pytest.mark.skipif(
        os.environ.get("TUNDRA_RECORD_MATRIX") != "1",
        reason="re-records the whole version matrix: set TUNDRA_RECORD_MATRIX=1",
    ),
]


def test_record_the_version_matrix() -> None:
    cli = os.environ.get("TUNDRA_RECORD_MATRIX_CLI")
    assert record_matrix.main(["--cli", cli] if cli else []) == 0
    for version in record_matrix.versions():
        if cli in (None, version.cli) and version.binary().exists():
            folder = record_matrix.OUT / version.cli / version.version
            assert sorted(p.name for p in folder.iterdir()) == sorted(record_matrix.SIZES)
