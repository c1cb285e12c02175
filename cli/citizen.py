"""``rectiflow citizen erase|purge``: the citizen's contact data, erased on request or by retention."""

from __future__ import annotations

import click

from cli.context import AppContext, _, fail, pass_app
from cli.main import main
from engine import personal_data
from engine.errors import EngineError
from engine.tickets import get_actor


@main.group()
def citizen() -> None:
    """Erase citizens' contact data (name, contact, address) on request or after retention."""


@citizen.command()
@click.argument("number")
@click.option("--reason", required=True, help="Why: the request and its reference.")
@click.option(
    "--as",
    "username",
    required=True,
    help="Who erases (a role granted personal_data.erase: supervisor, admin).",
)
@pass_app
def erase(app: AppContext, number: str, reason: str, username: str) -> None:
    """Erase the contact data of ticket NUMBER now; the erasure is logged on the ticket."""
    try:
        with app.unit_of_work() as uow:
            done = personal_data.erase(
                uow,
                number,
                reason=reason,
                actor=get_actor(uow.session, username),
                now=app.now(),
            )
    except EngineError as exc:
        fail(exc)
    held = _(", ").join(done.fields) or _("no contact data was held")
    click.echo(
        _(
            "%(number)s: erased (%(held)s); logged as version %(version)s",
            number=done.number,
            held=held,
            version=done.version,
        )
    )


@citizen.command()
@pass_app
def purge(app: AppContext) -> None:
    """Erase the contact data of every ticket past its campaign's retention period."""
    from cli.scheduler import run_purge

    try:
        count = run_purge(app)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _("personal data erased on %(count)s ticket(s) past their retention period", count=count)
    )
