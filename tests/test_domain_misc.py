"""Convoys, mail, approvals, agents, the clock and the sanitizer: the rest of the pure domain."""

from __future__ import annotations

import itertools
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tundra_tui.domain.agents import (
    AgentState,
    Role,
    Runtime,
    parse_role,
    parse_runtime,
    validate_agent_name,
)
from tundra_tui.domain.approvals import ApprovalStatus, decide
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.clock import iso, parse_iso, system_clock
from tundra_tui.domain.convoys import (
    ConvoyProgress,
    ConvoyStatus,
    convoy_progress,
    convoy_transition,
    validate_convoy_name,
)
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.domain.mail import MAX_BODY, MAX_SUBJECT, Mail, validate_body, validate_subject
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.domain.sanitize import MAX_COMBINING, is_clean, visible

# ---- errors ------------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(IllegalTransition, TundraError)
    assert issubclass(NotFound, TundraError)
    assert not issubclass(NotFound, IllegalTransition)


# ---- convoys -----------------------------------------------------------------------------------

CONVOY_LEGAL = {
    (ConvoyStatus.PENDING, "start"): ConvoyStatus.ACTIVE,
    (ConvoyStatus.PAUSED, "start"): ConvoyStatus.ACTIVE,
    (ConvoyStatus.ACTIVE, "pause"): ConvoyStatus.PAUSED,
    (ConvoyStatus.ACTIVE, "complete"): ConvoyStatus.COMPLETED,
    (ConvoyStatus.COMPLETED, "reopen"): ConvoyStatus.ACTIVE,
}
CONVOY_VERBS = ("start", "pause", "complete", "reopen", "launch")
CONVOY_ILLEGAL = [
    (status, verb)
    for status, verb in itertools.product(ConvoyStatus, CONVOY_VERBS)
    if (status, verb) not in CONVOY_LEGAL
]


@pytest.mark.parametrize(("status", "verb"), list(CONVOY_LEGAL), ids=str)
def test_convoy_legal_moves(status: ConvoyStatus, verb: str) -> None:
    assert convoy_transition(status, verb) is CONVOY_LEGAL[(status, verb)]


@pytest.mark.parametrize(("status", "verb"), CONVOY_ILLEGAL, ids=str)
def test_convoy_illegal_moves(status: ConvoyStatus, verb: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        convoy_transition(status, verb)
    assert f"cannot {verb} a convoy that is {status.value}" in str(info.value)


@pytest.mark.parametrize("name", ["release-1", "q3_cleanup", "v1.2", "9", "x" * 64])
def test_convoy_name_accepted(name: str) -> None:
    assert validate_convoy_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a/b", "x" * 65, "ünï", "a\n"])
def test_convoy_name_refused(name: str) -> None:
    with pytest.raises(TundraError, match="invalid convoy name"):
        validate_convoy_name(name)


def test_convoy_progress_counts() -> None:
    statuses = [
        BeadStatus.BACKLOG,
        BeadStatus.HOOKED,
        BeadStatus.SLUNG,
        BeadStatus.REVIEW,
        BeadStatus.DONE,
        BeadStatus.DONE,
        BeadStatus.FAILED,
        BeadStatus.ESCALATED,
    ]
    progress = convoy_progress(iter(statuses))
    assert progress == ConvoyProgress(total=8, done=2, failed=1, in_flight=3)
    assert progress.fraction == pytest.approx(0.25)
    assert progress.percent == 25
    assert not progress.is_complete


@pytest.mark.parametrize(
    ("done", "total", "percent"), [(1, 3, 33), (2, 3, 66), (0, 1, 0), (99, 100, 99), (3, 3, 100)]
)
def test_convoy_percent_rounds_down(done: int, total: int, percent: int) -> None:
    statuses = [BeadStatus.DONE] * done + [BeadStatus.SLUNG] * (total - done)
    progress = convoy_progress(statuses)
    assert progress.percent == percent
    assert progress.is_complete == (done == total)


def test_convoy_failed_beads_never_complete_it() -> None:
    progress = convoy_progress([BeadStatus.DONE, BeadStatus.FAILED])
    assert progress.percent == 50
    assert not progress.is_complete


def test_empty_convoy() -> None:
    progress = convoy_progress([])
    assert progress == ConvoyProgress()
    assert progress.fraction == 0.0
    assert progress.percent == 0
    assert not progress.is_complete


@settings(max_examples=50)
@given(st.lists(st.sampled_from(list(BeadStatus)), max_size=30))
def test_convoy_progress_invariants(statuses: list[BeadStatus]) -> None:
    progress = convoy_progress(statuses)
    assert progress.total == len(statuses)
    assert progress.done + progress.failed + progress.in_flight <= progress.total
    assert 0 <= progress.percent <= 100
    assert (progress.percent == 100) == progress.is_complete
    assert progress.is_complete == (bool(statuses) and set(statuses) == {BeadStatus.DONE})


# ---- mail --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", " ", "\n\t  \n"])
def test_mail_body_refuses_blank(body: str) -> None:
    with pytest.raises(TundraError, match="non-empty body"):
        validate_body(body)


def test_mail_body_bound_is_in_utf8_bytes() -> None:
    assert validate_body("a" * MAX_BODY) == "a" * MAX_BODY
    with pytest.raises(TundraError, match="exceeds"):
        validate_body("a" * (MAX_BODY + 1))
    two_byte = "é" * (MAX_BODY // 2)
    assert validate_body(two_byte) == two_byte
    with pytest.raises(TundraError, match="exceeds"):
        validate_body(two_byte + "a")


def test_mail_body_with_lone_surrogate_is_measured_not_crashed() -> None:
    assert validate_body("hi \udcff") == "hi \udcff"


def test_mail_subject() -> None:
    assert validate_subject("") == ""
    assert validate_subject("s" * MAX_SUBJECT) == "s" * MAX_SUBJECT
    with pytest.raises(TundraError, match=f"exceeds {MAX_SUBJECT}"):
        validate_subject("s" * (MAX_SUBJECT + 1))
    with pytest.raises(TundraError, match="single line"):
        validate_subject("hello\nworld")


def test_mail_is_read() -> None:
    assert not Mail(id=1, sender="a", recipient="b", body="x").is_read
    assert Mail(id=1, sender="a", recipient="b", body="x", read_at="2025").is_read


# ---- approvals ---------------------------------------------------------------------------------

ANSWERS = [ApprovalStatus.APPROVED, ApprovalStatus.DENIED, ApprovalStatus.EXPIRED]


@pytest.mark.parametrize("answer", ANSWERS, ids=str)
def test_pending_request_can_be_answered(answer: ApprovalStatus) -> None:
    assert decide(ApprovalStatus.PENDING, answer) is answer


@pytest.mark.parametrize(("status", "answer"), list(itertools.product(ANSWERS, ANSWERS)), ids=str)
def test_answered_request_cannot_be_answered_again(
    status: ApprovalStatus, answer: ApprovalStatus
) -> None:
    with pytest.raises(IllegalTransition, match=f"already {status.value}"):
        decide(status, answer)


@pytest.mark.parametrize("status", list(ApprovalStatus), ids=str)
def test_pending_is_not_an_answer(status: ApprovalStatus) -> None:
    with pytest.raises(IllegalTransition, match="approve, deny or expire"):
        decide(status, ApprovalStatus.PENDING)


# ---- agents ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["alice", "a", "A", "_x", "9lives", "polecat-2", "crew_1", "x.y", "a" * 64]
)
def test_agent_name_accepted(name: str) -> None:
    assert validate_agent_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../../x",
        "x/../../y",
        "..",
        ".",
        ".git",
        "-rf",
        "--help",
        "a" * 65,
        "ünïcode",
        "名前",
        "a b",
        "a/b",
        "a\\b",
        "a\nb",
        "alice\n",
        "a\x00b",
        "a:b",
        "a~1",
        "a@{0}",
    ],
)
def test_agent_name_refused(name: str) -> None:
    with pytest.raises(TundraError) as info:
        validate_agent_name(name)
    assert "invalid agent name" in str(info.value)


@pytest.mark.parametrize("name", ["a..b", "alice.", "alice.lock"])
def test_agent_name_refuses_names_git_cannot_branch(name: str) -> None:
    with pytest.raises(TundraError):
        validate_agent_name(name)


def test_agent_state_glyphs() -> None:
    glyphs = [state.glyph for state in AgentState]
    assert all(len(glyph) == 1 for glyph in glyphs)
    assert len(set(glyphs)) == len(AgentState)
    assert AgentState.WORKING.glyph == "@"
    assert AgentState.IDLE.glyph == "*"
    assert AgentState.AWAITING_APPROVAL.glyph == "!"
    assert AgentState.UNKNOWN.glyph == "?"


def test_agent_state_is_live() -> None:
    live = {state for state in AgentState if state.is_live}
    assert live == {
        AgentState.WORKING,
        AgentState.IDLE,
        AgentState.AWAITING_APPROVAL,
        AgentState.UNKNOWN,
    }


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_parse_role(role: Role) -> None:
    assert parse_role(role.value) is role


@pytest.mark.parametrize("runtime", list(Runtime), ids=str)
def test_parse_runtime(runtime: Runtime) -> None:
    assert parse_runtime(runtime.value) is runtime


def test_parse_role_and_runtime_refuse_with_choices() -> None:
    with pytest.raises(TundraError) as role_error:
        parse_role("king")
    assert all(role.value in str(role_error.value) for role in Role)
    with pytest.raises(TundraError) as runtime_error:
        parse_runtime("vim")
    assert all(runtime.value in str(runtime_error.value) for runtime in Runtime)


def test_usage_sample_total_tokens() -> None:
    sample = UsageSample(
        at="t",
        agent="a",
        input_tokens=1,
        output_tokens=20,
        cache_read_tokens=300,
        cache_write_tokens=4000,
    )
    assert sample.total_tokens == 4321


# ---- clock -------------------------------------------------------------------------------------


def test_iso_format_is_fixed_width_utc() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert iso(moment) == "2025-01-02T03:04:05.000006Z"
    plus_two = datetime(2025, 1, 2, 5, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert iso(plus_two) == "2025-01-02T03:04:05.000006Z"
    assert parse_iso("2025-01-02T03:04:05.000006Z") == moment


def test_system_clock_is_aware_utc() -> None:
    now = system_clock()
    assert now.utcoffset() == timedelta(0)
    assert parse_iso(iso(now)) == now


def test_parse_iso_refuses_other_formats() -> None:
    with pytest.raises(ValueError):
        parse_iso("2025-01-02 03:04:05")


_moments = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone(timedelta(hours=h)) for h in (-11, -3, 0, 5, 13)]),
)


@settings(max_examples=80)
@given(_moments)
def test_iso_round_trip(moment: datetime) -> None:
    text = iso(moment)
    assert len(text) == len("2025-01-02T03:04:05.000006Z")
    assert parse_iso(text) == moment


@settings(max_examples=80)
@given(_moments, _moments)
def test_iso_string_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (iso(a) < iso(b)) == (a < b)
    assert (iso(a) == iso(b)) == (a == b)


# ---- sanitizer ---------------------------------------------------------------------------------

C0 = [chr(c) for c in range(0x20) if chr(c) not in "\t\n"]
C1 = [chr(c) for c in range(0x80, 0xA0)]
INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202a",  # left-to-right embedding
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2069",  # pop directional isolate
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\udcff",  # lone surrogate from surrogateescape
    "\U000e0041",  # tag latin capital letter a
]


@pytest.mark.parametrize("single_line", [False, True])
def test_c0_controls_become_control_pictures(single_line: bool) -> None:
    for char in C0:
        assert visible(char, single_line=single_line) == chr(0x2400 + ord(char))
    assert visible("a\x1b[31mred", single_line=single_line) == "a\u241b[31mred"


def test_del_becomes_a_picture() -> None:
    assert visible("\x7f") == "\u2421"


def test_c1_controls_are_shown_as_code_points() -> None:
    for char in C1:
        assert visible(char) == f"⟨U+{ord(char):04X}⟩"
    assert visible("\x9b31m") == "⟨U+009B⟩31m"  # CSI as one byte


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_format_characters_are_shown(char: str) -> None:
    expected = f"⟨U+{ord(char):04X}⟩"
    assert visible(f"a{char}b") == f"a{expected}b"
    assert visible(f"a{char}b", single_line=True) == f"a{expected}b"
    assert not is_clean(char)


def test_tabs_and_newlines_kept_or_flattened() -> None:
    text = "a\tb\nc\r\n"
    assert visible(text) == "a\tb\nc\u240d\n"
    assert visible(text, single_line=True) == "a b\u2424c\u240d\u2424"


def test_clean_text_is_untouched() -> None:
    text = "héllo wörld — 漢字 🙂 e\u0301 ⟨not a code⟩\ttab\nline"
    assert visible(text) == text
    assert is_clean(text)
    assert not is_clean("a\x00")


def test_combining_flood_is_capped() -> None:
    flood = "e" + "\u0301" * 100
    assert visible(flood) == "e" + "\u0301" * MAX_COMBINING
    assert visible("e" + "\u0301" * MAX_COMBINING) == "e" + "\u0301" * MAX_COMBINING
    assert visible("e" + "\u0301" * (MAX_COMBINING + 1)) == "e" + "\u0301" * MAX_COMBINING
    # A base character resets the count; marks on different letters are all kept.
    assert visible(("a" + "\u0300" * 10) * 3) == ("a" + "\u0300" * 10) * 3
    mixed = "x" + "".join(chr(c) for c in range(0x300, 0x300 + 40))
    assert len(visible(mixed)) == 1 + MAX_COMBINING


@pytest.mark.parametrize("mark", ["\u20dd", "\u034f", "\ufe0f"], ids=lambda c: f"U+{ord(c):04X}")
def test_combining_flood_of_class_zero_marks_is_capped(mark: str) -> None:
    assert len(visible("o" + mark * 1000)) <= 1 + MAX_COMBINING


def test_limit_truncates_with_ellipsis() -> None:
    assert visible("abcdef", limit=4) == "abc…"
    assert visible("abcd", limit=4) == "abcd"
    assert visible("abcde", limit=1) == "…"
    assert visible("", limit=3) == ""
    shown = visible("\x00" * 10, limit=5)
    assert shown == "\u2400" * 4 + "…"
    cut = visible("\u202e" * 3, limit=12)
    assert len(cut) == 12
    assert cut.endswith("…")


_interesting = st.sampled_from(
    [*C0, "\t", "\n", "\r", "\x7f", *C1, *INVISIBLE, "\u0301", "\u20dd", "e", " ", "…", "\u2424"]
)
_hostile_text = st.text(
    alphabet=st.one_of(_interesting, st.characters(exclude_categories=())), max_size=60
) | st.builds(lambda base, n: base + "\u0301" * n, st.text(max_size=3), st.integers(0, 40))


def _longest_combining_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if unicodedata.combining(char) else 0
        longest = max(longest, run)
    return longest


@settings(max_examples=150)
@given(_hostile_text, st.booleans())
def test_visible_output_is_terminal_safe(text: str, single_line: bool) -> None:
    shown = visible(text, single_line=single_line)
    allowed_c0 = set() if single_line else {"\t", "\n"}
    for char in shown:
        code = ord(char)
        assert code >= 0x20 or char in allowed_c0, repr(char)
        assert code != 0x7F
        assert not 0x80 <= code <= 0x9F
        assert unicodedata.category(char) not in ("Cf", "Zl", "Zp", "Cs"), repr(char)
    assert _longest_combining_run(shown) <= MAX_COMBINING


@settings(max_examples=150)
@given(_hostile_text, st.booleans())
def test_visible_is_idempotent(text: str, single_line: bool) -> None:
    once = visible(text, single_line=single_line)
    assert visible(once, single_line=single_line) == once
    assert is_clean(visible(text))


@settings(max_examples=150)
@given(_hostile_text, st.booleans(), st.integers(min_value=1, max_value=40))
def test_limit_is_a_prefix_plus_ellipsis(text: str, single_line: bool, limit: int) -> None:
    full = visible(text, single_line=single_line)
    cut = visible(text, single_line=single_line, limit=limit)
    assert len(cut) <= limit
    if len(full) <= limit:
        assert cut == full
    else:
        assert cut == full[: limit - 1] + "…"
    assert visible(cut, single_line=single_line, limit=limit) == cut


def test_convoy_progress_counts_grades_and_says_them() -> None:
    from tundra_tui.domain.beads import Grade
    from tundra_tui.domain.convoys import grade_summary

    rows = [
        (BeadStatus.DONE, Grade.MERGED),
        (BeadStatus.DONE, Grade.MERGED),
        (BeadStatus.DONE, Grade.SUBMITTED),
        (BeadStatus.REVIEW, Grade.VERIFIED),
        (BeadStatus.REVIEW, Grade.SUBMITTED),
        (BeadStatus.BACKLOG, Grade.NONE),
    ]
    progress = convoy_progress(rows)
    assert (progress.merged, progress.verified, progress.submitted) == (2, 1, 1)
    assert not progress.is_complete and progress.done == 3
    assert grade_summary(progress) == ("2 merged · 1 done by hand · 1 verified · 1 in review / 6")
    assert grade_summary(convoy_progress([])) == ""
