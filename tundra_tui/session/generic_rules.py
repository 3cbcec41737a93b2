"""The generic screen layer: shapes that stay stable across CLI versions and runtimes.

Per-runtime rules are exact but break when a release rewords a prompt; these
patterns describe what every terminal prompt looks like instead (a `[y/n]`
question on the last line, a live numbered menu whose first option is Yes or
Allow, a "Do you want to ...?" question above its options, a spinner with an
interrupt hint) and the first-run dialogs that must never pass for idle or an
approval. The detector consults them only where the runtime's own rules found
nothing, or to veto an idle or approval answer while a dialog shows.

Precision comes first, because a false "awaiting approval" asks a person to
approve something that is not there: approval shapes must sit in the last few
non-blank lines, a menu must be live (a selection marker or a question right
above it), and nothing that looks like work in progress may follow them
(checked by the detector with `WORKING_BELOW`). These are plain data (id,
state, pattern, region, needles) so this module needs nothing from the detector.
"""

from __future__ import annotations

Spec = tuple[str, str, int, tuple[str, ...]]
"""(id, pattern, region, needles): the rule is tried only on a region whose lowercased
text holds one of the needles, a cheap test that spares most screens the regex."""

VERSIONS = "generic"
"""The version range every generic rule claims: none in particular."""

_SP = r"[^\S\n]"
_LEAD = rf"(?:{_SP}|[│┃║|])*"
"""The start of a line inside a box: spaces and vertical frame characters."""
_MARK = r"[❯›>●▶→▸]"
"""A selection marker in front of the highlighted option."""
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⣾⣽⣻⢿⡿⣟⣯⣷✻✽✶✳✢◐◓◑◒"
_END = rf"{_SP}*[│┃║|]?{_SP}*$"
"""The end of a line inside a box."""

_YES_NO = (
    r"(?:\[(?:y/n|Y/n|y/N|Y/N|yes/no|Yes/No)\]|\((?:y/n|Y/n|y/N|Y/N|yes/no|Yes/No)\)"
    r"|\(Y\)es/\(N\)o(?:/\([A-Z]\)[^/\[\]\n]*)*)"
)
"""The answer hint of a line-mode question: `[y/n]`, `(Y/n)`, `(Y)es/(N)o/(D)on't ask again`."""

_OPTION = rf"^{_LEAD}(?:{_MARK}{_SP}*)?[2-9][.)]{_SP}+\S"
"""A further numbered option: `  2. No`."""

_TRUST = (
    r"(?i:do you trust (?:the (?:files|contents) (?:in|of) )?this (?:folder|directory|workspace"
    r"|project)|\btrust this (?:folder|directory|workspace|project)\b"
    r"|(?:folder|directory|workspace) (?:is|isn't|is not) trusted\b"
    r"|\buntrusted (?:folder|directory|workspace)\b|\bone you trust\?"
    r"|allow \S+ to work in this folder)"
)
_LOGIN = (
    rf"^{_LEAD}(?:{_MARK}{_SP}*)?(?:\d[.)]{_SP}+)?(?i:(?:log ?in|sign in) with\b"
    r"|how would you like to authenticate"
    r"|select (?:a |your )?(?:login|auth(?:entication)?) method"
    r"|(?:enter|paste|provide) (?:your |an )?(?:\S+ )?api key"
    r"|do you want to use this api key\?|detected a custom api key"
    r"|(?:\S+ )?api key (?:is )?(?:required|not set|missing)"
    r"|(?:please )?set an auth method|choose (?:a |your )?(?:login|auth) method)"
)
_UPDATE = (
    r"(?i:\bupdate available\b|\bnew version\b[^\n]*\bavailable\b|\ba new version of\b"
    r"|\bversion \S+ is available\b)"
)
_UPDATE_CHOICE = (
    rf"^{_LEAD}(?:{_MARK}{_SP}*(?:\d[.)]{_SP}+)?|\d[.)]{_SP}+)(?i:update|skip|install|upgrade"
    r"|later|remind|yes\b|no\b|not now)|(?i:press enter|enter to (?:continue|confirm|update))"
)
"""A choice under an update offer: a marked or numbered option, or an Enter hint (a banner's
own next line, `Installed via npm. Attempting to update…`, is not one)."""

DIALOGS: tuple[Spec, ...] = (
    ("generic.dialog.trust", _TRUST, 15, ("trust", "work in this folder")),
    ("generic.dialog.login", _LOGIN, 15, ("log", "sign in", "api key", "auth")),
    # An update offer blocks only with a choice under it; a notice in a footer does not.
    (
        "generic.dialog.update",
        rf"{_UPDATE}[^\n]*\n(?:[^\n]*\n){{0,6}}?(?:{_UPDATE_CHOICE})",
        12,
        ("update available", "new version", "is available"),
    ),
)
"""First-run and update dialogs: (id, pattern, region). They mean unknown."""

_ASK = (
    r"(?:Do you want to|Would you like to|Allow|Approve|Apply this change|Proceed|Permit"
    r"|Run this command|Execute)\b"
)
_QUESTION = rf"^{_LEAD}{_ASK}[^\n]{{0,300}}\?{_END}"
"""A line that asks for permission: `Do you want to proceed?`, `Allow execution of [Shell]?`."""
_OPT = rf"{_LEAD}(?:[❯›>●▶→▸○◯]{_SP}*)?(?:\d[.)]{_SP}+)?"
"""The start of an option line, marked or not, numbered or not."""
_MORE = rf"(?:\n{_LEAD}{_SP}{{2,}}(?!{_MARK}|\d[.)])\S[^\n]*)?"
"""An option's wrapped second line."""
_FRAME = rf"{_LEAD}[╰╯╭╮─━═└┘┌┐┴┬▀▄╹╻╌]*"
_HINT_LINE = (
    r"[^\n]*(?i:\benter\b|\besc\b|\btab\b|↑|↓|\bto (?:confirm|cancel|select|navigate|amend"
    r"|continue)\b|ctrl\+)[^\n]*"
)
_STATUS = rf"{_LEAD}{_SP}{{16,}}\S[^\n]{{0,40}}"
"""A short status pushed to the right of a full-screen TUI (`• OpenCode 1.18.33`)."""
_AFTER = rf"\n(?>(?:{_HINT_LINE}|{_FRAME}|{_STATUS})$)"
_TAIL = rf"(?=(?:{_AFTER}){{0,3}}\Z)"
OPTIONS_TO_END = (
    rf"(?=[^\n]*(?:\n(?>(?:{_LEAD}(?:{_MARK}{_SP}*)?\d[.)]{_SP}+\S[^\n]*|{_LEAD}{_SP}{{4,}}\S[^\n]*"
    rf"|{_HINT_LINE}|{_FRAME}|{_STATUS})$))*\Z)"
)
"""After a runtime's first option: only more options, their wrapped lines, hints and frames
to the end of the screen (used by per-runtime menu rules for the same reason as `_TAIL`).
Each line is matched atomically: a line that fits several kinds is not retried as each."""
LEAD = _LEAD
"""What may follow a live prompt's last option: key hints, a box's bottom or a status pushed
right, nothing else (a shell prompt or text below means the options were quoted, not asked)."""

_FIRST = rf"1[.)]{_SP}+(?:Yes|Allow|Approve)\b[^\n]*{_MORE}"
_NEXT = rf"[2-9][.)]{_SP}+\S[^\n]*{_MORE}"
"""A further option. After a marked first option it carries no marker: a menu marks one
option, while every line of a quote (`> 1. Yes`, `> 2. No`) carries the same mark."""

APPROVALS: tuple[Spec, ...] = (
    # A line-mode question: the last non-blank line ends in its answer hint, maybe with a
    # default (`[Yes]:`) and a typed letter. Diff and quote lines (`+`, `-`, `>`, `#`) and
    # code (a quote or bracket after the hint) are not questions.
    (
        "generic.approval.yes_no",
        rf"^(?![+\-<>#]|//){_LEAD}\S[^\n]*?{_YES_NO}"
        rf"{_SP}*(?:\[[^\]\n]{{1,12}}\]|\(default[^)\n]{{0,12}}\))?{_SP}*[:?]?{_SP}*[A-Za-z]{{0,3}}{_END}",
        1,
        ("y/n", "yes/no", "(y)es/(n)o"),
    ),
    # A numbered menu whose first option is Yes or Allow, live: a marker on that option,
    # or a permission question right above it; a second option under it; only hints or a
    # box's bottom after its last option.
    (
        "generic.approval.menu",
        rf"(?:^{_LEAD}{_MARK}{_SP}*{_FIRST}(?:\n{_LEAD}{_NEXT})+"
        rf"|{_QUESTION}\n(?:{_LEAD}\n)?{_LEAD}{_FIRST}(?:\n{_LEAD}(?:{_MARK}{_SP}*)?{_NEXT})+)"
        rf"{_TAIL}",
        12,
        ("1.", "1)"),
    ),
    # A permission question, then options (unnumbered, maybe marked) from a Yes to a No as
    # the last lines: `Do you want to …?` / `Allow …?` / `Would you like to run …?`.
    (
        "generic.approval.question",
        rf"{_QUESTION}(?:\n[^\n]*){{0,6}}?\n{_OPT}(?:Yes|Allow|Approve|Accept|Run)\b[^\n]*"
        rf"(?:\n[^\n]*){{0,4}}?\n{_OPT}(?:No|Deny|Reject|Cancel|Don't)\b[^\n]*{_TAIL}",
        14,
        ("?",),
    ),
    # Options side by side (`Allow once   Allow always   Reject`) at the bottom.
    (
        "generic.approval.inline",
        rf"^{_LEAD}(?:{_MARK}{_SP}*)?(?:Allow|Yes|Approve)(?:{_SP}\S+){{0,3}}"
        rf"(?:{_SP}{{2,}}\S+(?:{_SP}\S+){{0,3}})*?{_SP}{{2,}}(?:Reject|Deny|No)\b"
        rf"(?:{_SP}\S+){{0,2}}(?:{_SP}{{2,}}[^\n]*)?$"
        rf"(?=(?:{_AFTER}){{0,2}}\Z)",
        3,
        ("allow", "yes", "approve"),
    ),
)
"""Approval shapes: (id, pattern, region). Each must end near the bottom of the screen."""

_KEY = r"(?:esc|escape|ctrl\+c|ctrl-c)"
_INTERRUPT = rf"(?i:\b{_KEY}\)?{_SP}+(?:to{_SP}+)?interrupt\b)"
"""`esc to interrupt` (`esc interrupt`): said only while something runs."""
_HINT = rf"(?i:\b{_KEY}\)?{_SP}+to{_SP}+(?:interrupt|cancel|stop)\b)"
"""Any interrupt hint; `Esc to cancel` alone is also a dialog's or an approval's footer."""
_SPIN_LINE = rf"^{_LEAD}[{_SPINNER}]{_SP}*\S[^\n]*"

WORKING: tuple[Spec, ...] = (
    ("generic.working.interrupt", _INTERRUPT, 10, ("interrupt",)),
    ("generic.working.spinner", rf"{_SPIN_LINE}{_HINT}", 10, ("interrupt", "cancel", "stop")),
)
"""Work in progress: (id, pattern, region)."""

WORKING_BELOW = rf"{_INTERRUPT}|{_SPIN_LINE}(?:{_HINT}|…)"
"""Signs of work that, below an approval shape, mean the question is not pending."""
