"""``rectiflow users password|deactivate|activate``: staff accounts; each change that should
end someone's web sessions ends them in the same transaction, together with its row in the
admin log (as ``--as USER`` or the installation's operator, like every admin command)."""

from __future__ import annotations

import click

from cli.context import AppContext, _, fail, pass_app
from cli.main import main
from engine import adminlog
from engine.context import UnitOfWork
from engine.errors import EngineError
from engine.web_sessions import change_password, list_accounts, set_active


@main.group()
def users() -> None:
    """Change a staff password, deactivate or reactivate an account."""


AS_OPTION = click.option(
    "--as",
    "acting",
    help="Act as this user (recorded in the admin log); default: the installation's operator.",
)


def _log(uow: UnitOfWork, acting: str | None, action: str, username: str) -> None:
    """Record the change in the admin log, in the transaction that makes it."""
    from cli.admin import who  # cli.admin builds on this group; imported when used

    adminlog.record(uow, who(uow, acting), action, username)


@users.command()
@click.argument("username")
@click.password_option("--password", prompt="New password", help="Asked for when not given.")
@AS_OPTION
@pass_app
def password(app: AppContext, username: str, password: str, acting: str | None) -> None:
    """Set USERNAME's password; their signed-in sessions end."""
    try:
        with app.unit_of_work() as uow:
            ended = change_password(uow, username, password, now=app.now())
            _log(uow, acting, "user.set_password", username)
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
@AS_OPTION
@pass_app
def deactivate(app: AppContext, username: str, acting: str | None) -> None:
    """Refuse USERNAME's sign-ins and API tokens; their signed-in sessions end."""
    try:
        with app.unit_of_work() as uow:
            ended = set_active(uow, username, False, now=app.now())
            _log(uow, acting, "user.deactivate", username)
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
@AS_OPTION
@pass_app
def activate(app: AppContext, username: str, acting: str | None) -> None:
    """Let USERNAME sign in again (sessions ended before stay ended)."""
    try:
        with app.unit_of_work() as uow:
            set_active(uow, username, True, now=app.now())
            _log(uow, acting, "user.activate", username)
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
