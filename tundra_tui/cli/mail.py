"""`at mail …`."""

from __future__ import annotations

from tundra_tui.cli.context import Context
from tundra_tui.domain.errors import NotFound
from tundra_tui.domain.mail import OPERATOR, Mail
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, key_values, table


def require_agent(ctx: Context, name: str, purpose: str) -> None:
    """Refuse a name that is not an agent in tundra.toml, before anything is stored."""
    if name not in ctx.config().agents():
        raise NotFound(f"no agent {name!r} in tundra.toml {purpose} (see `at agent list`)")


def _require_party(ctx: Context, name: str) -> None:
    """Mail goes to and from agents on the roster, or the operator."""
    if name != OPERATOR:
        require_agent(ctx, name, "to address mail to")


async def cmd_send(ctx: Context) -> int:
    """Send a message; it is delivered to an agent at its next turn boundary. Through the
    daemon when it runs (inside an agent, always: it names the sender)."""
    from tundra_tui.cli.reports import send_mail

    if (sent := await send_mail(ctx)) is not None:
        return sent
    a = ctx.args
    sender = a.sender or ctx.actor
    _require_party(ctx, a.to)
    _require_party(ctx, sender)
    store = await ctx.store()
    message = await store.mail.send(
        sender, a.to, a.message, actor=ctx.actor, subject=a.subject, urgent=a.urgent
    )
    if ctx.json:
        dump_json(message)
    else:
        print(f"sent message {message.id} to {a.to}")
    return 0


def _row(m: Mail) -> tuple[object, ...]:
    return (
        m.id,
        "" if m.is_read else "new",
        "!" if m.urgent else "",
        m.sender,
        m.recipient,
        m.created_at[:16].replace("T", " "),
        m.subject or m.body.split("\n", 1)[0],
    )


async def cmd_list(ctx: Context) -> int:
    """Messages, newest first."""
    a = ctx.args
    store = await ctx.store()
    messages = await store.mail.find(
        recipient=a.recipient, sender=a.sender, unread_only=a.unread, limit=a.limit
    )
    if ctx.json:
        dump_json(messages)
    elif messages:
        table(("ID", "", "", "FROM", "TO", "SENT", "SUBJECT"), [_row(m) for m in messages], flex=6)
    else:
        print("no mail")
    return 0


async def cmd_read(ctx: Context) -> int:
    """Print a message and set its read receipt."""
    store = await ctx.store()
    message = await store.mail.read(ctx.args.id, actor=ctx.actor)
    if ctx.json:
        dump_json(message)
        return 0
    key_values(
        [
            ("from", message.sender),
            ("to", message.recipient),
            ("sent", message.created_at),
            ("read", message.read_at),
            ("subject", message.subject or "-"),
        ]
    )
    print()
    print(visible(message.body))
    return 0
