"""FocusLook (ui/widgets/focus_look.py): a table blurred because its tab was hidden keeps its
focused look until it is seen again, and looks right whenever it is seen."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher

from tundra_tui.ui.widgets.nav_table import NavTable

BOX_CSS = """
.box { border: round red; }
.box.-focus-within { border: round green; }
"""


class TwoTabs(App[None]):
    CSS = BOX_CSS

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="a"):
            with Vertical(id="a"):
                with Vertical(classes="box", id="box-a1"):
                    yield NavTable(id="a1")
                with Vertical(classes="box", id="box-a2"):
                    yield NavTable(id="a2")
            with Vertical(id="b"), Vertical(classes="box", id="box-b1"):
                yield NavTable(id="b1")

    def show(self, tab: str, table: str) -> None:
        self.query_one(ContentSwitcher).current = tab
        self.query_one(f"#{table}", NavTable).focus()


def looks_focused(app: TwoTabs, table_id: str) -> bool:
    table = app.query_one(f"#{table_id}", NavTable)
    box = app.query_one(f"#box-{table_id}")
    return box.has_class("-focus-within") and table.styles.background_tint.a > 0


async def test_a_round_trip_keeps_the_focused_look_without_restyling() -> None:
    app = TwoTabs()
    async with app.run_test() as pilot:
        app.show("a", "a1")
        await pilot.pause()
        assert looks_focused(app, "a1")
        app.show("b", "b1")
        await pilot.pause()
        assert looks_focused(app, "b1")
        a1 = app.query_one("#a1", NavTable)
        assert not a1.has_focus and a1._look_stale  # hidden: not restyled
        app.show("a", "a1")
        await pilot.pause()
        assert looks_focused(app, "a1") and not a1._look_stale
        assert app.query_one("#b1", NavTable)._look_stale  # its tab went first


async def test_shown_again_without_focus_looks_blurred() -> None:
    app = TwoTabs()
    async with app.run_test() as pilot:
        app.show("a", "a1")
        await pilot.pause()
        app.show("b", "b1")
        await pilot.pause()
        app.show("a", "a2")  # the other table of tab a takes focus this time
        await pilot.pause()
        assert looks_focused(app, "a2")
        assert not looks_focused(app, "a1")
        assert not app.query_one("#a1", NavTable)._look_stale


async def test_a_theme_change_while_hidden_is_not_undone() -> None:
    app = TwoTabs()
    async with app.run_test() as pilot:
        app.show("a", "a1")
        await pilot.pause()
        app.show("b", "b1")
        await pilot.pause()
        app.theme = "nord"  # restyles every node, the hidden table as blurred
        await pilot.pause()
        a1 = app.query_one("#a1", NavTable)
        assert not a1._look_stale
        app.show("a", "a1")
        await pilot.pause()
        assert looks_focused(app, "a1")


async def test_a_blur_on_screen_restyles_at_once() -> None:
    app = TwoTabs()
    async with app.run_test() as pilot:
        app.show("a", "a1")
        await pilot.pause()
        app.show("a", "a2")
        await pilot.pause()
        assert looks_focused(app, "a2")
        assert not looks_focused(app, "a1") and not app.query_one("#a1", NavTable)._look_stale
