"""``rectiflow users password|deactivate|activate``: staff accounts; each change that should
end someone's web sessions ends them in the same transaction."""

from __future__ import annotations

import click

from cli.context import AppContext, _, fail, pass_app
from cli.main import main
from engine.errors import EngineError
from engine.web_sessions import change_password, list_accounts, set_active


@main.group()
def users() -> None:
    """Change a staff password, deactivate or reactivate an account."""


@users.command()
@click.argument("username")
@click.password_option("--password", prompt="New password", help="Asked for when not given.")
@pass_app
def password(app: AppContext, username: str, password: str) -> None:
    """Set USERNAME's password; their signed-in sessions end."""
    try:
        with app.unit_of_work() as uow:
            ended = change_password(uow, username, password, now=app.now())
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "password of %(user)s changed; %(count)s signed-in session(s) ended",
            user=username,
            count=ended,
        )
    )


@users.command()
@click.argument("username")
@pass_app
def deactivate(app: AppContext, username: str) -> None:
    """Refuse USERNAME's sign-ins and API tokens; their signed-in sessions end."""
    try:
        with app.unit_of_work() as uow:
            ended = set_active(uow, username, False, now=app.now())
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "%(user)s deactivated; %(count)s signed-in session(s) ended",
            user=username,
            count=ended,
        )
    )


@users.command()
@click.argument("username")
@pass_app
def activate(app: AppContext, username: str) -> None:
    """Let USERNAME sign in again (sessions ended before stay ended)."""
    try:
        with app.unit_of_work() as uow:
            set_active(uow, username, True, now=app.now())
    except EngineError as exc:
        fail(exc)
    click.echo(_("%(user)s activated", user=username))


@users.command("list")
@pass_app
def list_(app: AppContext) -> None:
    """List staff accounts: username, role, unit, active, open web sessions."""
    with app.unit_of_work() as uow:
        rows = list_accounts(uow)
    r = app.reader
    for row in rows:
        state = _("active") if row.active else _("inactive")
        click.echo(
            f"{row.username}\t{r.role(row.role)}\t{r.unit(row.unit) if row.unit else '-'}\t"
            f"{state}\t" + _("%(count)s session(s)", count=row.open_sessions)
        )
