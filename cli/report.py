"""``rectiflow report``: the campaign report as text, JSON, CSV or XLSX, and the situation
report drafted from the data (docx)."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from cli.context import AppContext, _, act_as, fail, pass_app
from cli.main import main
from engine.errors import EngineError, ValidationError
from engine.messages import read_source_line, report_text
from engine.read import reference
from engine.report import ENGLISH, FORMATS, campaign_report, write_report
from engine.service_report import render_service_text, service_report

DRAFT = "docx"


@main.command()
@click.option("--campaign", "campaign_code", required=True, help="Campaign code.")
@click.option(
    "--as-of",
    "as_of",
    metavar="DATE",
    help="Figures at the end of this day (campaign time), or at an ISO-8601 instant.",
)
@click.option(
    "--format", "fmt", type=click.Choice((*FORMATS, DRAFT)), default="text", show_default=True
)
@click.option(
    "--lang",
    metavar="zh_CN|en",
    help="Language of the docx draft (default: the output's language, see `rectiflow --lang`).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (default: stdout; required for xlsx; docx: situation-report-CODE-"
    "DAY-LANG.docx).",
)
@click.option("--as", "username", help="Refuse unless this user may see the report (the policy).")
@pass_app
def report(
    app: AppContext,
    campaign_code: str,
    as_of: str | None,
    fmt: str,
    lang: str | None,
    output: str | None,
    username: str | None,
) -> None:
    """The campaign report computed from the data: totals, categories, units, deadlines, themes.

    ``--format docx`` drafts the situation report (deployment, what the people said,
    rectification and feedback with the exemplary cases, what remains) from the same data.
    """
    if fmt == DRAFT:
        _draft(app, campaign_code, as_of, lang or app.reader.locale, output, username)
        return
    try:
        if fmt == "xlsx" and not output:
            raise ValidationError(_("an xlsx report needs a file: add -o report.xlsx"))
        # A report tolerates a few seconds of lag: the standby, when one is close enough.
        with app.ctx.reading() as (uow, choice):
            act_as(uow, username, "report.view")
            found = reference.campaign_workflow(uow.session, campaign_code)
            if found is not None and uow.registry.get(*found).report.on_time:
                # A service whose workflow names on-time figures (a hotline): the service
                # report, as text or JSON.
                if fmt not in ("text", "json"):
                    raise ValidationError(
                        _(
                            "%(code)s has the service report: use --format text or json",
                            code=campaign_code,
                        )
                    )
                service = service_report(uow, campaign_code, as_of=as_of)
                click.echo(
                    json.dumps(service, indent=2, ensure_ascii=False)
                    if fmt == "json"
                    else render_service_text(service, app.reader),
                    nl=fmt == "json",
                )
                return
            data = campaign_report(uow, campaign_code, as_of=as_of, now=app.now())
        if app.ctx.read_source.has_standby:
            click.echo(read_source_line(choice, app.reader), err=True)
    except EngineError as exc:
        fail(exc)
    # Text and XLSX are read by people: in the reader's language. JSON and CSV are read by
    # programs and keep their keys and headings.
    words = report_text(app.reader) if fmt in ("text", "xlsx") else ENGLISH
    if output:
        with open(output, "wb") as handle:
            write_report(data, fmt, handle, words)
        click.echo(_("report (%(format)s) written to %(file)s", format=fmt, file=output), err=True)
    else:
        write_report(data, fmt, sys.stdout.buffer, words)
        sys.stdout.flush()


def _draft(
    app: AppContext,
    campaign_code: str,
    as_of: str | None,
    lang: str,
    output: str | None,
    username: str | None,
) -> None:
    import io

    from engine.draft import write_draft

    buffer = io.BytesIO()
    try:
        with app.unit_of_work() as uow:
            act_as(uow, username, "report.view")
            write_draft(uow, campaign_code, buffer, as_of=as_of, now=app.now(), lang=lang)
            day = campaign_report(uow, campaign_code, as_of=as_of, now=app.now())["as_of_day"]
    except EngineError as exc:
        fail(exc)
    path = output or f"situation-report-{campaign_code}-{day}-{lang}.docx"
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    click.echo(
        _("situation report draft (%(lang)s) written to %(file)s", lang=lang, file=path), err=True
    )


@main.command("report-snapshots")
@click.option("--campaign", "campaign_code", required=True, help="Campaign code.")
@click.option(
    "--day",
    "days",
    multiple=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only this day (repeatable); else every day that is over and not kept yet.",
)
@pass_app
def report_snapshots(app: AppContext, campaign_code: str, days: tuple[datetime, ...]) -> None:
    """Keep the report of every campaign day that is over, so "as of" a past day reads at
    once (the worker does this every night); --day keeps only the days named."""
    from engine.snapshots import take_snapshots

    try:
        with app.unit_of_work() as uow:
            days_kept = take_snapshots(
                uow,
                campaign_code,
                now=app.now(),
                days=[d.date() for d in days] if days else None,
            )
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "%(count)s day(s) computed and kept for %(code)s",
            count=len(days_kept),
            code=campaign_code,
        )
    )
