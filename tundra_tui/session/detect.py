"""Agent state detection: screen rules per runtime, hook and notify mapping, and a tracker.

Structured signals (Claude Code hooks, Codex notify) are preferred; the screen
is the fallback and the only path for runtimes without hooks (DESIGN.md). Screen
rules are data, versioned against the CLI releases they were taken from
(shared/research/real-agents.md), and only look at the bottom of the screen so
that old scrollback cannot trigger them. Where a runtime's own rules find
nothing (a release reworded its prompt, or the runtime has no rules) a generic
layer (generic_rules.py) looks for the shapes every CLI shares. Every answer
carries the evidence that produced it, naming the rule and the versions it was
written for, and "no rule matched" is an explicit unknown, never a guess.

Everything here is pure: no I/O, no clock (callers pass `now`), no Textual.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import TundraError
from tundra_tui.session import generic_rules

EvidenceSource = Literal["screen", "hook", "notify", "process"]

MATCHED_LIMIT = 200
"""Evidence keeps at most this many characters of matched text."""
DETAIL_LIMIT = 2000
DEFAULT_REGION = 15
"""Rules look at this many non-blank lines from the bottom unless they say otherwise."""


class Detected(StrEnum):
    """What detection can tell about a live agent; the process states come from elsewhere."""

    WORKING = "working"
    IDLE = "idle"
    AWAITING_APPROVAL = "awaiting_approval"
    UNKNOWN = "unknown"

    @property
    def agent_state(self) -> AgentState:
        """The same state as the store and the UI name it."""
        return AgentState(self.value)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a state was chosen: which input, which rule, and what it matched."""

    source: EvidenceSource
    rule: str
    """A stable id such as `claude.approval.proceed`; `none` when nothing matched."""
    matched: str = ""
    detail: str | None = None
    versions: str = ""
    """The CLI versions the rule was written for (`claude 2.1.330`, `generic`); empty
    when no rule decided (nothing matched, mere screen activity)."""

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready mapping."""
        return {
            "source": self.source,
            "rule": self.rule,
            "matched": self.matched,
            "detail": self.detail,
            "versions": self.versions,
        }


@dataclass(frozen=True, slots=True)
class Detection:
    """One answer: a state and the evidence behind it."""

    state: Detected
    evidence: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, as `at detect` prints it."""
        return {
            "state": self.state.value,
            "evidence": self.evidence.to_dict() if self.evidence else None,
        }


@dataclass(frozen=True, slots=True)
class ScreenRule:
    """A regex that, found in the bottom `region` non-blank lines, means `state`.

    Rules with state `unknown` name screens that block the agent without being an
    approval (first-run dialogs, fatal errors): they explain an unknown and keep
    an idle rule from matching underneath.
    """

    id: str
    state: Detected
    pattern: re.Pattern[str]
    region: int = DEFAULT_REGION
    versions: str = ""
    """The CLI versions it was written for and checked against."""
    needles: tuple[str, ...] = ()
    """When given, the rule runs only on a region whose lowercased text holds one of them."""


Rules = tuple[ScreenRule, ...]

# Approval beats working beats a blocking screen beats idle.
_RANK = {
    Detected.AWAITING_APPROVAL: 0,
    Detected.WORKING: 1,
    Detected.UNKNOWN: 2,
    Detected.IDLE: 3,
}

_SP = r"[^\S\n]"
"""Whitespace within one line; Unicode-aware, so it matches Claude's U+00A0 after ❯."""
_BRAILLE = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_LEAD = generic_rules.LEAD
"""Spaces and box frames at the start of a line."""
_LIVE = generic_rules.OPTIONS_TO_END
"""Only options, hints and frames from here to the bottom: a live menu, not a quoted one."""
_AIDER_PROMPT = r"[a-z-]*(?: multi)?>"
"""Aider's prompt: `>`, or the edit format and/or `multi` before it (`diff>`)."""


def _rule(rule_id: str, state: Detected, pattern: str, region: int = DEFAULT_REGION) -> ScreenRule:
    return ScreenRule(rule_id, state, re.compile(pattern, re.MULTILINE), region)


def _versioned(versions: str, rules: Rules) -> Rules:
    """A runtime's table, each rule stamped with the versions it was checked against: those
    of the version matrix where it decided a capture rightly (`MATRIX_VERSIONS`), else the
    version the table was written for."""
    return tuple(replace(rule, versions=MATRIX_VERSIONS.get(rule.id, versions)) for rule in rules)


MATRIX_VERSIONS: Mapping[str, str] = {
    # Verified on real captures (tests/fixtures/screens/matrix, issue 14): the rule decided
    # at least one screen of each of these versions, as labelled. Other rules keep the
    # version their table was written from. tests/test_detect_matrix.py keeps this true.
    "aider.approval.yes_no": "aider 0.83.2, 0.84.0, 0.85.5, 0.86.2",
    "aider.idle.prompt": "aider 0.83.2, 0.84.0, 0.85.5, 0.86.2",
    "aider.working.streaming": "aider 0.83.2, 0.84.0, 0.85.5, 0.86.2",
    "aider.working.waiting": "aider 0.83.2, 0.84.0, 0.85.5, 0.86.2",
    "claude.approval.proceed": "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330",
    "claude.dialog.confirm": "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330",
    "claude.dialog.theme": "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330",
    "claude.idle.prompt": "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330",
    "claude.working.interrupt": "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330",
    "codex.approval.question": "codex 0.135.0, 0.150.1, 0.160.1, 0.169.0",
    "codex.dialog.trust": "codex 0.135.0, 0.150.1, 0.160.1, 0.169.0",
    "codex.idle.composer": "codex 0.150.1, 0.160.1, 0.169.0",
    "codex.idle.composer_footer": "codex 0.135.0",
    "codex.working.interrupt": "codex 0.135.0, 0.150.1, 0.160.1, 0.169.0",
    "codex.working.streaming": "codex 0.160.1, 0.169.0",
    "gemini.approval.allow_execution": "gemini 0.30.1, 0.45.2, 0.55.1, 0.61.0",
    "gemini.approval.allow_once": "gemini 0.30.1, 0.45.2, 0.55.1, 0.61.0",
    "gemini.dialog.trust": "gemini 0.45.2, 0.55.1, 0.61.0",
    "gemini.idle.composer": "gemini 0.30.1, 0.45.2, 0.55.1, 0.61.0",
    "gemini.working.cancel": "gemini 0.30.1, 0.45.2, 0.55.1, 0.61.0",
    "opencode.approval.permission": "opencode 1.3.2, 1.14.41, 1.17.19, 1.18.33",
    "opencode.idle.footer": "opencode 1.3.2, 1.14.41, 1.17.19, 1.18.33",
    "opencode.working.interrupt": "opencode 1.3.2, 1.14.41, 1.17.19, 1.18.33",
    "opencode.working.track": "opencode 1.3.2, 1.14.41, 1.17.19, 1.18.33",
}


_A, _W, _U, _I = Detected.AWAITING_APPROVAL, Detected.WORKING, Detected.UNKNOWN, Detected.IDLE

# Claude Code 2.1.330 (real-agents.md §3); older-version strings from mission-anchors.md §3.17.
_CLAUDE: Rules = _versioned(
    "claude 2.1.330",
    (
        _rule(
            "claude.approval.proceed",
            _A,
            rf"^{_LEAD}Do you want to [^\n]*\?{_SP}*\n(?:[^\n]*\n){{0,2}}"
            rf"{_LEAD}❯{_SP}*1\.{_SP}+Yes\b" + _LIVE,
        ),
        _rule("claude.approval.amend", _A, rf"^{_LEAD}Esc to cancel · Tab to amend", region=2),
        _rule(
            "claude.approval.tell_claude",
            _A,
            rf"^{_LEAD}\d\.{_SP}+No, and tell Claude what to do differently" + _LIVE,
        ),
        _rule("claude.working.interrupt", _W, r"(?:esc|ctrl\+c) to interrupt"),
        _rule("claude.working.spinner", _W, rf"^{_SP}*[✽✻✶✳✢·*]{_SP}+[^\n…]{{1,60}}…{_SP}*\("),
        _rule("claude.working.tool", _W, rf"^{_SP}*Running{_SP}+\S[^\n]* · \d+s{_SP}*$"),
        _rule("claude.dialog.confirm", _U, r"Enter to confirm · Esc to cancel"),
        _rule("claude.dialog.auto_mode", _U, r"Make auto mode your default permission mode\?"),
        _rule(
            "claude.dialog.theme",
            _U,
            rf"Choose the text style that looks best with your|^{_SP}*Syntax theme: ",
        ),
        _rule("claude.error.connect", _U, r"Unable to connect to Anthropic services"),
        # The prompt box: a ❯ line (bare, or with a draft) directly between two ──── rules;
        # 2.0.x draws `>` instead of `❯`.
        _rule("claude.idle.prompt", _I, rf"(?<=─\n)[❯>](?:{_SP}[^\n]*)?(?=\n─)"),
        _rule("claude.idle.shortcuts", _I, r"\? for shortcuts"),
    ),
)

# Codex CLI 0.169.0 (real-agents.md §4); the question variants from CAO (mission-anchors §3.15).
_CODEX: Rules = _versioned(
    "codex 0.169.0",
    (
        _rule(
            "codex.approval.question",
            _A,
            r"Would you like to (?:run the following command|make the following edits"
            r"|grant these permissions)\?|Do you want to approve network access",
        ),
        _rule("codex.approval.menu", _A, rf"^›{_SP}+1\.{_SP}+Yes, proceed\b"),
        _rule("codex.approval.footer", _A, r"Press enter to confirm or esc to cancel"),
        _rule("codex.working.interrupt", _W, r"esc to interrupt"),
        _rule("codex.working.running", _W, rf"^•{_SP}+Running{_SP}+\S"),
        # While text streams 0.169 shows no status line: a submitted prompt with no
        # `Worked for` or `■` notice (`■ Conversation interrupted`, `■ unexpected status
        # 401`: the turn ended) between it and the composer, under
        # 0.169's `? for shortcuts` footer. Before it (0.135-0.160) the status line stays
        # while streaming and no `Worked for` follows an answer, so the rule would read
        # every answered prompt as work.
        _rule(
            "codex.working.streaming",
            _W,
            rf"^›{_SP}+(?!Ask Codex to do anything)\S[^\n]*"
            rf"(?=\n(?:(?!{_SP}*(?:Worked for\b|■{_SP}))[^\n]*\n)*"
            rf"›(?:{_SP}|$)[\s\S]*?\? for shortcuts)",
        ),
        _rule(
            "codex.dialog.trust",
            _U,
            r"Trust this folder\?|Do you trust the contents of this directory\?"
            r"|enter continue · esc back",
        ),
        _rule("codex.idle.composer", _I, rf"^›{_SP}+Ask Codex to do anything"),
        # The composer with another placeholder (`› Explain this codebase`, 0.135) or a
        # draft, right above the `<model> <effort> · <dir>` footer at the bottom.
        _rule(
            "codex.idle.composer_footer",
            _I,
            rf"^›(?:{_SP}[^\n]*)?\n{_SP}{{2}}\S[^\n]* · [^\n]*(?:\n[^\n]*for shortcuts[^\n]*)?\Z",
            region=4,
        ),
        _rule("codex.idle.shortcuts", _I, r"\? for shortcuts"),
    ),
)

# Aider 0.86.2 (real-agents.md §5). Its questions and prompt are plain lines, so
# position matters: a pending question or the prompt is the last non-blank line.
_AIDER: Rules = _versioned(
    "aider 0.86.2",
    (
        _rule("aider.approval.yes_no", _A, r"\(Y\)es/\(N\)o[^\n]*\[(?:Yes|No)\]:", region=1),
        _rule(
            "aider.working.waiting",
            _W,
            rf"^(?:[░▒▓█#=]|{_SP})*Waiting for \S+",
            region=3,
        ),
        _rule("aider.working.running", _W, rf"^Running{_SP}+\S[^\n]*\Z", region=1),
        # Streaming: a submitted prompt, no `Tokens:` line since, and no new prompt at the bottom.
        _rule(
            "aider.working.streaming",
            _W,
            rf"^{_AIDER_PROMPT}{_SP}+\S[^\n]*"
            rf"(?=(?:\n(?!Tokens: )[^\n]*)*\n(?!{_AIDER_PROMPT}(?:{_SP}|$))(?!Tokens: )[^\n]*\Z)",
        ),
        _rule(
            "aider.idle.prompt",
            _I,
            # The last ──── rule, then at most the list of files in the chat, then the prompt.
            rf"^─{{4,}}\n(?:(?!─{{4}}|Tokens: |{_AIDER_PROMPT}(?:{_SP}|$))[^\n]*\n){{0,8}}"
            rf"{_AIDER_PROMPT}(?:{_SP}[^\n]*)?\Z",
            region=10,
        ),
    ),
)

# Gemini CLI 0.61.0 (real-agents.md §6); `Apply this change` etc. from mission-anchors §3.17.
_GEMINI: Rules = _versioned(
    "gemini 0.61.0",
    (
        _rule("gemini.approval.allow_execution", _A, r"Allow execution of\b[^\n]*\?"),
        _rule("gemini.approval.allow_once", _A, rf"●{_SP}*1\.{_SP}+Allow once"),
        _rule("gemini.approval.peer", _A, r"Apply this change\?|Waiting for user confirmation"),
        _rule("gemini.working.cancel", _W, r"esc to cancel"),
        _rule("gemini.working.spinner", _W, rf"^{_SP}*[{_BRAILLE}]{_SP}+\S"),
        _rule("gemini.dialog.trust", _U, r"Do you trust the files in this folder\?"),
        _rule("gemini.idle.composer", _I, r"Type your message or @path/to/file"),
        _rule("gemini.idle.shortcuts", _I, r"\? for shortcuts"),
    ),
)

# OpenCode 1.18.33 (real-agents.md §7).
_OPENCODE: Rules = _versioned(
    "opencode 1.18.33",
    (
        _rule("opencode.approval.permission", _A, r"△ Permission required"),
        _rule("opencode.approval.menu", _A, rf"^{_LEAD}Allow once{_SP}+Allow always{_SP}+Reject"),
        _rule("opencode.working.interrupt", _W, r"esc interrupt"),
        _rule("opencode.working.track", _W, rf"^{_SP}*[⬝■]{{4,}}"),
        # Narrower than ~140 columns the footer drops its "• OpenCode <version>" ending;
        # the working footer also says "ctrl+p commands", but working outranks idle.
        _rule("opencode.idle.footer", _I, rf"ctrl\+p commands(?:{_SP}+•{_SP}+OpenCode\b|{_SP}*$)"),
        _rule("opencode.idle.ask", _I, r"Ask anything"),
    ),
)

# Our bundled demo agent (tundra_tui.demo_agent): its screens are a contract we own.
_DEMO: Rules = _versioned(
    "demo (this repo)",
    (
        _rule(
            "demo.approval.menu",
            _A,
            rf"^Allow this command\?{_SP}*\n(?:[^\n]*\n){{0,4}}?{_SP}*❯{_SP}*1\.{_SP}+Yes\b",
        ),
        _rule("demo.approval.hint", _A, r"1/y approve · 2/n/Esc deny"),
        _rule(
            "demo.working.spinner", _W, rf"^{_SP}*[{_BRAILLE}]{_SP}+\S[^\n]*\(esc to interrupt\)"
        ),
        _rule("demo.idle.prompt", _I, rf"^demo❯(?:{_SP}[^\n]*)?$"),
        _rule("demo.idle.status", _I, r"\[demo\] idle"),
    ),
)

SCREEN_RULES: Mapping[str, Rules] = {
    "claude": _CLAUDE,
    "codex": _CODEX,
    "aider": _AIDER,
    "gemini": _GEMINI,
    "opencode": _OPENCODE,
    "demo": _DEMO,
    "custom": (),
}
"""Built-in rules per runtime; `custom` has none until config gives patterns."""


def _generic(specs: tuple[generic_rules.Spec, ...], state: Detected) -> Rules:
    return tuple(
        replace(
            _rule(rule_id, state, pattern, region),
            versions=generic_rules.VERSIONS,
            needles=needles,
        )
        for rule_id, pattern, region, needles in specs
    )


GENERIC_DIALOGS: Rules = _generic(generic_rules.DIALOGS, _U)
GENERIC_RULES: Rules = (
    *GENERIC_DIALOGS,
    *_generic(generic_rules.APPROVALS, _A),
    *_generic(generic_rules.WORKING, _W),
)
"""The generic layer, in the order it is tried: a dialog beats an approval shape (a trust
dialog is also a menu whose first option is Yes), which beats working."""
_WORKING_BELOW = re.compile(generic_rules.WORKING_BELOW, re.MULTILINE)


def rules_for_custom(
    idle_pattern: str | None = None,
    working_pattern: str | None = None,
    approval_pattern: str | None = None,
    *,
    region: int = DEFAULT_REGION,
) -> Rules:
    """Rules from config patterns (`runtimes.<runtime>.*_pattern`); empty ones are skipped.

    Patterns are searched in MULTILINE mode over the bottom `region` non-blank
    lines, joined by newlines, each with its trailing whitespace removed.

    Raises TundraError naming the bad pattern, so a typo in tundra.toml is one
    clear line rather than an agent stuck at unknown.
    """
    if region < 1:
        raise TundraError(f"a rule's region must be at least one line, not {region}")
    rules: list[ScreenRule] = []
    for kind, state, pattern in (
        ("approval", Detected.AWAITING_APPROVAL, approval_pattern),
        ("working", Detected.WORKING, working_pattern),
        ("idle", Detected.IDLE, idle_pattern),
    ):
        if not pattern:
            continue
        try:
            rule = _rule(f"custom.{kind}", state, pattern, region)
            rules.append(replace(rule, versions="custom (tundra.toml)"))
        except re.error as error:
            raise TundraError(f"invalid {kind}_pattern {pattern!r}: {error}") from None
    return tuple(rules)


def detect_screen(runtime: str, lines: Sequence[str], *, custom: Rules | None = None) -> Detection:
    """Classify one screen of `runtime` from its bottom lines.

    `custom` rules are checked with the runtime's own (for runtime `custom` they
    are the only ones); where none matches, the generic layer answers. Raises
    TundraError for a runtime we have no rules for.
    """
    found = _first_match(runtime, lines, custom)
    if found is None:
        return Detection(
            Detected.UNKNOWN,
            Evidence("screen", "none", "", f"{runtime}: no rule matched the bottom lines"),
        )
    rule, match, region, over = found
    from_bottom = region.count("\n", match.start()) + 1
    detail = f"{runtime}: line {from_bottom} from the bottom"
    if over is not None:
        detail += f"; a dialog, so not {over.state.value} ({over.id})"
    return Detection(
        rule.state,
        Evidence("screen", rule.id, _trim(match.group(0)), detail, rule.versions),
    )


CODEX_TURN_ROWS = 200
"""How far up Codex's last submitted prompt is looked for (a screen's height, at most)."""
_CODEX_PROMPT = re.compile(r"^›(?:\s|$)")


def detection_rows(runtime: str, bottom: Callable[[int], list[str]], count: int) -> list[str]:
    """The rows detection reads, from `bottom(n)` (a screen's last `n` rows, blank ones at
    the very bottom dropped): the bottom `count`, where every runtime shows its state.

    Codex streams its answer with no status line: only the prompt submitted above the
    composer tells the turn is not over (`codex.working.streaming`). On a tall screen
    that prompt may stand far above the bottom rows, with nothing but blank rows and the
    answer between (200x50: 41 rows). When the bottom rows show one `›` line only (the
    composer, or an approval's selection), they are read from Codex's last `›` line above
    instead: the current turn, never older ones. Other runtimes read the bottom rows only,
    so an answered prompt high on the screen stays out of sight.
    """
    rows = bottom(count)
    if runtime != "codex" or sum(1 for row in rows if _CODEX_PROMPT.match(row)) != 1:
        return rows
    taller = bottom(CODEX_TURN_ROWS)
    above = len(taller) - len(rows)
    start = next((i for i in range(above - 1, -1, -1) if _CODEX_PROMPT.match(taller[i])), None)
    return rows if start is None else taller[start:]


def matched_prompt(
    runtime: str, lines: Sequence[str], *, custom: Rules | None = None
) -> str | None:
    """The whole text an approval rule matched on this screen, never shortened; None when
    the screen shows no approval prompt. Evidence is trimmed for display, but what an
    operator approves must be compared in full."""
    found = _first_match(runtime, lines, custom)
    if found is None or found[0].state is not Detected.AWAITING_APPROVAL:
        return None
    return found[1].group(0).strip()


_Found = tuple[ScreenRule, re.Match[str], str]


def _first_match(
    runtime: str, lines: Sequence[str], custom: Rules | None
) -> tuple[ScreenRule, re.Match[str], str, ScreenRule | None] | None:
    """The deciding rule, its match and region, and the runtime rule a dialog overruled.

    The runtime's own rules win where they match, with one exception for precision: a
    generic dialog on screen overrules an own idle or approval answer (a reworded
    trust dialog must never be typed into, nor offered for approval).
    """
    try:
        builtin = SCREEN_RULES[runtime]
    except KeyError:
        raise TundraError(
            f"unknown runtime {runtime!r}: expected one of {', '.join(SCREEN_RULES)}"
        ) from None
    rules = sorted((*(custom or ()), *builtin), key=lambda rule: _RANK[rule.state])
    visible = [line.rstrip() for line in lines if line.strip()]
    regions: dict[int, str] = {}
    lowered: dict[int, str] = {}

    def region_of(rule: ScreenRule) -> str:
        region = regions.get(rule.region)
        if region is None:
            region = regions[rule.region] = "\n".join(visible[-rule.region :])
        return region

    def may_match(rule: ScreenRule) -> bool:
        if not rule.needles:
            return True
        lower = lowered.get(rule.region)
        if lower is None:
            lower = lowered[rule.region] = region_of(rule).lower()
        return any(needle in lower for needle in rule.needles)

    idle_rules = [rule for rule in rules if rule.state is Detected.IDLE]

    def pending(rule: ScreenRule, match: re.Match[str], region: str) -> bool:
        """An approval is pending only with no work or idle prompt below it (else it was
        quoted, or has been answered). A configured pattern means what its author says."""
        if rule.id.startswith("custom."):
            return True
        below = match.end()
        return not _WORKING_BELOW.search(region, below) and not any(
            idle.pattern.search(region, below) for idle in idle_rules
        )

    def search(candidates: Sequence[ScreenRule]) -> _Found | None:
        for rule in candidates:
            if not may_match(rule):
                continue
            region = region_of(rule)
            match = rule.pattern.search(region)
            while (
                match
                and rule.state is Detected.AWAITING_APPROVAL
                and not pending(rule, match, region)
            ):
                match = rule.pattern.search(region, match.end())
            if match:
                return rule, match, region
        return None

    own = search(rules)
    if own is not None and own[0].state in (Detected.IDLE, Detected.AWAITING_APPROVAL):
        dialog = search(GENERIC_DIALOGS)
        if dialog is not None:
            return (*dialog, own[0])
    if own is None:
        own = search(GENERIC_RULES)
    return None if own is None else (*own, None)


def _trim(text: str, limit: int = MATCHED_LIMIT) -> str:
    """Shorten matched text for evidence: long runs of one character (box rules) collapse."""
    return _cap(re.sub(r"(\S)\1{7,}", r"\1\1\1…", text.strip()), limit)


def _cap(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Cut `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- structured signals -----------------------------------------------------------------

HOOK_VERSIONS = "claude 2.1.330 hooks"
"""Where the hook mapping was checked (claude-code-hooks.md)."""
NOTIFY_VERSIONS = "codex notify (config docs)"
"""The notify mapping follows Codex's documentation; no capture checked it."""

_HOOK_STATES = {
    "SessionStart": Detected.IDLE,
    "UserPromptSubmit": Detected.WORKING,
    "PreToolUse": Detected.WORKING,
    "PermissionRequest": Detected.AWAITING_APPROVAL,
    "PostToolUse": Detected.WORKING,
    "Stop": Detected.IDLE,
}
"""Claude Code hook events -> state (claude-code-hooks.md §7.3). `SessionEnd` means the
process is exiting, which the caller records; `Notification` is left out on purpose:
`permission_prompt` comes ~6 s late without tool data and `idle_prompt` is a 60 s reminder."""


def from_hook_event(event_name: str, payload: Mapping[str, Any]) -> Detection | None:
    """Map one Claude Code hook event to a detection, or None when it says nothing about state."""
    state = _HOOK_STATES.get(event_name)
    if state is None:
        return None
    rule = "claude.hook." + re.sub(r"(?<!^)(?=[A-Z])", "_", event_name).lower()
    matched = event_name
    detail: str | None = None
    tool_name = payload.get("tool_name")
    if tool_name is not None:
        tool_input = payload.get("tool_input")
        matched = f"{event_name} {tool_name}: {_summarise_tool_input(tool_input)}"
        detail = _cap(json.dumps({"tool_name": tool_name, "tool_input": tool_input}, default=str))
    elif event_name == "SessionStart":
        matched = f"SessionStart source={payload.get('source', '?')}"
    elif event_name == "UserPromptSubmit":
        detail = _cap(str(payload.get("prompt", ""))) or None
    elif event_name == "Stop":
        detail = _cap(str(payload.get("last_assistant_message", ""))) or None
    return Detection(state, Evidence("hook", rule, _trim(matched), detail, HOOK_VERSIONS))


def _summarise_tool_input(tool_input: object) -> str:
    """The one field a person recognises a tool call by: its command or its file."""
    if isinstance(tool_input, Mapping):
        for key in ("command", "file_path", "path", "url", "pattern"):
            if isinstance(tool_input.get(key), str):
                return str(tool_input[key])
        return json.dumps(tool_input, default=str)
    return str(tool_input)


_NOTIFY_STATES = {
    "agent-turn-complete": Detected.IDLE,
    "agent-turn-start": Detected.WORKING,
    "turn/started": Detected.WORKING,
    "turn/completed": Detected.IDLE,
    "turn/failed": Detected.IDLE,
    "turn/aborted": Detected.IDLE,
    "turn/cancelled": Detected.IDLE,
}
"""Codex `notify` types. Codex runs the notify program with one JSON argument whose `type`
is `agent-turn-complete` (also `thread-id`, `turn-id`, `cwd`, `input-messages`,
`last-assistant-message`); real-agents.md does not cover notify, so this follows Codex's
config docs and agent-deck's mapping (mission-anchors §3.14). It fires only at turn end,
so approvals in mid-turn still come from the screen."""


def from_codex_notify(payload: Mapping[str, Any]) -> Detection | None:
    """Map a Codex notify payload to a detection, or None for a type we do not know."""
    kind = str(payload.get("type", ""))
    state = _NOTIFY_STATES.get(kind)
    if state is None:
        return None
    message = payload.get("last-assistant-message")
    detail = _cap(str(message)) if message else None
    rule = "codex.notify." + re.sub(r"[^a-z]+", "_", kind.lower()).strip("_")
    return Detection(state, Evidence("notify", rule, kind, detail, NOTIFY_VERSIONS))
