"""``rectiflow backup | restore | copy``: copies that restore and verify."""

from __future__ import annotations

from pathlib import Path

import click

from cli.context import AppContext, fail, pass_app
from cli.main import main
from engine import backup as backups
from engine import checkpoint, db
from engine.errors import EngineError


def _problems(problems: list, what: str) -> None:  # type: ignore[type-arg]
    for problem in problems:
        click.echo(f"{problem.kind.upper()}: {problem.message}")
    click.echo(f"{len(problems)} problem(s) found in {what}", err=True)


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
        f"signed by key {result.signed_by}"
        if result.signed_by
        else "UNSIGNED (no checkpoint_key_file)"
    )
    click.echo(f"backup of {result.tickets} tickets written to {result.path}")
    click.echo(f"checkpoint {result.checkpoint} ({signed})")
    if result.problems:
        _problems(result.problems, "the copied log")
        raise SystemExit(1)
    click.echo("the copy's transition log verifies")


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
        f"signed by {result.key_status} key {result.signed_by}"
        if result.signed_by
        else "UNSIGNED: it shows the copy is whole, not who made it"
    )
    click.echo(f"restored {result.tickets} tickets from {copy_file}; checkpoint {signed}")
    if result.problems:
        _problems(result.problems, "the restored database")
        raise SystemExit(1)
    click.echo("the restored transition log verifies")


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
    click.echo(f"{total} rows in {len(result.rows)} tables copied to {url}")
    if result.problems:
        _problems(result.problems, "the target")
        raise SystemExit(1)
    click.echo("the target's transition log verifies; point database_url at it")
