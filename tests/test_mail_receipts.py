"""Read receipts through the daemon: the Mail view's way, so every control room hears them.

A real daemon and a client subscribed like a second control room: marking mail to the
operator read answers which receipts were set and publishes `changed mail` once; mail
to an agent is refused (read by anyone but its recipient it would never be delivered),
and nothing of a refused batch is marked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import at, daemon_town

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import ChangedEvent, MailRead, MailReceipts
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import find_town

DEADLINE = 10.0


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    with daemon_town() as root:
        at(root, "daemon", "start")
        yield root


def send(town: Path, sender: str, to: str, text: str) -> int:
    sent = at(town, "mail", "send", to, "-m", text, "--from", sender, "--json").stdout
    return int(json.loads(sent)["id"])


def read_at(town: Path, mail_id: int) -> str:
    shown = json.loads(at(town, "mail", "list", "--json", "--limit", "50").stdout)
    return str(next(m for m in shown if m["id"] == mail_id)["read_at"])


async def test_receipts_are_set_once_and_every_client_hears(town: Path) -> None:
    first = await asyncio.to_thread(send, town, "d1", "operator", "one")
    second = await asyncio.to_thread(send, town, "d1", "operator", "two")
    watcher = await DaemonClient.connect(find_town(town))
    reader = await DaemonClient.connect(find_town(town))
    try:
        await watcher.start_events()
        events = watcher.events()
        reply = await reader.call(MailRead(ids=[first, second, first]))
        assert reply == MailReceipts(read=[first, second])

        async def heard() -> ChangedEvent:
            async for event in events:
                if isinstance(event, ChangedEvent) and event.what == "mail":
                    return event
            raise AssertionError("the event stream ended")

        assert (await asyncio.wait_for(heard(), DEADLINE)).ids == [first, second]
        again = await reader.call(MailRead(ids=[first]))
        assert again == MailReceipts(read=[]), "a receipt is set once"
    finally:
        await watcher.close()
        await reader.close()
    assert read_at(town, first) and read_at(town, second)


async def test_mail_to_an_agent_is_refused_and_nothing_is_marked(town: Path) -> None:
    mine = await asyncio.to_thread(send, town, "d1", "operator", "for you")
    theirs = await asyncio.to_thread(send, town, "operator", "d1", "for d1")
    client = await DaemonClient.connect(find_town(town))
    try:
        with pytest.raises(TundraError, match="only its recipient sets its read receipt"):
            await client.call(MailRead(ids=[mine, theirs]))
    finally:
        await client.close()
    assert read_at(town, mine) == "" and read_at(town, theirs) == ""
