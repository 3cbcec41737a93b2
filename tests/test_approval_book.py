"""The approval book with real agents in real PTYs: only the operator approves, exactly
what was shown, once; nothing is lost while the store cannot be written.

A demo agent covers the ordinary path; a hostile `custom` agent (tests/helpers/
asker_agent.py) covers the findings: a second prompt right after an answer (F3), a
prompt redrawn in place (F4), a locked database (F7), input from inside an agent (F2).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tundra_tui.daemon import book as book_module
from tundra_tui.daemon.book import ApprovalBook, BookEvent
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.approvals import Approval, ApprovalSource, ApprovalStatus
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.events import ApprovalRequested, ApprovalResolved
from tundra_tui.session.hooks import PermissionAsk
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store, open_store

TIMEOUT = 15.0
ASKER = Path(__file__).parent / "helpers" / "asker_agent.py"
CUSTOM = {
    "idle_pattern": r"READY>\Z",
    "approval_pattern": r"Allow command\? .*\[y/n\]\Z",
    "approve_keys": "y",
    "deny_keys": "n",
}


class Town:
    """A session host, its store, the writer and the book, as the daemon wires them."""

    def __init__(self, store: Store, workdir: Path) -> None:
        self.store = store
        self.workdir = workdir
        self.host = SessionHost(store, max_ptys=4)
        self.writer = StoreWriter()
        self.book = ApprovalBook(self.host, store, self.writer)
        self.events: list[BookEvent] = []
        self.book.subscribe(self.events.append)

    async def start(self, name: str, runtime: Runtime = Runtime.CUSTOM) -> None:
        if runtime is Runtime.CUSTOM:
            adapter = adapter_for(Runtime.CUSTOM, CUSTOM)
            command = f"{sys.executable} {ASKER}"
            args: list[str] = []
        else:
            adapter = adapter_for(runtime)
            command = default_command(runtime)
            args = ["--speed", "0.2", "--approval-rate", "0", "--seed", "1"]
        launch = adapter.launch(
            command=command,
            args=args,
            env={"HOME": str(self.workdir)},
            cwd=self.workdir,
            base_env=os.environ,
        )
        # Wide enough that a prompt naming a path under pytest's tmp directory never wraps:
        # that path grows with pytest's run counter (pytest-1066/...), and at 100 columns a
        # long-lived machine's `[y/n]` ended up split over two rows.
        await self.host.start(AgentConfig(name, adapter, launch, columns=200, rows=30))
        await self.until(lambda: self.host.session(name).state is AgentState.IDLE)

    async def until(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                screens = {s.name: s.emulator.text() for s in self.host.sessions()}
                raise AssertionError(f"timed out; screens: {screens}")
            await asyncio.sleep(0.02)

    async def request(self, name: str, subject: str | None = None) -> Approval:
        def shown() -> Approval | None:
            for approval in self.book.pending(name):
                if subject is None or approval.subject == subject:
                    return approval
            return None

        await self.until(lambda: shown() is not None)
        found = shown()
        assert found is not None
        return found

    def keys(self) -> str:
        log = self.workdir / "keys.log"
        return log.read_text() if log.exists() else ""


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[Town]:
    store = await open_store(tmp_path / "town.db", busy_timeout_ms=200)
    made = Town(store, tmp_path)
    made.writer.start()
    await made.book.load()
    yield made
    await made.host.close()
    await made.writer.close(timeout=5.0)
    await store.close()


async def test_demo_agent_approve_records_once_in_order(town: Town) -> None:
    await town.start("alice", Runtime.DEMO)
    await town.host.send_text("alice", "RUN: touch approved.txt")
    approval = await town.request("alice")
    assert (approval.subject, approval.source) == ("touch approved.txt", ApprovalSource.SCREEN)
    decided = await town.book.approve(approval.id, actor="operator")
    assert decided.status is ApprovalStatus.APPROVED and decided.decided_by == "operator"
    await town.until(lambda: (town.workdir / "approved.txt").exists())
    assert await town.writer.drain(5.0)
    assert await town.store.approvals.pending() == []
    kinds = [e.kind for e in await town.store.events.find(kind_prefix="approval.")]
    assert kinds == ["approval.requested", "approval.approved"]
    assert [type(e) for e in town.events if isinstance(e, ApprovalResolved)] == [ApprovalResolved]


async def test_deny_runs_nothing_and_a_second_answer_is_refused(town: Town) -> None:
    await town.start("bob")
    await town.host.send_text("bob", "ask touch denied.txt")
    approval = await town.request("bob")
    await town.book.deny(approval.id, actor="operator")
    await town.until(lambda: "DENIED touch denied.txt" in town.host.session("bob").emulator.text())
    assert not (town.workdir / "denied.txt").exists()
    with pytest.raises(TundraError, match="already denied"):
        await town.book.approve(approval.id, actor="operator")
    assert town.keys() == "n"


async def test_a_second_prompt_after_the_answer_is_a_new_request_never_answered(
    town: Town,
) -> None:
    """F3: the old code re-sent `y` after 5 s and approved a prompt nobody saw."""
    await town.start("evil")
    second = town.workdir / "IMPORTANT"
    second.mkdir()
    await town.host.send_text("evil", f"ask-then touch first.txt || rm -rf {second}")
    first = await town.request("evil", "Allow command? touch first.txt [y/n]")
    await town.book.approve(first.id, actor="operator")
    fresh = await town.request("evil", f"Allow command? rm -rf {second} [y/n]")
    assert fresh.id != first.id and fresh.status is ApprovalStatus.PENDING
    # However long we wait, the old decision never answers the new prompt.
    await town.until(lambda: town.keys() == "y")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(town.until(lambda: town.keys() != "y", 30), 6.0)
    assert second.exists()
    assert town.book.pending("evil") == [fresh]


async def test_a_prompt_redrawn_in_place_is_not_answered_as_shown_before(town: Town) -> None:
    """F4: `ls -la` was shown and approved; `rm -rf` was on screen by then and ran."""
    await town.start("swapper")
    victim = town.workdir / "SWAPPED"
    victim.mkdir()
    await town.host.send_text("swapper", f"swap ls -la || rm -rf {victim} || 1.0")
    shown = await town.request("swapper", "Allow command? ls -la [y/n]")
    session = town.host.session("swapper")
    await town.until(lambda: f"Allow command? rm -rf {victim}" in session.emulator.text())
    with pytest.raises(TundraError, match=r"changed|replaced") as refused:
        await town.book.approve(shown.id, actor="operator")
    assert "nothing was sent" in str(refused.value)
    now = await town.request("swapper", f"Allow command? rm -rf {victim} [y/n]")
    assert now.id != shown.id
    assert town.keys() == "" and victim.exists()
    await town.book.deny(now.id, actor="operator")
    await town.until(lambda: town.keys() == "n")
    assert victim.exists()


async def test_a_locked_database_delays_the_record_but_never_loses_the_request(
    town: Town, tmp_path: Path
) -> None:
    """F7: a request arriving while another process holds the write lock is shown at once,
    kept, and written when the lock goes; nothing is dropped or dies unobserved."""
    await town.start("late")
    blocker = sqlite3.connect(tmp_path / "town.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        await town.host.send_text("late", "ask touch later.txt")
        approval = await town.request("late")
        await town.until(lambda: "locked" in town.writer.error)
        assert town.writer.pending >= 1
        rows = blocker.execute("SELECT COUNT(*) FROM approvals").fetchone()
        assert rows == (0,)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert await town.writer.drain(10.0)
    assert town.writer.error == ""
    assert [a.id for a in await town.store.approvals.pending()] == [approval.id]
    await town.book.approve(approval.id, actor="operator")
    await town.until(lambda: (town.workdir / "later.txt").exists())


async def test_the_hook_upgrades_the_screen_request_in_place(town: Town) -> None:
    """Claude Code shows its prompt and then asks through its hook: one request, same id,
    the hook's exact words, answered through the hook with no keys typed."""
    await town.start("claude-ish")
    await town.host.send_text("claude-ish", "ask touch hooked.txt")
    screen = await town.request("claude-ish")
    assert screen.source is ApprovalSource.SCREEN
    ask = PermissionAsk("Bash", "touch hooked.txt", str(town.workdir))
    waiting = asyncio.ensure_future(
        town.book.hook_request("claude-ish", ask, {"source": "hook"}, timeout=30)
    )
    await town.until(lambda: town.book.pending()[0].source is ApprovalSource.HOOK)
    (upgraded,) = town.book.pending()
    assert upgraded.id == screen.id and upgraded.subject == "touch hooked.txt"
    opened = [e.approval.id for e in town.events if isinstance(e, ApprovalRequested)]
    assert opened == [screen.id, screen.id]
    await town.book.approve(screen.id, actor="operator")
    decided = await asyncio.wait_for(waiting, 5)
    assert decided.status is ApprovalStatus.APPROVED
    assert town.keys() == "", "a hook's request is answered through the hook, never by keys"
    assert await town.writer.drain(5.0)
    stored = await town.store.approvals.get(screen.id)
    assert (stored.source, stored.subject, stored.status) == (
        ApprovalSource.HOOK,
        "touch hooked.txt",
        ApprovalStatus.APPROVED,
    )


async def test_a_prompt_left_after_its_hooks_answer_is_asked_again_only_after_a_while(
    town: Town, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Claude Code redraws its prompt a moment after its hook's answer, before clearing
    it: the screen, still showing the prompt, made a new request that expired at once (a
    phantom in the inbox and the audit). While the agent clears it, the answered prompt is
    not asked again; still there `ANSWERED_REOPEN_DELAY` later (this agent never hears its
    hook's answer), it is. The agent here redraws the same prompt in place 1.5 s on."""
    monkeypatch.setattr(book_module, "ANSWERED_REOPEN_DELAY", 4.0)
    await town.start("slow-to-clear")
    await town.host.send_text("slow-to-clear", "swap touch hooked.txt || touch hooked.txt || 1.5")
    screen = await town.request("slow-to-clear")
    ask = PermissionAsk("Bash", "touch hooked.txt", str(town.workdir))
    waiting = asyncio.ensure_future(
        town.book.hook_request("slow-to-clear", ask, {"source": "hook"}, timeout=30)
    )
    await town.until(lambda: town.book.pending()[0].source is ApprovalSource.HOOK)
    await town.book.approve(screen.id, actor="operator")
    assert (await asyncio.wait_for(waiting, 5)).status is ApprovalStatus.APPROVED
    answered = asyncio.get_running_loop().time()
    # The redraw came 1.5 s in; the one request after the answer comes at 4 s, and the
    # book's own events (below) show nothing was opened and expired in between.
    again = await town.request("slow-to-clear")
    assert asyncio.get_running_loop().time() - answered >= 4.0
    assert again.id != screen.id
    assert again.evidence["rule"] == "prompt still showing after its hook"
    kinds = [type(e).__name__ for e in town.events if e.approval.id != screen.id]
    assert kinds == ["ApprovalRequested"], "no request opened and expired meanwhile"


async def test_a_hook_request_that_times_out_is_closed_everywhere(town: Town) -> None:
    await town.start("slow")
    await town.host.send_text("slow", "ask echo hi")
    await town.request("slow")
    ask = PermissionAsk("Bash", "echo hi", "")
    with pytest.raises(TundraError, match="in time"):
        await town.book.hook_request("slow", ask, {"source": "hook"}, timeout=0.3)
    assert town.book.pending() == []
    resolved = [e.approval for e in town.events if isinstance(e, ApprovalResolved)]
    assert [a.status for a in resolved] == [ApprovalStatus.EXPIRED]
    assert town.keys() == ""


async def test_input_from_inside_an_agent_is_refused_while_a_request_waits(town: Town) -> None:
    """F2: `at send <itself> y` and raw keys from an agent's own tree."""
    await town.start("self")
    await town.start("other")
    with pytest.raises(TundraError, match="keys from inside an agent"):
        town.book.check_input("other", from_agent=True, raw=True)
    town.book.check_input("other", from_agent=True, raw=False)  # no request: allowed
    await town.host.send_text("self", "ask touch forged.txt")
    await town.request("self")
    for target in ("self", "other"):
        with pytest.raises(TundraError, match="approval"):
            town.book.check_input(target, from_agent=True, raw=False)
    town.book.check_input("self", from_agent=False, raw=True)  # the operator may type


async def test_an_answer_typed_in_the_agents_terminal_is_recorded_as_the_operators(
    town: Town,
) -> None:
    """Approving from `at session attach` was logged as expired: the audit lost it."""
    await town.start("attached")
    await town.host.send_text("attached", "ask touch typed.txt")
    approval = await town.request("attached")
    town.host.send_keys("attached", b"y")
    town.book.operator_typed("attached", b"y")
    await town.until(lambda: not town.book.pending())
    resolved = [e.approval for e in town.events if isinstance(e, ApprovalResolved)]
    assert [(a.id, a.status, a.decided_by) for a in resolved] == [
        (approval.id, ApprovalStatus.APPROVED, "operator")
    ]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own (root only: CI runs as root; elsewhere the test skips)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_delays_the_record_but_never_loses_the_request(
    small_disk: Path, tmp_path: Path
) -> None:
    """F7, disk full: the request is shown at once and written once space comes back."""
    store = await open_store(small_disk / "town.db", busy_timeout_ms=200)
    town = Town(store, tmp_path)
    town.writer.start()
    await town.book.load()
    filler = small_disk / "filler"
    try:
        await town.start("cramped")
        with filler.open("wb") as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        await town.host.send_text("cramped", "ask touch roomy.txt")
        approval = await town.request("cramped")
        await town.until(lambda: "full" in town.writer.error)
        filler.unlink()
        assert await town.writer.drain(15.0)
        assert [a.id for a in await store.approvals.pending()] == [approval.id]
        await town.book.approve(approval.id, actor="operator")
        await town.until(lambda: (town.workdir / "roomy.txt").exists())
    finally:
        await town.host.close()
        await town.writer.close(timeout=5.0)
        await store.close()


# ---- review findings ---------------------------------------------------------------------


async def test_a_late_hook_for_another_prompt_never_relabels_the_listed_request(
    town: Town,
) -> None:
    """A hook about `touch first.txt` arrived while `rm -rf` was on screen and relabelled
    its request; approving it then answered nothing and left the agent stuck at `!`."""
    await town.start("c")
    victim = town.workdir / "IMPORTANT"
    victim.mkdir()
    await town.host.send_text("c", f"ask-then touch first.txt || rm -rf {victim}")
    first = await town.request("c", "Allow command? touch first.txt [y/n]")
    await town.book.approve(first.id, actor="operator")
    second = await town.request("c", f"Allow command? rm -rf {victim} [y/n]")
    ask = PermissionAsk("Bash", "touch first.txt", "")
    hook = asyncio.ensure_future(town.book.hook_request("c", ask, {"source": "hook"}, 30))
    await town.until(lambda: second.id not in [a.id for a in town.book.pending()])
    (stale,) = town.book.pending()
    assert (stale.subject, stale.source) == ("touch first.txt", ApprovalSource.HOOK)
    await town.book.deny(stale.id, actor="operator")
    assert (await asyncio.wait_for(hook, 5)).status is ApprovalStatus.DENIED
    # The prompt still on screen is listed again, with its own words.
    again = await town.request("c", f"Allow command? rm -rf {victim} [y/n]")
    assert again.source is ApprovalSource.SCREEN
    await town.book.deny(again.id, actor="operator")
    await town.until(lambda: town.keys() == "yn")
    assert victim.exists()


async def test_an_answer_applies_only_to_the_words_it_was_given_for(town: Town) -> None:
    """The request's words changed (the hook's exact ones arrived) after the operator read
    them: the answer is refused, nothing is sent, and it stays pending to be read again."""
    await town.start("c")
    await town.host.send_text("c", "ask touch words.txt")
    shown = await town.request("c")
    ask = PermissionAsk("Bash", "touch words.txt", "")
    hook = asyncio.ensure_future(town.book.hook_request("c", ask, {"source": "hook"}, 30))
    await town.until(lambda: town.book.pending()[0].source is ApprovalSource.HOOK)
    with pytest.raises(TundraError, match="not what you answered"):
        await town.book.approve(shown.id, actor="operator", seen=shown.subject)
    (still,) = town.book.pending()
    assert still.id == shown.id and not hook.done()
    decided = await town.book.approve(still.id, actor="operator", seen=still.subject)
    assert decided.status is ApprovalStatus.APPROVED
    assert (await asyncio.wait_for(hook, 5)).status is ApprovalStatus.APPROVED


async def test_a_long_prompt_is_compared_whole_not_as_its_shortened_evidence(
    town: Town,
) -> None:
    """Evidence is cut at 200 characters; a redraw that changed only the tail went through."""
    await town.start("wide")
    town.host.resize("wide", 250, 30)
    head = "echo " + "ab" * 100
    await town.host.send_text("wide", f"swap {head} || {head} && touch PWNED || 1.0")
    shown = await town.request("wide", f"Allow command? {head} [y/n]")
    assert len(shown.subject) > 200
    session = town.host.session("wide")
    await town.until(lambda: "touch PWNED [y/n]" in session.emulator.text())
    # Refused either way: as changed (the answer finds the new tail), or already expired
    # (the book's re-read of the redraw closed it first, under load).
    with pytest.raises(TundraError, match=r"changed|replaced|expired"):
        await town.book.approve(shown.id, actor="operator")
    assert not (town.workdir / "PWNED").exists() and town.keys() == ""


async def test_a_lone_surrogate_in_a_hooks_request_is_still_recorded(town: Town) -> None:
    await town.start("s")
    await town.host.send_text("s", "ask echo hi")
    await town.request("s")
    ask = PermissionAsk("Bash", "echo \ud800 hi", "")
    waiting = asyncio.ensure_future(town.book.hook_request("s", ask, {"source": "hook"}, 30))
    await town.until(lambda: town.book.pending()[0].source is ApprovalSource.HOOK)
    (request,) = town.book.pending()
    await town.book.deny(request.id, actor="operator")
    await asyncio.wait_for(waiting, 5)
    assert await town.writer.drain(5.0)
    stored = await town.store.approvals.get(request.id)
    assert stored.subject == "echo \ufffd hi" and stored.status is ApprovalStatus.DENIED


async def test_answering_never_opens_an_empty_next_request(town: Town) -> None:
    """2 of 5 answers were followed by a request with no words (the state lagged the screen)."""
    await town.start("g")
    for n in range(5):
        await town.host.send_text("g", f"ask touch g{n}.txt")
        approval = await town.request("g", f"Allow command? touch g{n}.txt [y/n]")
        await town.book.approve(approval.id, actor="operator")
        await town.until(lambda n=n: (town.workdir / f"g{n}.txt").exists())
        await town.until(lambda: town.host.session("g").state is AgentState.IDLE)
    opened = [e.approval for e in town.events if isinstance(e, ApprovalRequested)]
    assert len(opened) == 5 and all(a.subject for a in opened)


async def test_text_from_an_agent_is_checked_again_right_before_it_is_typed(
    town: Town,
) -> None:
    """The check passed while the target was busy; its prompt opened before the text was
    typed (send_text waits for the screen to settle), and the text answered it."""
    await town.start("t")
    await town.host.send_text("t", "ask touch pwned.txt")
    await town.request("t")
    calls: list[int] = []

    def gate() -> None:
        calls.append(1)
        town.book.check_input("t", from_agent=True, raw=False)

    with pytest.raises(TundraError, match="approval"):
        await town.host.send_text("t", "y", gate=gate)
    assert calls and town.keys() == "" and not (town.workdir / "pwned.txt").exists()
