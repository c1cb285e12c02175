"""``rectiflow backup | restore | copy``: copies that restore and verify."""

from __future__ import annotations

from pathlib import Path

import click

from cli.audit import show_problems
from cli.context import AppContext, _, fail, pass_app
from cli.main import main
from engine import backup as backups
from engine import checkpoint, db
from engine.errors import EngineError


def _problems(problems: list, what: str) -> None:  # type: ignore[type-arg]
    show_problems(problems)
    click.echo(
        _("%(count)s problem(s) found in %(what)s", count=len(problems), what=what), err=True
    )


@main.command("backup")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The copy to write (a checkpoint goes next to it as FILE.checkpoint).",
)
@pass_app
def backup_command(app: AppContext, output: Path) -> None:
    """Copy the SQLite database while serve and the worker keep writing; verify the copy and
    write its checkpoint next to it. For PostgreSQL it says how to use pg_dump instead."""
    try:
        key = checkpoint.signing_key(app.settings)
        result = backups.backup(
            app.engine, output, now=app.now(), signing_key=key, audit_key=app.ctx.audit_key
        )
    except EngineError as exc:
        fail(exc)
    signed = (
        _("signed by key %(key)s", key=result.signed_by)
        if result.signed_by
        else _("UNSIGNED (no checkpoint_key_file)")
    )
    click.echo(
        _(
            "backup of %(count)s tickets written to %(file)s",
            count=result.tickets,
            file=result.path,
        )
    )
    click.echo(_("checkpoint %(file)s (%(signed)s)", file=result.checkpoint, signed=signed))
    if result.problems:
        _problems(result.problems, _("the copied log"))
        raise SystemExit(1)
    click.echo(_("the copy's transition log verifies"))


@main.command("restore")
@click.argument("copy_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the existing database.")
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trust this public key file for the copy's checkpoint (repeatable).",
)
@pass_app
def restore_command(
    app: AppContext, copy_file: Path, force: bool, public_keys: tuple[Path, ...]
) -> None:
    """Prove a backup (its log verifies, it matches its checkpoint) and put it back as the
    database. Stop serve and the worker first."""
    try:
        trusted = checkpoint.trusted_keys(app.settings, public_keys)
        result = backups.restore(
            copy_file, app.engine, force=force, trusted=trusted, audit_key=app.ctx.audit_key
        )
    except EngineError as exc:
        fail(exc)
    signed = (
        _("signed by %(status)s key %(key)s", status=result.key_status, key=result.signed_by)
        if result.signed_by
        else _("UNSIGNED: it shows the copy is whole, not who made it")
    )
    click.echo(
        _(
            "restored %(count)s tickets from %(file)s; checkpoint %(signed)s",
            count=result.tickets,
            file=copy_file,
            signed=signed,
        )
    )
    if result.problems:
        _problems(result.problems, _("the restored database"))
        raise SystemExit(1)
    click.echo(_("the restored transition log verifies"))


@main.command("copy")
@click.option("--to", "target_url", required=True, help="The new, empty database (PostgreSQL URL).")
@click.option("--batch", default=backups.BATCH, show_default=True, type=click.IntRange(1, 100_000))
@pass_app
def copy_command(app: AppContext, target_url: str, batch: int) -> None:
    """Move this installation to another database (SQLite to PostgreSQL): migrate the target,
    copy every table, set its sequences, verify its log. The target must be empty."""
    target = db.make_engine(target_url)
    try:
        result = backups.copy_database(app.engine, target, audit_key=app.ctx.audit_key, batch=batch)
    except EngineError as exc:
        fail(exc)
    finally:
        target.dispose()
    total = sum(result.rows.values())
    url = target.url.render_as_string(hide_password=True)
    click.echo(
        _(
            "%(rows)s rows in %(tables)s tables copied to %(url)s",
            rows=total,
            tables=len(result.rows),
            url=url,
        )
    )
    if result.problems:
        _problems(result.problems, _("the target"))
        raise SystemExit(1)
    click.echo(_("the target's transition log verifies; point database_url at it"))
