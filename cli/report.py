"""``rectiflow report``: the campaign report as text, JSON, CSV or XLSX."""

from __future__ import annotations

import sys

import click

from cli.context import AppContext, act_as, fail, pass_app
from cli.main import main
from engine.errors import EngineError, ValidationError
from engine.report import FORMATS, campaign_report, write_report


@main.command()
@click.option("--campaign", "campaign_code", required=True, help="Campaign code.")
@click.option(
    "--as-of",
    "as_of",
    metavar="DATE",
    help="Figures at the end of this day (campaign time), or at an ISO-8601 instant.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (default: stdout; required for xlsx).",
)
@click.option("--as", "username", help="Refuse unless this user may see the report (the policy).")
@pass_app
def report(
    app: AppContext,
    campaign_code: str,
    as_of: str | None,
    fmt: str,
    output: str | None,
    username: str | None,
) -> None:
    """The campaign report computed from the data: totals, categories, units, deadlines, themes."""
    try:
        if fmt == "xlsx" and not output:
            raise ValidationError("an xlsx report needs a file: add -o report.xlsx")
        # A report tolerates a few seconds of lag: the standby, when one is close enough.
        with app.ctx.reading() as (uow, choice):
            act_as(uow, username, "report.view")
            data = campaign_report(uow, campaign_code, as_of=as_of, now=app.now())
        if app.ctx.read_source.has_standby:
            click.echo(f"read from the {choice.header}", err=True)
    except EngineError as exc:
        fail(exc)
    if output:
        with open(output, "wb") as handle:
            write_report(data, fmt, handle)
        click.echo(f"report ({fmt}) written to {output}", err=True)
    else:
        write_report(data, fmt, sys.stdout.buffer)
        sys.stdout.flush()
