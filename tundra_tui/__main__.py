"""`python -m tundra_tui` runs the same entry point as `at`."""

from __future__ import annotations

import sys

from tundra_tui.cli import main

sys.exit(main())
