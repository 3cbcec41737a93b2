"""Every binding in the app, with its id: for `?` help, the `:` palette and `ui.keys` remaps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode


@dataclass(frozen=True, slots=True)
class BindingRow:
    """One binding as the operator sees it."""

    group: str
    key: str
    id: str
    description: str
    action: str
    node: DOMNode | None
    """Where the action runs; None for a modal's keys (they work only while it is open)."""


def bindings_of(node: DOMNode) -> Iterable[Binding]:
    """The node's own bindings (each once), in declaration order."""
    seen: set[int] = set()
    for bindings in node._bindings.key_to_bindings.values():
        for binding in bindings:
            if id(binding) not in seen and not binding.system:
                seen.add(id(binding))
                yield binding


def collect(
    groups: Iterable[tuple[str, DOMNode, bool]], keymap: Mapping[str, str]
) -> list[BindingRow]:
    """Bindings with an id for each (group title, node, with its descendants) triple, keys as
    remapped. A binding shared by several nodes of one group (e.g. each kanban column) is listed
    once.
    """
    rows: list[BindingRow] = []
    listed: set[tuple[str, str]] = set()
    for group, root, deep in groups:
        for node in root.walk_children(with_self=True) if deep else [root]:
            for binding in bindings_of(node):
                if not binding.id or (group, binding.id) in listed:
                    continue
                listed.add((group, binding.id))
                key = keymap.get(binding.id, binding.key)
                rows.append(
                    BindingRow(
                        group=group,
                        key=display_keys(key, binding.key_display),
                        id=binding.id,
                        description=binding.description or binding.action,
                        action=binding.action,
                        node=node,
                    )
                )
    return rows


def declared(group: str, bindings: Iterable[object], keymap: Mapping[str, str]) -> list[BindingRow]:
    """Rows for a class's declared bindings (a modal that is not open has no node)."""
    return [
        BindingRow(
            group=group,
            key=display_keys(keymap.get(b.id, b.key), b.key_display),
            id=b.id,
            description=b.description or b.action,
            action=b.action,
            node=None,
        )
        for b in bindings
        if isinstance(b, Binding) and b.id
    ]


def declared_ids(module_prefix: str) -> set[str]:
    """The id of every binding declared by a class of the modules imported so far under
    `module_prefix`, whether or not a node of it exists (a tab's pane is composed when first
    shown, yet `ui.keys` may remap its keys from the start)."""
    ids: set[str] = set()
    seen: set[type] = set()
    classes: list[type] = [DOMNode]
    while classes:
        cls = classes.pop()
        if cls in seen:
            continue
        seen.add(cls)
        classes += cls.__subclasses__()
        if cls.__module__.startswith(module_prefix):
            ids.update(
                b.id for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding) and b.id
            )
    return ids


def display_keys(keys: str, key_display: str | None = None) -> str:
    """`ctrl+right_square_bracket,escape` -> `ctrl+] / esc`."""
    if key_display:
        return key_display
    names = {
        "question_mark": "?",
        "colon": ":",
        "slash": "/",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
        "escape": "esc",
        "enter": "enter",
        "space": "space",
    }
    shown = []
    for key in keys.split(","):
        parts = [names.get(part, part) for part in key.strip().split("+")]
        shown.append("+".join(parts))
    return " / ".join(shown)


def keymap_from_config(raw: Any, known: set[str]) -> tuple[dict[str, str], list[str]]:
    """The `ui.keys` table as a keymap, and one line per entry that cannot be used."""
    keymap: dict[str, str] = {}
    problems: list[str] = []
    if not isinstance(raw, dict):
        return keymap, problems
    for binding_id, keys in raw.items():
        if binding_id not in known:
            problems.append(f"ui.keys.{binding_id}: no binding has this id (see ? for ids)")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f'ui.keys.{binding_id}: expected keys such as "ctrl+q"')
        else:
            keymap[binding_id] = keys.strip()
    return keymap, problems
