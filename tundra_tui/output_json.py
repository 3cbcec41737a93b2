"""JSON for scripts (`--json`), apart from the tables in `output` so that a quick command
printing JSON imports neither rich nor shutil (see cli/quick.py)."""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False  # `typing` is not imported for this (see cli/__init__.py)
if TYPE_CHECKING:
    from typing import Any, TextIO


def _plain(value: Any) -> Any:
    """Convert dataclasses, enums and tuples into JSON-ready values."""
    from dataclasses import asdict, is_dataclass
    from enum import Enum

    if is_dataclass(value) and not isinstance(value, type):
        return {key: _plain(item) for key, item in asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return value


def dump_json(value: Any, stream: TextIO | None = None) -> None:
    """Write `value` as indented JSON; every control character is escaped."""
    dump_plain_json(_plain(value), stream)


def dump_plain_json(value: Any, stream: TextIO | None = None) -> None:
    """`dump_json` for a value made of JSON's own types already (the quick path's: it
    need not import dataclasses and enum to find none)."""
    text = json.dumps(value, indent=2, ensure_ascii=True, sort_keys=False)
    # ensure_ascii leaves DEL (0x7f) raw; it is ASCII but still a control character.
    print(text.replace("\x7f", "\\u007f"), file=stream or sys.stdout)
