"""``rectiflow tokens create|revoke|list``: API tokens for /api/v1 and Open311 clients."""

from __future__ import annotations

import click

from cli.admin import who
from cli.context import AppContext, _, fail, pass_app, when
from cli.main import main
from engine import admin as admin_services
from engine import tokens as api_tokens
from engine.errors import EngineError


@main.group()
def tokens() -> None:
    """Make, list and revoke API tokens (stored hashed; shown once)."""


@tokens.command()
@click.argument("username")
@click.option("--name", default="", help="What the token is for (e.g. 'hotline import').")
@pass_app
def create(app: AppContext, username: str, name: str) -> None:
    """Make a token acting as USERNAME; the token is the last line of the output."""
    try:
        with app.unit_of_work() as uow:
            issued = admin_services.issue_token(uow, who(uow, None), username, name=name)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "token %(id)s for %(user)s%(name)s: shown this once, store it now",
            id=issued.id,
            user=issued.username,
            name=f" ({issued.name})" if issued.name else "",
        )
    )
    click.echo(issued.token)


@tokens.command()
@click.argument("token_id", type=int)
@pass_app
def revoke(app: AppContext, token_id: int) -> None:
    """Revoke the token with id TOKEN_ID (see `rectiflow tokens list`)."""
    try:
        with app.unit_of_work() as uow:
            info = admin_services.revoke_token(uow, who(uow, None), token_id)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "token %(id)s of %(user)s revoked at %(when)s",
            id=info.id,
            user=info.username,
            when=when(info.revoked_at, "UTC"),
        )
    )


@tokens.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@pass_app
def list_(app: AppContext, username: str | None) -> None:
    """List tokens: id, user, name, created, last used, revoked (never the values)."""
    with app.unit_of_work() as uow:
        session = uow.session
        rows = api_tokens.list_tokens(session, username)
    if not rows:
        click.echo(_("no API tokens"))
        return
    for info in rows:
        used = when(info.last_used_at, "UTC") if info.last_used_at else _("never")
        state = (
            _("revoked %(when)s", when=when(info.revoked_at, "UTC"))
            if info.revoked_at
            else _("active")
        )
        click.echo(
            f"{info.id}\t{info.username}\t{info.name or '-'}\t"
            + _("created %(when)s", when=when(info.created_at, "UTC"))
            + "\t"
            + _("last used %(when)s", when=used)
            + f"\t{state}"
        )
