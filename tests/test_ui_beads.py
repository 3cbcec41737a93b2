"""The Beads tab: board rules (plain tests), the kanban pane and its modals (Pilot tests)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, TextArea
from ui_harness import FakeLink, PaneHarness, fixed_clock, make_services

from tundra_tui.daemon.protocol import ChangedEvent
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, Bead, BeadStatus, Lane
from tundra_tui.domain.errors import IllegalTransition
from tundra_tui.domain.events import Event
from tundra_tui.domain.kanban import (
    BOARD,
    BeadDraft,
    build_board,
    cell_width,
    describe_event,
    draft_edits,
    fit,
    matches,
    place_cursor,
    reassignment,
    wrap_words,
)
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import RosterEntry, Store, StoreLocked, open_store
from tundra_tui.town import Town
from tundra_tui.ui.modals.bead_detail import BeadDetail
from tundra_tui.ui.modals.bead_form import BeadForm
from tundra_tui.ui.panes.beads import BeadsPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.kanban_board import KanbanBoard
from tundra_tui.ui.widgets.kanban_column import KanbanColumn as ColumnWidget

OP = "operator"

# ---- the seeded town ----------------------------------------------------------------------------


async def seed(store: Store) -> dict[str, int]:
    """Two agents and beads in every status; returns ids by name."""
    await store.agents.sync_roster(
        [
            RosterEntry("mayor", Role.MAYOR, Runtime.DEMO),
            RosterEntry("polecat-2", Role.POLECAT, Runtime.DEMO),
        ],
        actor=OP,
    )
    beads = store.beads
    ids: dict[str, int] = {}

    async def add(name: str, title: str, **kw: object) -> int:
        bead = await beads.add(title, actor=OP, **kw)  # type: ignore[arg-type]
        ids[name] = bead.id
        return bead.id

    await add("backlog", "Write the onboarding guide", lane=Lane.CRITICAL, priority=0)
    await add("backlog2", "[bold red]x[/]", lane=Lane.EXPERIMENTAL, priority=4)
    hooked = await add("hooked", "Fix login redirect loop on logout")
    await beads.apply(hooked, Action.HOOK, actor=OP, agent="mayor")
    slung = await add("slung", "Port the cache layer")
    await beads.sling(slung, "polecat-2", actor=OP)
    review = await add("review", "Refactor the parser")
    await beads.sling(review, "mayor", actor=OP)
    await beads.apply(review, Action.SUBMIT, actor=OP)
    done = await add("done", "Ship release notes")
    await beads.sling(done, "mayor", actor=OP)
    await beads.apply(done, Action.DONE, actor=OP)
    failed = await add("failed", "Flaky migration")
    await beads.sling(failed, "mayor", actor=OP)
    await beads.apply(failed, Action.FAIL, actor=OP)
    escalated = await add("escalated", "Needs a human decision")
    await beads.apply(escalated, Action.ESCALATE, actor=OP)
    blocked = await add("blocked", "Waits on the guide", blocked_by=[ids["backlog"]])
    assert blocked
    return ids


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=fixed_clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def ids(store: Store) -> dict[str, int]:
    return await seed(store)


@pytest.fixture
def services(town_dir: Path, store: Store) -> Services:
    return make_services(Town(town_dir), store, FakeLink())


def harness(services: Services) -> PaneHarness:
    return PaneHarness(lambda s: BeadsPane(s, id="pane-beads"), services)


def board_of(app: PaneHarness) -> KanbanBoard:
    return app.query_one(KanbanBoard)


def screen_text(app: PaneHarness) -> str:
    """What the terminal shows, as plain lines."""
    return "\n".join(line.text for line in app.screen._compositor.render_strips())


def notes(app: PaneHarness) -> list[str]:
    return [note.message for note in app._notifications]


async def settle(app: PaneHarness, pilot: Pilot[None]) -> None:
    """Let workers (reads, writes) finish and the screen catch up."""
    for _ in range(2):  # a write's worker ends by reloading, which may redraw once more
        await app.workers.wait_for_complete()
        await pilot.pause()


def put_cursor(app: PaneHarness, bead_id: int) -> None:
    board = board_of(app)
    for col, column in enumerate(board.columns):
        for row, bead in enumerate(column.beads):
            if bead.id == bead_id:
                board.column, board.row = col, row
                board.action_cursor(0, 0)
                return
    raise AssertionError(f"#{bead_id} is not on the board")


def current_id(app: PaneHarness) -> int | None:
    bead = board_of(app).current
    return bead.id if bead else None


# ---- the board's rules (no screen) --------------------------------------------------------------


def bead(bead_id: int, title: str = "t", **kw: object) -> Bead:
    return Bead(id=bead_id, title=title, **kw)  # type: ignore[arg-type]


class Source:
    def __init__(self, status: BeadStatus, count: int, beads: tuple[Bead, ...]) -> None:
        self.status, self.count, self.beads = status, count, beads


def test_board_puts_failed_and_escalated_in_one_last_column_with_full_counts() -> None:
    sources = [
        Source(BeadStatus.BACKLOG, 120, (bead(1), bead(2))),
        Source(BeadStatus.FAILED, 1, (bead(3, status=BeadStatus.FAILED),)),
        Source(BeadStatus.ESCALATED, 2, (bead(4, status=BeadStatus.ESCALATED),)),
    ]
    board = build_board(sources)
    assert [c.spec.title for c in board] == [spec.title for spec in BOARD]
    assert (board[0].count, board[0].loaded, len(board[0].beads)) == (120, 2, 2)
    assert board[1].count == 0 and board[1].beads == ()
    assert (board[5].count, [b.id for b in board[5].beads]) == (3, [3, 4])


def test_filter_matches_id_title_assignee_and_lane_case_insensitively() -> None:
    b = bead(42, "Fix LOGIN page", assignee="mayor", lane=Lane.CRITICAL)
    for query in ("#42", "login", "@MAYOR", "critical", "fix critical", ""):
        assert matches(b, query), query
    for query in ("#43", "logout", "@deacon", "experimental", "fix logout"):
        assert not matches(b, query), query
    board = build_board([Source(BeadStatus.BACKLOG, 2, (b, bead(7, "other")))], "login")
    assert ([x.id for x in board[0].beads], board[0].loaded, board[0].count) == ([42], 2, 2)


def test_cursor_follows_its_bead_or_keeps_the_nearest_row() -> None:
    columns = [[1, 2, 3], [4], []]
    assert place_cursor(columns, 4, 0, 2) == (1, 0)
    assert place_cursor(columns, 99, 0, 7) == (0, 2)
    assert place_cursor(columns, None, 1, 3) == (1, 0)
    assert place_cursor(columns, None, 9, 0) == (2, 0)
    assert place_cursor([], 1, 3, 3) == (0, 0)


def test_titles_wrap_on_words_and_end_in_an_ellipsis() -> None:
    assert wrap_words("Fix the login page redirect loop on logout", 14, 2) == [
        "Fix the login",
        "page redirect…",
    ]
    assert wrap_words("short", 14, 2) == ["short"]
    assert wrap_words("Supercalifragilistic word", 10, 2) == ["Supercalif", "ragilisti…"]
    assert wrap_words("a b", 0, 2) == [] and wrap_words("a b", 5, 0) == []
    for line in wrap_words("漢字漢字漢字漢字 漢字", 6, 2):
        assert cell_width(line) <= 6
    assert cell_width("漢a") == 3
    assert fit("abcdef", 4) == "abc…" and fit("abc", 4) == "abc" and fit("abc", 0) == ""


def test_picking_an_agent_maps_to_hook_and_unhook() -> None:
    assert reassignment(BeadStatus.BACKLOG, "", "") == []
    assert reassignment(BeadStatus.BACKLOG, "", "mayor") == [(Action.HOOK, "mayor")]
    assert reassignment(BeadStatus.ESCALATED, "x", "mayor") == [(Action.HOOK, "mayor")]
    assert reassignment(BeadStatus.HOOKED, "x", "") == [(Action.UNHOOK, "")]
    assert reassignment(BeadStatus.HOOKED, "x", "y") == [(Action.UNHOOK, ""), (Action.HOOK, "y")]
    with pytest.raises(IllegalTransition, match="slung bead cannot change"):
        reassignment(BeadStatus.SLUNG, "x", "y")
    with pytest.raises(IllegalTransition, match="escalated"):
        reassignment(BeadStatus.ESCALATED, "x", "")


def test_draft_edits_name_only_changed_fields() -> None:
    b = bead(1, "Title", description="d", lane=Lane.STANDARD, priority=2)
    assert draft_edits(b, BeadDraft("Title", "d", Lane.STANDARD, 2)) == {}
    assert draft_edits(b, BeadDraft("New", "d2", Lane.CRITICAL, 0)) == {
        "title": "New",
        "description": "d2",
        "lane": Lane.CRITICAL,
        "priority": 0,
    }


def test_history_lines_describe_each_event() -> None:
    def event(kind: str, **data: object) -> Event:
        return Event(id=1, at="", actor="op", kind=kind, data=dict(data))

    assert describe_event(event("bead.created")) == "created"
    assert (
        describe_event(event("bead.hook", **{"from": "backlog", "to": "hooked"}, assignee="m"))
        == "hook backlog → hooked @m"
    )
    assert describe_event(event("bead.edited", after={"title": "x"}, labels_added=["a"])) == (
        "edited title, +a"
    )
    assert describe_event(event("bead.blocked", blocker=3)) == "blocked by #3"
    assert describe_event(event("bead.fail", reason="tests red")).endswith("(tests red)")


async def test_store_names_beads_waiting_on_open_blockers(
    store: Store, ids: dict[str, int]
) -> None:
    assert await store.beads.blocked_ids() == {ids["blocked"]}
    await store.beads.sling(ids["backlog"], "mayor", actor=OP)
    await store.beads.apply(ids["backlog"], Action.DONE, actor=OP)
    assert await store.beads.blocked_ids() == set()


# ---- the pane -----------------------------------------------------------------------------------


async def test_renders_at_80x24_with_every_kanban_header(
    services: Services, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        lines = text.splitlines()
        for title in ("Backlog", "Hooked", "Slung", "Review", "Done"):
            assert title in lines[1], title
        assert re.search(r"Backlog +3 ", lines[1])  # the header counts the column
        assert "Failed/Esc 2 ▸" in lines[0]  # the column out of view is named
        assert "[bold red]x[/]" in text  # a title is never markup
        assert "@mayor" in text and "⊘" in text and "▲P0" in text
        assert max(len(line) for line in lines) <= 80


async def test_renders_at_250x70_with_all_six_columns(
    services: Services, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(250, 70)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        header = text.splitlines()[1]
        for spec in BOARD:
            assert spec.title in header, spec.title
        assert "Fix login redirect loop on logout" in text  # wide cards keep whole titles
        assert "⚑ escalated" in text.splitlines()[0]  # the legend fits
        assert "[bold red]x[/]" in text


async def test_jkhl_and_arrows_move_the_cursor(services: Services, ids: dict[str, int]) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert board_of(app).has_focus
        backlog = [b.id for b in board_of(app).columns[0].beads]
        assert current_id(app) == backlog[0]
        await pilot.press("j")
        assert current_id(app) == backlog[1]
        await pilot.press("down", "down", "down")  # stops at the last card
        assert current_id(app) == backlog[-1]
        await pilot.press("k")
        assert current_id(app) == backlog[-2]
        await pilot.press("l")  # Hooked has one card: nearest row
        assert current_id(app) == ids["hooked"]
        await pilot.press("right", "l", "l")
        assert current_id(app) == ids["done"]
        await pilot.press("h", "left")
        assert current_id(app) == ids["slung"]
        await pilot.press("l", "l", "l", "G")
        assert current_id(app) == ids["escalated"]
        await pilot.press("g")
        assert current_id(app) == ids["failed"]
        await pilot.press("up")
        assert current_id(app) == ids["failed"]


async def test_narrow_board_slides_to_the_failed_column(
    services: Services, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"lllll")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert "Failed/Esc" in lines[1] and "Backlog" not in lines[1]
        assert lines[0].startswith(" ◂ Backlog 3")
        assert current_id(app) == ids["failed"]


async def test_L_and_H_move_cards_along_legal_transitions(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids["hooked"])
        await pilot.press("L")
        await settle(app, pilot)
        assert (await store.beads.get(ids["hooked"])).status is BeadStatus.SLUNG
        assert current_id(app) == ids["hooked"]  # the cursor followed the card
        assert board_of(app).column == 2
        assert ChangedEvent(what="beads", ids=[ids["hooked"]]) in app.posted
        put_cursor(app, ids["review"])
        await pilot.press("H")  # review -> slung is rework
        await settle(app, pilot)
        assert (await store.beads.get(ids["review"])).status is BeadStatus.SLUNG
        put_cursor(app, ids["escalated"])
        await pilot.press("H")  # reopened into backlog
        await settle(app, pilot)
        reopened = await store.beads.get(ids["escalated"])
        assert reopened.status is BeadStatus.BACKLOG
        assert board_of(app).column == 0
        events = await store.events.find(bead_id=ids["escalated"])
        assert events[-1].kind == "bead.reopen" and events[-1].actor == services.actor


@pytest.mark.parametrize(
    ("name", "key", "why"),
    [
        ("slung", "H", "cannot go from slung to hooked"),
        ("done", "L", "done is the last column"),
        ("backlog", "H", "backlog is the first column"),
        ("failed", "L", "can only be reopened"),
    ],
)
async def test_illegal_moves_say_why_and_change_nothing(
    services: Services, store: Store, ids: dict[str, int], name: str, key: str, why: str
) -> None:
    before = await store.beads.get(ids[name])
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids[name])
        await pilot.press(key)
        await settle(app, pilot)
        assert any(why in note for note in notes(app)), notes(app)
        assert await store.beads.get(ids[name]) == before
        assert not any(isinstance(m, ChangedEvent) for m in app.posted)


async def test_d_marks_done_only_where_the_state_machine_allows(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids["backlog"])
        await pilot.press("d")
        await settle(app, pilot)
        assert any("cannot mark done a bead that is backlog" in n for n in notes(app))
        assert (await store.beads.get(ids["backlog"])).status is BeadStatus.BACKLOG
        put_cursor(app, ids["review"])
        await pilot.press("d")
        await settle(app, pilot)
        assert (await store.beads.get(ids["review"])).status is BeadStatus.DONE
        assert board_of(app).column == 4 and current_id(app) == ids["review"]


async def test_enter_opens_the_bead_and_escape_closes_it(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    await store.beads.edit(ids["blocked"], actor=OP, description="line one\n[i]two[/i]\x1b[31m")
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids["blocked"])
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, BeadDetail)
        text = screen_text(app)
        assert f"#{ids['blocked']} Waits on the guide" in text
        description = str(app.screen.query_one("#bead-detail-description", Static).render())
        assert "[i]two[/i]" in description and "\x1b" not in description and "␛" in description
        blockers = str(app.screen.query_one("#bead-detail-blockers", Static).render())
        assert f"#{ids['backlog']}" in blockers and "Write the onboarding guide" in blockers
        history = str(app.screen.query_one("#bead-detail-history", Static).render())
        assert "created" in history and "edited description" in history
        await pilot.press("j", "k")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, BeadDetail)


async def test_n_creates_a_bead_in_backlog(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        assert isinstance(app.screen, BeadForm)
        await pilot.press("enter")  # an empty title is refused inline
        await pilot.pause()
        error = str(app.screen.query_one("#bead-form-error", Static).render())
        assert "non-empty title" in error and isinstance(app.screen, BeadForm)
        await pilot.press(*"Add [b]dark[/b] mode")
        app.screen.query_one("#bead-form-description", TextArea).text = "details"
        app.screen.query_one("#bead-form-lane", Select).value = Lane.CRITICAL
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, BeadForm)
        created = (await store.beads.find(search="[b]dark"))[0]
        assert (created.title, created.description) == ("Add [b]dark[/b] mode", "details")
        assert (created.status, created.lane, created.priority) == (
            BeadStatus.BACKLOG,
            Lane.CRITICAL,
            2,
        )
        assert current_id(app) == created.id and board_of(app).column == 0
        assert "[b]dark[/b]" in screen_text(app)  # shown literally, never as markup


async def test_n_with_an_agent_hooks_the_new_bead(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        await pilot.press(*"Hooked at birth")
        app.screen.query_one("#bead-form-assignee", Select).value = "mayor"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        created = (await store.beads.find(search="hooked at birth"))[0]
        assert (created.status, created.assignee) == (BeadStatus.HOOKED, "mayor")
        assert current_id(app) == created.id and board_of(app).column == 1


async def test_e_edits_the_title_and_escape_cancels(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids["slung"])
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, BeadForm)
        assert app.screen.query_one("#bead-form-assignee", Select).disabled  # held while slung
        title = app.screen.query_one("#bead-form-title", Input)
        assert title.value == "Port the cache layer"
        title.value = "Port the cache layer to Redis"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        edited = await store.beads.get(ids["slung"])
        assert edited.title == "Port the cache layer to Redis"
        assert edited.status is BeadStatus.SLUNG and edited.assignee == "polecat-2"
        assert current_id(app) == ids["slung"]
        await pilot.press("e")
        await settle(app, pilot)
        app.screen.query_one("#bead-form-title", Input).value = "discarded"
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, BeadForm)
        assert (await store.beads.get(ids["slung"])).title == "Port the cache layer to Redis"


async def test_e_changes_a_hooked_beads_agent(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids["hooked"])
        await pilot.press("e")
        await settle(app, pilot)
        app.screen.query_one("#bead-form-assignee", Select).value = "polecat-2"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        moved = await store.beads.get(ids["hooked"])
        assert (moved.status, moved.assignee) == (BeadStatus.HOOKED, "polecat-2")


async def test_search_filters_cards_and_shows_the_filter(
    services: Services, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        pane = app.query_one(BeadsPane)
        pane.search("@MAYOR")
        await pilot.pause()
        shown = {b.id for c in board_of(app).columns for b in c.beads}
        assert shown == {ids["hooked"], ids["review"], ids["done"], ids["failed"]}
        text = screen_text(app)
        assert "filter: @MAYOR" in text.splitlines()[0]
        assert re.search(r"Hooked +1/1 ", text) and "no match" in text
        pane.search("critical")
        await pilot.pause()
        assert [b.id for c in board_of(app).columns for b in c.beads] == [ids["backlog"]]
        pane.search("")
        await pilot.pause()
        assert len([b for c in board_of(app).columns for b in c.beads]) == 9
        assert "filter" not in screen_text(app).splitlines()[0]


async def test_cursor_stays_on_its_bead_across_reloads(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        put_cursor(app, ids["blocked"])
        row = board_of(app).row
        # A more urgent bead arrives from elsewhere and sorts above the selected one.
        await store.beads.add("Urgent", actor=OP, lane=Lane.CRITICAL, priority=0)
        await app.query_one(BeadsPane).reload()
        await pilot.pause()
        assert current_id(app) == ids["blocked"] and board_of(app).row == row + 1
        # The bead leaves the board (filtered out): the cursor keeps its place.
        app.query_one(BeadsPane).search("guide")
        await pilot.pause()
        assert current_id(app) == ids["blocked"]


async def test_keys_on_an_empty_board_do_no_harm(town_dir: Path, store: Store) -> None:
    app = harness(make_services(Town(town_dir), store, FakeLink()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "l", "H", "L", "d", "enter", "e", "G")
        await settle(app, pilot)
        assert "no bead selected" in notes(app)
        assert "empty" in screen_text(app)


def test_every_binding_has_a_unique_id_and_a_description() -> None:
    bindings = [
        b
        for cls in (BeadsPane, KanbanBoard, BeadDetail, BeadForm)
        for b in cls.BINDINGS
        if not isinstance(b, tuple)
    ]
    ids_ = [b.id for b in bindings]
    assert all(ids_) and len(ids_) == len(set(ids_))
    assert all(b.description for b in bindings)


async def test_long_columns_scroll_to_keep_the_cursor_in_view(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    for n in range(20):
        await store.beads.add(f"Filler {n}", actor=OP)
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "↓" in screen_text(app)
        await pilot.press("G")
        await pilot.pause()
        text = screen_text(app)
        last = board_of(app).columns[0].beads[-1]
        assert current_id(app) == last.id and last.title in text and "↑" in text
        assert app.query_one("#beads-column-0", ColumnWidget).top > 0


@pytest.mark.parametrize("theme", ["ansi-dark", "textual-light"])
async def test_other_themes_draw_the_cursor(
    services: Services, ids: dict[str, int], theme: str
) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await settle(app, pilot)
        strip = app.screen._compositor.render_strips()[3]
        cursor = [seg for seg in strip if seg.text.startswith("#1 ")]
        others = [seg for seg in strip if seg.text.startswith("#3")]
        assert cursor and others
        assert cursor[0].style is not None and others[0].style is not None
        assert cursor[0].style.bgcolor != others[0].style.bgcolor


async def test_beads_beyond_the_loaded_ones_still_count(
    services: Services, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tundra_tui.ui.panes.beads.PER_COLUMN", 2)
    app = harness(services)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert len(board_of(app).columns[0].beads) == 2
        text = screen_text(app)
        assert re.search(r"Backlog +3 ", text) and "↓ 1 more" in text


async def test_a_store_error_on_reload_is_one_line(
    services: Services, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)

        async def locked(**_: object) -> None:
            raise StoreLocked("the town database is locked by another process")

        monkeypatch.setattr(services.store.beads, "kanban", locked)
        await app.query_one(BeadsPane).reload()
        await pilot.pause()
        assert "the town database is locked by another process" in notes(app)
        assert current_id(app) is not None  # the board keeps what it showed


async def test_resizing_reflows_the_board_and_header(
    services: Services, ids: dict[str, int]
) -> None:
    app = harness(services)
    async with app.run_test(size=(100, 24)) as pilot:  # all six columns, but no room for the legend
        await settle(app, pilot)
        assert "critical" not in screen_text(app).splitlines()[0]
        await pilot.resize_terminal(250, 70)
        await settle(app, pilot)
        lines = screen_text(app).splitlines()
        assert "▲ critical" in lines[0] and "▸" not in lines[0]
        assert "Failed/Escalated" in lines[1]


async def test_cards_and_the_detail_show_cost(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    """A card shows its bead's spend ($?, never $0.00, for unpriced only); no label without
    usage; the detail lists the attempt with its tokens and cost."""

    def call(key: str, bead: int, cost: float, *, priced: bool = True) -> UsageSample:
        return UsageSample(
            at="2026-11-20T12:00:00.000000Z",
            agent="polecat-2",
            model="demo-sonnet" if priced else "mystery",
            runtime="demo",
            bead_id=bead,
            input_tokens=1000,
            output_tokens=200,
            cost_usd=cost,
            priced=priced,
            role="polecat",
            source_key=key,
        )

    await store.metrics.record(
        [
            call("a", ids["slung"], 0.25),
            call("b", ids["slung"], 0.17),
            call("c", ids["review"], 0.0, priced=False),
        ]
    )
    app = harness(services)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert f"#{ids['slung']} ■P2 $0.42  @polecat-2" in text
        assert f"#{ids['review']} ■P2 ◔ $?" in text
        assert f"#{ids['hooked']} ■P2    " in text  # no usage, no label
        put_cursor(app, ids["slung"])
        await pilot.press("enter")
        await settle(app, pilot)
        cost = str(app.screen.query_one("#bead-detail-cost", Static).render())
        assert "polecat-2 polecat" in cost and "2.4k tok  $0.42" in cost
        assert "kept $0.00   waste $0.00   open $0.42" in cost


async def test_cards_name_their_grade_where_it_fits_and_cut_the_rest_with_an_ellipsis(
    services: Services, store: Store, ids: dict[str, int]
) -> None:
    """Wide cards say the grade in words after its glyph, with the cost; narrow ones keep
    the glyph and end a head too long for them in an ellipsis."""
    await store.metrics.record(
        [
            UsageSample(
                at="2026-11-20T12:00:00.000000Z",
                agent="mayor",
                model="demo-sonnet",
                runtime="demo",
                bead_id=ids["review"],
                input_tokens=1000,
                output_tokens=200,
                cost_usd=12.34,
                priced=True,
                role="mayor",
                source_key="r",
            )
        ]
    )
    app = harness(services)
    async with app.run_test(size=(250, 70)) as pilot:
        await settle(app, pilot)
        assert f"#{ids['review']} ■P2 ◔ submitted $12.34" in screen_text(app)
        await pilot.resize_terminal(100, 24)
        await settle(app, pilot)
        text = screen_text(app)
        assert "submitted" not in text
        assert f"#{ids['review']} ■P2 ◔ $12…" in text, text
