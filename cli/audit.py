"""``rectiflow audit verify|export``."""

from __future__ import annotations

import sys

import click

from cli.context import AppContext, act_as, fail, pass_app
from cli.main import main
from engine import audit as audit_log
from engine.errors import EngineError


@main.group()
def audit() -> None:
    """Verify and export the tamper-evident transition log."""


@audit.command()
@click.option("--ticket", help="Verify one ticket's chain only.")
@click.option("--as", "username", help="Refuse unless this user may verify the log (the policy).")
@pass_app
def verify(app: AppContext, ticket: str | None, username: str | None) -> None:
    """Check every hash chain; exit 0 when intact, 1 when anything was edited, deleted, reordered or inserted."""
    with app.unit_of_work() as uow:
        try:
            act_as(uow, username, "log.verify")
        except EngineError as exc:
            fail(exc)
        problems = audit_log.verify(uow.session, ticket=ticket, key=uow.audit_key)
    if not problems:
        click.echo("transition log intact")
        return
    for problem in problems:
        click.echo(f"{problem.kind.upper()}: {problem.message}")
    click.echo(f"{len(problems)} problem(s) found", err=True)
    raise SystemExit(1)


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
                click.echo(f"{count} rows written to {output}", err=True)
            else:
                audit_log.export(audit_log.iter_log(session, ticket=ticket), sys.stdout, fmt)
    except EngineError as exc:
        fail(exc)
