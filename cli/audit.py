"""``rectiflow audit verify|checkpoint|keygen|export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.context import AppContext, _, act_as, fail, pass_app, reader
from cli.main import main
from engine import audit as audit_log
from engine import checkpoint as checkpoints
from engine import db
from engine.errors import EngineError


@main.group()
def audit() -> None:
    """Verify, checkpoint and export the tamper-evident transition log."""


@audit.command()
@click.option("--ticket", help="Verify one ticket's chain only.")
@click.option("--as", "username", help="Refuse unless this user may verify the log (the policy).")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also prove nothing recorded before this checkpoint was removed or rewound.",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trust this public key file as well (repeatable).",
)
@click.option("--allow-unsigned", is_flag=True, help="Compare against an unsigned checkpoint.")
@pass_app
def verify(
    app: AppContext,
    ticket: str | None,
    username: str | None,
    checkpoint_file: Path | None,
    public_keys: tuple[Path, ...],
    allow_unsigned: bool,
) -> None:
    """Check every hash chain and that each ticket row is what its log says; with
    --checkpoint, also compare with a signed checkpoint. Exit 0 when intact, 1 when
    anything was found, 2 when the checkpoint itself cannot be trusted."""
    problems: list[audit_log.Problem] = []
    try:
        with app.unit_of_work() as uow:
            act_as(uow, username, "log.verify")
        if checkpoint_file is not None:
            trusted = checkpoints.trusted_keys(app.settings, public_keys)
            header = checkpoints.check_file(checkpoint_file, trusted, allow_unsigned=allow_unsigned)
            signed = (
                _("signed by %(status)s key %(key)s", status=header.key_status, key=header.key_id)
                if header.key_id
                else _("UNSIGNED")
            )
            click.echo(
                _(
                    "checkpoint of %(when)s: %(count)s tickets, %(signed)s",
                    when=header.taken_at,
                    count=header.tickets,
                    signed=signed,
                ),
                err=True,
            )
            with db.read_snapshot(app.engine) as conn:
                problems.extend(checkpoints.compare(conn, checkpoint_file, header))
        with app.unit_of_work() as uow:
            problems.extend(audit_log.verify(uow.session, ticket=ticket, key=uow.audit_key))
    except EngineError as exc:
        fail(exc)
    if not problems:
        click.echo(
            _("transition log intact and consistent with the checkpoint")
            if checkpoint_file
            else _("transition log intact")
        )
        return
    show_problems(problems)
    click.echo(_("%(count)s problem(s) found", count=len(problems)), err=True)
    raise SystemExit(1)


def show_problems(problems: list[Any]) -> None:
    """One line per problem: its kind (EDITED, DELETED... a code) and what was found."""
    from engine.messages import problem_kind

    r = reader()
    for problem in problems:
        click.echo(f"{problem.kind.upper()} ({problem_kind(r, problem.kind)}): {problem.message}")


@audit.command()
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The checkpoint file to write.",
)
@click.option("--unsigned", is_flag=True, help="Write it without a signature (no key configured).")
@pass_app
def checkpoint(app: AppContext, output: Path, unsigned: bool) -> None:
    """Write every chain head and ticket counter, signed with checkpoint_key_file; keep
    the file away from the database host."""
    try:
        key = None if unsigned else checkpoints.signing_key(app.settings)
        if key is None and not unsigned:
            raise checkpoints.CheckpointError(
                _(
                    "no checkpoint_key_file is configured: run `rectiflow audit keygen` and set "
                    "it (or pass --unsigned)"
                )
            )
        written = take_checkpoint(app, output, key)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "checkpoint of %(count)s tickets written to %(file)s (%(signed)s)",
            count=written.tickets,
            file=output,
            signed=_("signed by key %(key)s", key=written.key_id)
            if written.key_id
            else _("UNSIGNED"),
        )
    )


def take_checkpoint(app: AppContext, output: Path, key: Any) -> checkpoints.Written:
    """A checkpoint of the app's database at its clock, from one read snapshot."""
    with db.read_snapshot(app.engine) as conn:
        return checkpoints.write_file(
            conn,
            output,
            now=app.now(),
            signing_key=key,
            database=app.engine.url.render_as_string(hide_password=True),
        )


@audit.command()
@click.option(
    "--private",
    "private_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (mode 0600).",
)
@click.option(
    "--public",
    "public_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the public key (default: the private path + .pub).",
)
def keygen(private_path: Path, public_path: Path | None) -> None:
    """Make a new Ed25519 key pair for signing checkpoints."""
    public_path = public_path or private_path.with_name(private_path.name + ".pub")
    try:
        kid = checkpoints.generate_key_pair(private_path, public_path)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "key %(key)s: private %(private)s, public %(public)s",
            key=kid,
            private=private_path,
            public=public_path,
        )
    )
    click.echo(_("set checkpoint_key_file to the private key; keep a copy of the public one apart"))


@audit.command()
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option("--ticket")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (default: stdout).",
)
@pass_app
def export(app: AppContext, fmt: str, ticket: str | None, output: str | None) -> None:
    """Write the log as CSV or JSON lines."""
    try:
        with app.unit_of_work() as uow:
            session = uow.session
            if output:
                with open(output, "w", encoding="utf-8", newline="") as handle:
                    count = audit_log.export(
                        audit_log.iter_log(session, ticket=ticket), handle, fmt
                    )
                click.echo(
                    _("%(count)s rows written to %(file)s", count=count, file=output), err=True
                )
            else:
                audit_log.export(audit_log.iter_log(session, ticket=ticket), sys.stdout, fmt)
    except EngineError as exc:
        fail(exc)
