"""The title bar counts the operator's unread mail (`✉ N`) next to the approvals waiting:
read at start, again when the daemon says mail changed and when the Mail view closes; a
click on it opens the Mail view. A scripted daemon and a real store."""

from __future__ import annotations

from pathlib import Path

from at_cli import until
from test_ui_app import make_app, store  # noqa: F401  (store: a fixture)
from ui_harness import FakeLink

from tundra_tui.daemon.protocol import ChangedEvent
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.store import Store
from tundra_tui.ui.modals.mail import MailView
from tundra_tui.ui.widgets.title_bar import TitleBar


async def test_unread_mail_is_counted_and_a_click_opens_the_mail_view(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    first = await store.mail.send("mayor", OPERATOR, "hello", actor="mayor")
    await store.mail.send("mayor", "polecat-1", "not yours", actor="mayor")
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test(size=(100, 30)) as pilot:
        title = app.query_one(TitleBar)
        await until(lambda: "✉ 1" in str(title.render()), what="one unread")

        await store.mail.send("witness", OPERATOR, "again", actor="witness")
        link.push(ChangedEvent(what="mail"))
        await until(lambda: "✉ 2" in str(title.render()), what="two unread")

        assert title._mail_cells is not None
        await pilot.click(TitleBar, offset=(title._mail_cells[0], 0))
        await until(lambda: isinstance(app.screen, MailView), what="the Mail view")
        await store.mail.read(first.id, actor=OPERATOR)  # as Enter on it there does
        await pilot.press("escape")
        await until(lambda: "✉ 1" in str(title.render()), what="one left unread")

        await store.mail.read(
            (await store.mail.find(recipient=OPERATOR, unread_only=True))[0].id, actor=OPERATOR
        )
        link.push(ChangedEvent(what="mail"))
        await until(lambda: "✉" not in str(title.render()), what="none unread")
        assert title._mail_cells is None
