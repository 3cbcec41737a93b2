"""What the control room repaints, and when: the grabbed tile's echo is drawn in a frame of
its own as far as possible (Textual draws the union of what is dirty, so any repaint far
from the echo row makes it redraw everything between the two)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tundra_tui.domain.agents import AgentState
from tundra_tui.ui.agent_rows import AgentRow
from tundra_tui.ui.widgets.agent_list import AgentList
from tundra_tui.ui.widgets.terminal_view import ECHO_WAIT, TYPING_GAP, TYPING_WINDOW, PaintTurns
from tundra_tui.ui.widgets.title_bar import TitleBar


def test_background_tiles_take_turns_and_hold_while_an_echo_is_on_its_way() -> None:
    turns = PaintTurns(gap=0.03)
    assert turns.take(10.0)
    assert not turns.take(10.01), "a second tile in the same frame"
    assert turns.take(10.04)
    turns.keyed(10.05)
    assert not turns.take(10.08), "a key's echo is on its way"
    turns.echoed(10.09)
    assert turns.take(10.09), "the echo is drawn: the tiles behind go on"
    turns.keyed(11.0)
    assert turns.take(11.0 + ECHO_WAIT + 0.001), "an agent that never echoes holds them no longer"


def test_while_the_operator_types_background_tiles_repaint_far_less_often() -> None:
    turns = PaintTurns(gap=0.03)
    turns.keyed(20.0)
    turns.echoed(20.01)
    assert turns.take(20.02), "the echo is drawn: one tile behind goes at once"
    assert not turns.take(20.06), "typing: the next waits TYPING_GAP, not the usual gap"
    assert turns.take(20.02 + TYPING_GAP + 0.001)
    turns.keyed(20.3)
    turns.echoed(20.31)
    assert turns.take(20.31), "right after an echo, even within TYPING_GAP of the last"
    later = 20.02 + TYPING_GAP + 0.001 + TYPING_WINDOW
    assert turns.take(later), "no key for TYPING_WINDOW: back to the usual gap"
    assert turns.take(later + 0.031)


def rows(*states: AgentState) -> list[AgentRow]:
    return [
        AgentRow(f"agent-{n}", "crew", "claude", "opus", state, 0, "")
        for n, state in enumerate(states)
    ]


class ListApp(App[None]):
    def compose(self) -> ComposeResult:
        yield AgentList(id="list")
        yield TitleBar(id="title")


async def test_the_agent_list_redraws_only_the_rows_that_changed() -> None:
    app = ListApp()
    async with app.run_test(size=(80, 20)) as pilot:
        listing = app.query_one(AgentList)
        listing.show_rows(rows(AgentState.IDLE, AgentState.WORKING, AgentState.IDLE))
        await pilot.pause()
        replaced: list[int] = []
        replace = listing.replace_option_prompt_at_index

        def counting(index: int, prompt: object) -> AgentList:
            replaced.append(index)
            return replace(index, prompt)  # type: ignore[arg-type]

        listing.replace_option_prompt_at_index = counting  # type: ignore[method-assign]
        listing.show_rows(rows(AgentState.IDLE, AgentState.WORKING, AgentState.IDLE))
        assert replaced == [], "nothing changed, nothing redrawn"
        listing.show_rows(rows(AgentState.IDLE, AgentState.IDLE, AgentState.IDLE))
        assert replaced == [1]
        prompt = str(listing.get_option_at_index(1).prompt)
        assert prompt.startswith(AgentState.IDLE.glyph), prompt


async def test_the_title_bar_repaints_only_when_what_it_says_changed() -> None:
    app = ListApp()
    async with app.run_test(size=(80, 20)) as pilot:
        title = app.query_one(TitleBar)
        title.clock, title.connected = "12:00", True
        title.refresh_if_changed()
        await pilot.pause()
        painted: list[int] = []
        refresh = title.refresh

        def counting(*args: object, **kwargs: object) -> TitleBar:
            painted.append(1)
            return refresh(*args, **kwargs)  # type: ignore[arg-type]

        title.refresh = counting  # type: ignore[method-assign]
        title.now = "2026-12-07T12:00:05Z"  # a second later: nothing it shows changed
        title.refresh_if_changed()
        assert painted == []
        title.clock = "12:01"
        title.refresh_if_changed()
        assert painted == [1]
