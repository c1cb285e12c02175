"""``rectiflow ticket extend`` and ``rectiflow extension list|approve|refuse``: deadline
extensions from the command line, under the same policy as the pages (``--as USER``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from cli.context import AppContext, _, fail, pass_app, when
from cli.main import main
from cli.tickets import ticket
from engine.actors import get_actor
from engine.clock import ensure_utc
from engine.errors import EngineError, ValidationError
from engine.extensions import decide_extension, list_pending_extensions, request_extension
from engine.read import reference


def _due_time(text: str, timezone: str) -> datetime:
    """``--to``: a time (``2026-12-10T17:00+08:00``), or a date meaning the end of that day in
    the campaign's timezone (local midnight after it), as time limits count."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))
            return ensure_utc(end)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            _(
                "--to %(text)s is not a date (2026-12-10) or a time (2026-12-10T17:00+08:00)",
                text=repr(text),
            ),
            fields={"to": _("not a date or time")},
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return ensure_utc(value)


def _ticket_due_time(uow: Any, number: str, to_text: str) -> tuple[datetime, str]:
    """``--to`` for ticket NUMBER, read in its campaign's timezone; (due time, timezone)."""
    tz = reference.ticket_model(uow.session, number).campaign.timezone
    return _due_time(to_text, tz), tz


@ticket.command("extend")
@click.argument("number")
@click.option("--to", "to_text", required=True, metavar="DATE|TIME",
              help="The new due time; a date means the end of that day, campaign time.")  # fmt: skip
@click.option("--reason", required=True, help="Why more time is needed.")
@click.option("--as", "username", required=True, help="Who asks (their officer, leader...).")
@pass_app
def extend(app: AppContext, number: str, to_text: str, reason: str, username: str) -> None:
    """Ask for a later due time on ticket NUMBER; a supervisor decides."""
    try:
        with app.unit_of_work() as uow:
            due, tz = _ticket_due_time(uow, number, to_text)
            ext_id = request_extension(
                uow, number, actor=get_actor(uow.session, username), due_at=due, reason=reason
            )
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "extension request %(id)s for %(number)s: due %(due)s asked",
            id=ext_id,
            number=number,
            due=when(due, tz),
        )
    )


@ticket.command("deadline")
@click.argument("number")
@click.option("--to", "to_text", required=True, metavar="DATE|TIME",
              help="The new due time; a date means the end of that day, campaign time.")  # fmt: skip
@click.option("--reason", required=True, help="Why this deadline is the right one.")
@click.option("--as", "username", required=True, help="The supervisor who sets it.")
@pass_app
def deadline(app: AppContext, number: str, to_text: str, reason: str, username: str) -> None:
    """Set a new, defined deadline on an overdue ticket (the breach stays on the record)."""
    from engine.redeadline import set_deadline

    try:
        with app.unit_of_work() as uow:
            due, tz = _ticket_due_time(uow, number, to_text)
            version = set_deadline(
                uow, number, actor=get_actor(uow.session, username), due_at=due, reason=reason
            )
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "%(number)s: due %(due)s from now on (version %(version)s)",
            number=number,
            due=when(due, tz),
            version=version,
        )
    )


@main.group()
def extension() -> None:
    """Deadline extension requests: list, approve, refuse."""


@extension.command("list")
@pass_app
def list_(app: AppContext) -> None:
    """Pending requests: id, ticket, who asked, current and requested due time, reason."""
    with app.unit_of_work() as uow:
        rows = list_pending_extensions(uow.session)
        zones = {e.ticket: _timezone(uow, e.ticket) for e in rows}
    if not rows:
        click.echo(_("no extension request is waiting"))
    for e in rows:
        tz = zones[e.ticket]
        current = when(e.current_due_at, tz) if e.current_due_at else "-"
        click.echo(
            f"{e.id}\t{e.ticket}\t{e.requested_by}\t{current} → "
            f"{when(e.requested_due_at, tz)}\t{e.reason}"
        )


def _timezone(uow: Any, number: str) -> str:
    return str(reference.ticket_model(uow.session, number).campaign.timezone)


def _decide(app: AppContext, ext_id: int, username: str, note: str | None, approve: bool) -> None:
    try:
        with app.unit_of_work() as uow:
            view = decide_extension(
                uow, ext_id, actor=get_actor(uow.session, username), approve=approve, note=note
            )
            tz = _timezone(uow, view.ticket)
    except EngineError as exc:
        fail(exc)
    if approve:
        line = _(
            "extension request %(id)s for %(number)s approved by %(user)s: due %(due)s",
            id=view.id,
            number=view.ticket,
            user=username,
            due=when(view.requested_due_at, tz),
        )
    else:
        line = _(
            "extension request %(id)s for %(number)s refused by %(user)s",
            id=view.id,
            number=view.ticket,
            user=username,
        )
    click.echo(line)


@extension.command("approve")
@click.argument("ext_id", type=int)
@click.option("--as", "username", required=True, help="The deciding supervisor.")
@click.option("--note")
@pass_app
def approve(app: AppContext, ext_id: int, username: str, note: str | None) -> None:
    """Approve request EXT_ID: the ticket's due time moves and the ladder starts again."""
    _decide(app, ext_id, username, note, True)


@extension.command("refuse")
@click.argument("ext_id", type=int)
@click.option("--as", "username", required=True, help="The deciding supervisor.")
@click.option("--note", help="Why (required when refusing).")
@pass_app
def refuse(app: AppContext, ext_id: int, username: str, note: str | None) -> None:
    """Refuse request EXT_ID (a note is required); the due time stays."""
    _decide(app, ext_id, username, note, False)
