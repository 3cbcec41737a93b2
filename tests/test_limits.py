"""Reset times read from rate-limit screens: every fixture block, with a fixed now and zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tundra_tui.usage.limits import parse_reset

FIXTURES = Path(__file__).parent / "fixtures" / "limits"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LOCAL = ZoneInfo("America/New_York")


def blocks() -> list[tuple[str, str, str]]:
    """(id, expected, screen) for every block of every fixture file."""
    found: list[tuple[str, str, str]] = []
    for path in sorted(FIXTURES.glob("*.txt")):
        for number, block in enumerate(path.read_text().strip().split("\n\n")):
            first, _, screen = block.partition("\n")
            assert first.startswith("=> "), f"{path.name} block {number}: no expectation"
            found.append((f"{path.stem}-{number}", first[3:].strip(), screen))
    return found


@pytest.mark.parametrize(
    ("expected", "screen"), [b[1:] for b in blocks()], ids=[b[0] for b in blocks()]
)
def test_every_fixture_screen_gives_its_reset(expected: str, screen: str) -> None:
    reset, shown = parse_reset(screen, NOW, LOCAL)
    if expected == "none":
        assert reset is None
        assert shown  # the line that mentioned the limit, for the pause's text
    else:
        assert reset == datetime.fromisoformat(expected)
        assert reset is not None and reset.tzinfo is not None
        assert shown and shown in screen


def test_a_clock_time_already_past_means_tomorrow() -> None:
    reset, _ = parse_reset("resets 6am", NOW, LOCAL)  # 06:00 New York is 11:00 UTC: past
    assert reset == datetime(2026, 12, 8, 11, 0, tzinfo=UTC)


def test_the_lowest_line_that_gives_a_time_wins() -> None:
    screen = "usage limit reached, try again in 3 hours\n...\nusage limit reached, resets in 5m\n❯"
    assert parse_reset(screen, NOW, LOCAL) == (
        datetime(2026, 12, 7, 12, 5, tzinfo=UTC),
        "usage limit reached, resets in 5m",
    )


@pytest.mark.parametrize(
    "screen",
    [
        "",
        "all good\n❯",
        "resets in 400 days",  # longer than any limit: not trusted
        "resets at 99:99",
        "limit reached|0000000001",
        "resets at 3:04 PM (Not/AZone)",  # an unknown zone falls back to the local one
    ],
)
def test_nonsense_gives_no_time_or_a_sane_one(screen: str) -> None:
    reset, _ = parse_reset(screen, NOW, LOCAL)
    assert reset is None or NOW <= reset <= datetime(2027, 1, 8, tzinfo=UTC)


def test_only_a_limit_line_gives_the_time_not_other_text_on_screen() -> None:
    """Review 13 #4: Codex's "Worked for 1m 30s" and a tool's ISO time below the limit message
    are not the reset (they gave a pause of 90 s and of 2 minutes)."""
    codex = "■ You've hit your usage limit. Try again at 6:00 PM.\n─ Worked for 1m 30s ─────\n› "
    assert parse_reset(codex, NOW, UTC) == (
        datetime(2026, 12, 7, 18, 0, tzinfo=UTC),
        "■ You've hit your usage limit. Try again at 6:00 PM.",
    )
    claude = (
        "Claude usage limit reached. Your limit will reset at 6pm (Europe/London).\n"
        "  ⎿  ran pytest: 2026-12-07T13:02:10 PASSED in 4.2s"
    )
    assert parse_reset(claude, NOW, UTC)[0] == datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def test_a_date_elsewhere_on_screen_is_no_reset_but_a_wrapped_message_is_read() -> None:
    deadline = "cert expires 2026-12-20T00:00:00Z\n...\nrate limit reached, please wait\n❯"
    assert parse_reset(deadline, NOW, UTC) == (None, "rate limit reached, please wait")
    assert parse_reset("Worked for 1m 30s\n❯", NOW, UTC) == (None, "")
    wrapped = "Claude usage limit reached. Your limit will reset at\n3pm (America/New_York).\n❯"
    assert parse_reset(wrapped, NOW, UTC)[0] == datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
