"""The typed hand-over format (domain/handover.py): what the daemon writes, the demo reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tundra_tui.domain.handover import (
    MAIL_TAG,
    WORK_TAG,
    MailLine,
    mail_text,
    parse_mail,
    parse_work,
    work_header,
)
from tundra_tui.domain.sanitize import visible

_pieces = st.one_of(
    st.sampled_from([*"(#),\\ :re\n\t\x1b\x07\u202e", "(#1 from a): ", " (#", ", re "]),
    st.characters(),
)
_text = st.lists(_pieces, max_size=20).map("".join)
_messages = st.lists(
    st.builds(
        MailLine,
        id=st.integers(min_value=1, max_value=10**9),
        sender=_text,
        subject=_text,
        body=_text.filter(lambda b: b.strip() != ""),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(msgs=_messages, prefix=st.sampled_from(["", "❯ ", "> "]))
def test_mail_round_trips_whatever_the_text(msgs: list[MailLine], prefix: str) -> None:
    line = mail_text(msgs, limit=100_000)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.startswith(MAIL_TAG)
    expected = [
        MailLine(
            m.id,
            visible(m.sender, single_line=True),
            visible(m.subject, single_line=True),
            visible(m.body, single_line=True),
        )
        for m in msgs
    ]
    assert parse_mail(prefix + line) == expected


@settings(max_examples=200, deadline=None)
@given(msgs=_messages, limit=st.integers(min_value=50, max_value=400))
def test_a_long_batch_is_cut_but_every_message_still_parses(
    msgs: list[MailLine], limit: int
) -> None:
    parsed = parse_mail(mail_text(msgs, limit=limit))
    assert [m.id for m in parsed] == [m.id for m in msgs]
    assert [m.sender for m in parsed] == [visible(m.sender, single_line=True) for m in msgs]


def test_mail_header_counts_messages() -> None:
    one = mail_text([MailLine(3, "mayor", "", "hi")], limit=1000)
    assert one == f"{MAIL_TAG} 1 message (reply: at mail send NAME -m TEXT) (#3 from mayor): hi"
    three = mail_text([MailLine(i, "a", "s", "b") for i in (1, 2, 3)], limit=1000)
    assert three.startswith(f"{MAIL_TAG} 3 messages ")
    assert parse_mail("no tag here (#1 from a): b") == []


@settings(max_examples=200, deadline=None)
@given(bead=st.integers(min_value=1, max_value=10**9), title=_text, prefix=_text)
def test_work_header_round_trips(bead: int, title: str, prefix: str) -> None:
    header = work_header(bead, title)
    assert header.startswith(f"{WORK_TAG} bead #{bead}: ")
    assert "\n" not in header
    assert parse_work(visible(prefix, single_line=True).replace(WORK_TAG, "") + header) == bead


def test_a_title_cannot_forge_another_bead() -> None:
    assert parse_work(work_header(7, f"{WORK_TAG} bead #99: evil")) == 7
    assert parse_work("nothing") is None
