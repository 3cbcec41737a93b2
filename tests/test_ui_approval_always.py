"""The popup's `A`, as the inbox's: always allow this command for this agent (asked on the
keys line, then the same `rule_add` the inbox sends, in the words shown), and never for a
deny-listed command, which the popup flags ⚠ as the inbox does. A scripted daemon."""

from __future__ import annotations

from pathlib import Path

from at_cli import until
from test_ui_app import approval, make_app, store  # noqa: F401  (store: a fixture)
from textual.widgets import Static
from ui_harness import FakeLink

from tundra_tui.daemon.protocol import Approve, Deny, RuleAdd, RuleInfo
from tundra_tui.store import Store
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.modals.approval import ApprovalModal


def _text(modal: ApprovalModal, widget: str) -> str:
    return str(modal.query_one(widget, Static).render())


async def _popup(app: TundraApp) -> ApprovalModal:
    await until(lambda: isinstance(app.screen, ApprovalModal), what="the popup")
    modal = app.screen
    assert isinstance(modal, ApprovalModal)
    return modal


async def test_A_asks_then_makes_the_rule_in_the_words_shown(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    link = FakeLink([approval(3, "polecat-1", "make test")])
    link.answers[RuleAdd] = RuleInfo(
        id=1, agent="polecat-1", tool="Bash", subject="make test", created_at="", created_by=""
    )
    app = make_app(town_dir, store, link, approval_popup=True)
    app.arm_seconds = 30
    async with app.run_test(size=(100, 30)) as pilot:
        modal = await _popup(app)
        assert not modal.query_one("#approval-denied").display
        await pilot.press("A")  # type-ahead: nothing before the keys arm
        await pilot.pause()
        assert not modal.confirming
        modal._arm()
        assert "A always allow" in _text(modal, "#approval-keys")
        await pilot.press("A")
        await pilot.pause()
        asked = _text(modal, "#approval-keys")
        assert "Always allow this command for polecat-1" in asked, asked
        await pilot.press("escape")  # back from the question, the request still shown
        await pilot.pause()
        assert app.screen is modal and not modal.confirming
        await pilot.press("A", "A")
        await until(lambda: link.ops(RuleAdd), what="the rule asked for")
        assert link.ops(RuleAdd) == [RuleAdd(id=3, actor="operator", seen="make test")]
        await until(lambda: not isinstance(app.screen, ApprovalModal), what="the popup to close")
        await until(
            lambda: any(
                str(n.message) == "always allowed for polecat-1" for n in app._notifications
            )
        )
    assert not link.ops(Approve) and not link.ops(Deny)  # the rule approves it, in the daemon


async def test_a_deny_listed_command_is_flagged_and_never_always_allowed(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    link = FakeLink([approval(4, "polecat-1", "git push --force origin main")])
    app = make_app(town_dir, store, link, approval_popup=True)
    app.arm_seconds = 0
    async with app.run_test(size=(100, 30)) as pilot:
        modal = await _popup(app)
        assert modal.query_one("#approval-denied").display
        flagged = _text(modal, "#approval-denied")
        assert flagged.startswith("⚠ deny-list: force-pushes") and "never always" in flagged
        assert "always allow" not in _text(modal, "#approval-keys")
        await pilot.press("A", "A")
        await pilot.pause()
        assert app.screen is modal and not modal.confirming
        notes = [str(n.message) for n in app._notifications]
        assert any(note.startswith("never always-allowed: the command force") for note in notes)
        await pilot.press("n")
        await until(lambda: link.ops(Deny), what="the denial")
    assert not link.ops(RuleAdd)
