"""``rectiflow tokens create|revoke|list``: API tokens for /api/v1 and Open311 clients."""

from __future__ import annotations

import click

from cli.admin import who
from cli.context import AppContext, fail, pass_app
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
        f"token {issued.id} for {issued.username}"
        + (f" ({issued.name})" if issued.name else "")
        + ": shown this once, store it now"
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
        f"token {info.id} of {info.username} revoked at {info.revoked_at:%Y-%m-%d %H:%M} UTC"
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
        click.echo("no API tokens")
        return
    for info in rows:
        used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never"
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
        click.echo(
            f"{info.id}\t{info.username}\t{info.name or '-'}\tcreated {info.created_at:%Y-%m-%d %H:%M}"
            f"\tlast used {used}\t{state}"
        )
