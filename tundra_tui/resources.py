"""Finding files that ship with the package, from a wheel or from a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def styles_dir() -> Path:
    """The directory of .tcss files.

    A wheel carries them as `tundra_tui/styles/`; a source checkout (including an
    editable install) keeps them at the top level beside the package.
    """
    for candidate in (_PACKAGE / "styles", _PACKAGE.parent / "styles"):
        if candidate.is_dir() and any(candidate.glob("*.tcss")):
            return candidate
    raise FileNotFoundError(f"no styles directory beside {_PACKAGE}; reinstall auto-tundra")


def stylesheets() -> list[Path]:
    """Every stylesheet, in name order so that load order is stable."""
    return sorted(styles_dir().glob("*.tcss"))
