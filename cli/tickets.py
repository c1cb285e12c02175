"""``rectiflow ticket list|show|create|fire``."""

from __future__ import annotations

import json

import click

from cli.context import AppContext, _, act_as, fail, pass_app, when
from cli.main import main
from engine.errors import EngineError, ValidationError
from engine.messages import log_title, translate
from engine.models import User
from engine.read import reference
from engine.tickets import allowed_triggers, create_ticket, fire, get_actor, load_ticket_row


@main.group()
def ticket() -> None:
    """List, show, create tickets and fire triggers on them."""


@ticket.command("list")
@click.option("--campaign")
@click.option("--state")
@click.option("--unit")
@click.option("--limit", default=50, show_default=True)
@pass_app
def list_tickets(
    app: AppContext, campaign: str | None, state: str | None, unit: str | None, limit: int
) -> None:
    """One line per ticket: number, state, category, unit, due time."""
    with app.unit_of_work() as uow:
        lines = reference.ticket_lines(
            uow.session, campaign=campaign, state=state, unit=unit, limit=limit
        )
    r = app.reader
    for row in lines:
        due = when(row.due_at, row.timezone) if row.due_at else "-"
        click.echo(
            f"{row.number}\t{r.state(row.state)}\tv{row.version}\t"
            f"{r.category(row.category) if row.category else '-'}"
            f"\t{r.unit(row.unit_code) if row.unit_code else '-'}\t{due}"
        )
    if not lines:
        click.echo(_("no ticket matches"))


@ticket.command("show")
@click.argument("number")
@click.option(
    "--as",
    "username",
    help="Show it as this user sees it (refused when the policy does not let them), with the "
    "triggers they may fire.",
)
@pass_app
def show(app: AppContext, number: str, username: str | None) -> None:
    """A ticket with its history."""
    try:
        with app.unit_of_work() as uow:
            session = uow.session
            t = reference.ticket_model(session, number)
            act_as(uow, username, "ticket.view", t)
            r = app.reader
            wf = uow.registry.get(t.workflow_name, t.workflow_version)
            tz = t.campaign.timezone
            click.echo(
                _(
                    "%(number)s  state: %(state)s  version %(version)s  workflow %(workflow)s "
                    "v%(wf_version)s",
                    number=t.number,
                    state=r.state(t.state, wf),
                    version=t.version,
                    workflow=r.title(wf.titles, wf.title),
                    wf_version=t.workflow_version,
                )
            )
            click.echo(
                _(
                    "kind: %(kind)s  category: %(category)s  area: %(area)s",
                    kind=r.kind(t.kind, wf) if t.kind else "-",
                    category=r.category(t.category) if t.category else "-",
                    area=t.area or "-",
                )
            )
            click.echo(
                _(
                    "unit: %(unit)s  responsible officer: %(assignee)s",
                    unit=r.unit(t.unit.code) if t.unit else "-",
                    assignee=t.assignee.username if t.assignee else "-",
                )
            )
            click.echo(
                _(
                    "due: %(due)s (%(rule)s)  escalation level %(level)s",
                    due=when(t.due_at, tz) if t.due_at else "-",
                    rule=translate(t.due_rule, r) if t.due_rule else _("no deadline"),
                    level=t.escalation_level,
                )
            )
            click.echo(_("text: %(text)s", text=t.text))
            if username:
                actor = get_actor(session, username)
                row = load_ticket_row(session.connection(), number)
                names = sorted({s.name for s in allowed_triggers(uow, row, actor)})
                click.echo(
                    _(
                        "%(user)s may fire: %(triggers)s",
                        user=username,
                        triggers=_(", ").join(f"{r.trigger(n, wf)} ({n})" for n in names)
                        or _("nothing"),
                    )
                )
            click.echo(_("history:"))
            for entry in reference.ticket_history(session, t.id, t.number):
                click.echo(
                    f"  {entry.seq:>3} {when(entry.at, tz)}  {log_title(r, entry.trigger, wf, entry.from_state)}  "
                    f"{r.state(entry.from_state, wf) if entry.from_state else '-'} → "
                    f"{r.state(entry.to_state, wf)}  "
                    + _("by %(user)s (%(role)s)", user=entry.actor, role=r.role(entry.role))
                    + (_("  reason: %(reason)s", reason=entry.reason) if entry.reason else "")
                )
    except EngineError as exc:
        fail(exc)


def _parse_data(pairs: tuple[str, ...]) -> dict[str, str]:
    data: dict[str, str] = {}
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ValidationError(
            _("--data takes key=value, got %(bad)s", bad=", ".join(map(repr, bad)))
        )
    for pair in pairs:
        key, value = pair.split("=", 1)
        data[key.strip()] = value
    return data


@ticket.command("create")
@click.option("--campaign", required=True)
@click.option("--text", required=True)
@click.option("--kind", help="One of the programme's workflow's kinds.")
@click.option("--priority", help="One of the workflow's priorities (e.g. urgent).")
@click.option("--area")
@click.option("--citizen-name")
@click.option("--citizen-contact")
@click.option("--as", "username", default="clerk", show_default=True)
@pass_app
def create(
    app: AppContext,
    campaign: str,
    text: str,
    kind: str | None,
    priority: str | None,
    area: str | None,
    citizen_name: str | None,
    citizen_contact: str | None,
    username: str,
) -> None:
    """Record an opinion; prints the ticket number and the citizen's receipt secret."""
    try:
        with app.unit_of_work() as uow:
            actor = get_actor(uow.session, username)
            created = create_ticket(
                uow,
                campaign=campaign,
                text=text,
                kind=kind,
                priority=priority,
                area=area,
                citizen_name=citizen_name,
                citizen_contact=citizen_contact,
                actor=actor,
                now=app.now(),
                source="cli",
            )
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "created %(number)s (%(state)s); receipt secret: %(secret)s",
            number=created.number,
            state=app.reader.state(created.state),
            secret=created.secret,
        )
    )


@ticket.command("fire")
@click.argument("number")
@click.argument("trigger")
@click.option("--as", "username", required=True, help="The user who acts.")
@click.option(
    "--data", "pairs", multiple=True, metavar="KEY=VALUE", help="Data the trigger requires; repeat."
)
@click.option("--expected-version", type=int, help="Refuse if the ticket moved past this version.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def fire_command(
    app: AppContext,
    number: str,
    trigger: str,
    username: str,
    pairs: tuple[str, ...],
    expected_version: int | None,
    as_json: bool,
) -> None:
    """Fire TRIGGER on ticket NUMBER as a user, in one transaction."""
    try:
        data = _parse_data(pairs)
        with app.unit_of_work() as uow:
            actor = get_actor(uow.session, username)
            result = fire(
                uow,
                number,
                trigger,
                actor=actor,
                data=data,
                expected_version=expected_version,
                now=app.now(),
            )
    except EngineError as exc:
        fail(exc)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "number": result.number,
                    "from": result.from_state,
                    "to": result.to_state,
                    "version": result.version,
                }
            )
        )
    else:
        r = app.reader
        click.echo(
            _(
                "%(number)s: %(from)s → %(to)s (version %(version)s)",
                number=result.number,
                **{"from": r.state(result.from_state), "to": r.state(result.to_state)},
                version=result.version,
            )
        )


__all__ = ["ticket", "User"]
