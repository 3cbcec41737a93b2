"""Secrets out of everything we keep: well-known token shapes become a labelled mark.

An agent's screen, a log line or an MCP server's arguments can carry a token the
operator never meant to store. Whatever reaches the database, a log file or a
table passes through `redact` first; the original is never written anywhere.
The shapes are the ones providers publish for their keys (and scanners such as
gitleaks match), so an ordinary word is never mistaken for one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
            re.DOTALL,
        ),
    ),
    ("anthropic", re.compile(r"sk-ant-[A-Za-z0-9_-]{16,}")),
    ("openai", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("github", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("gitlab", re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),
    ("aws", re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    (
        "aws-secret",
        re.compile(
            r"(?i)(aws_secret_access_key|secret_access_key)(\s*[=:]\s*[\"']?)[A-Za-z0-9/+]{40}"
        ),
    ),
    ("slack", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    (
        "slack-webhook",
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{16,}"),
    ),
    ("google", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}")),
)
"""(label, pattern) in the order they are tried: a PEM block first, since it may hold
text that looks like the shorter shapes. Distinctive prefixes need no word boundary
before them, so a token glued to a colour code (`\x1b[32mghp_…`) is still found; the
bare `sk-` of OpenAI keeps one, or `risk-assessment-…` would be taken for a key."""

_KEEP_GROUPS = {"aws-secret": 2, "bearer": 1}
"""Shapes whose leading groups name the secret rather than hold it, and are kept."""


def mark(label: str) -> str:
    """What a secret of this kind is replaced with."""
    return f"[REDACTED:{label}]"


def _replacer(label: str) -> Callable[[re.Match[str]], str]:
    keep = _KEEP_GROUPS.get(label, 0)

    def replace(match: re.Match[str]) -> str:
        return "".join(match.groups()[:keep]) + mark(label)

    return replace


def redact(text: str) -> str:
    """`text` with every well-known token shape replaced by `[REDACTED:kind]`."""
    if not text:
        return text
    for label, pattern in _SHAPES:
        text = pattern.sub(_replacer(label), text)
    return text


def holds_secret(text: str) -> bool:
    """True if `text` carries any well-known token shape."""
    return redact(text) != text


SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw(or)?d|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)"
)
"""Environment or header names whose values are secrets whatever they look like."""


def mask_value(name: str, value: str) -> str:
    """A value shown in a table: masked whole when its name says secret, else redacted."""
    if value and SECRET_NAME.search(name):
        return "••••"
    return redact(value)


def mask_mapping(values: Mapping[str, str]) -> dict[str, str]:
    """`mask_value` over every entry of an environment-like mapping."""
    return {name: mask_value(name, value) for name, value in values.items()}
