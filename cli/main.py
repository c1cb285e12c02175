"""The root ``rectiflow`` group and the setup commands (init, demo)."""

from __future__ import annotations

import os

import click

from cli.context import AppContext, _, check_lang, configure_logging, fail, pass_app
from engine import db
from engine.errors import EngineError
from engine.settings import project_path


@click.group()
@click.option(
    "--now",
    "now_text",
    metavar="ISO-8601",
    help="Set the clock (replays, drills); the log records it.",
)
@click.option("--database-url", envvar="RECTIFLOW_DATABASE_URL", help="SQLite or PostgreSQL URL.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option(
    "--lang",
    "lang",
    metavar="zh_CN|en",
    help="Language of the output (else RECTIFLOW_LANG, else the --as user's preference, "
    "else the organisation's default_locale).",
)
@click.pass_context
def main(
    ctx: click.Context,
    now_text: str | None,
    database_url: str | None,
    verbose: bool,
    lang: str | None,
) -> None:
    """rectiflow: consultation tickets driven by a state machine, with self-enforcing deadlines."""
    configure_logging(verbose)
    overrides = {"database_url": database_url} if database_url else {}
    app = AppContext(overrides=overrides, now_text=now_text)
    ctx.obj = app
    app.lang = check_lang(app, lang, "--lang") or check_lang(
        app, os.environ.get("RECTIFLOW_LANG"), "RECTIFLOW_LANG"
    )
    try:
        app.clock  # noqa: B018  (validate --now early)
    except EngineError as exc:
        fail(exc)
    ctx.call_on_close(app.close)


@main.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the database, or upgrade it to the latest schema."""
    before = db.current_revision(app.engine)
    db.upgrade(app.engine)
    after = db.current_revision(app.engine)
    url = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(_("database %(url)s is up to date (revision %(after)s)", url=url, after=after))
    else:
        click.echo(
            _(
                "database %(url)s upgraded from %(before)s to revision %(after)s",
                url=url,
                before=before or _("empty"),
                after=after,
            )
        )


@main.command()
@click.option("--campaign", "campaign_code", default="consultation-2005", show_default=True)
@click.option("--no-report", is_flag=True, help="Do not print the campaign report afterwards.")
@click.option(
    "--lang",
    type=click.Choice(("zh_CN", "en")),
    default="zh_CN",
    show_default=True,
    help="Language of the replayed opinions and feedback (the bureau works in Chinese).",
)
@click.option("--no-live", is_flag=True, help="Do not load the live campaign running today.")
@pass_app
def demo(app: AppContext, campaign_code: str, no_report: bool, lang: str, no_live: bool) -> None:
    """Load the sample organisation, replay the report's campaign (268 opinions) on a
    simulated clock, firing the real triggers, and load a live campaign running at today's
    date (or --now) with tickets in every state; then print the 2005 campaign report.

    The replay is planned to the report's figures; the report is computed from what it wrote."""
    from demo.consultation_2005 import replay_campaign
    from demo.hotline import PROGRAMME as HOTLINE
    from demo.hotline import replay_hotline
    from demo.live import load_live_campaign
    from engine.messages import report_text
    from engine.organisation import load_campaign_file, load_organisation_file
    from engine.report import campaign_report, render_text

    db.upgrade(app.engine)
    campaign_file = project_path(f"config/campaigns/{campaign_code}.toml")
    try:
        with app.unit_of_work() as uow:
            counts = load_organisation_file(uow, project_path(app.settings["organisation"]))
            campaign = load_campaign_file(uow, campaign_file)
            summary = replay_campaign(uow, campaign_code, lang=lang)
            ends_on = campaign.ends_on
        # The second built-in process beside it: the 12345 hotline, a continuous service.
        with app.unit_of_work() as uow:
            load_campaign_file(uow, project_path(f"config/campaigns/{HOTLINE}.toml"))
            hotline = replay_hotline(uow, HOTLINE)
        with app.unit_of_work() as uow:
            report = campaign_report(uow, campaign_code, as_of=ends_on)
        live = None if no_live else load_live_campaign(app.ctx)
    except EngineError as exc:
        fail(exc)
    r = app.reader
    click.echo(
        _(
            "organisation: %(units)s units, %(users)s users (password 'demo'), "
            "%(routing)s routing rules",
            units=counts["units"],
            users=counts["users"],
            routing=counts["routing"],
        )
    )
    click.echo(
        _(
            "campaign %(code)s: %(made)s opinions replayed, %(transitions)s transitions, "
            "%(timers)s timers fired",
            code=campaign_code,
            made=summary.made,
            transitions=summary.transitions,
            timers=summary.timers_fired,
        )
        if summary.made
        else _("campaign %(code)s: already loaded", code=campaign_code)
    )
    if live is not None:
        if live.made:
            states = _(", ").join(
                f"{n} {r.state(state)}" for state, n in sorted(live.states.items())
            )
            levels = _(", ").join(
                _("%(count)s at level %(level)s", count=n, level=lv)
                for lv, n in sorted(live.levels.items())
            )
            click.echo(
                _(
                    "campaign %(code)s (running today, %(today)s): %(made)s tickets "
                    "(%(states)s); overdue: %(levels)s; %(extensions)s extension request(s) "
                    "and %(reopens)s reopen request(s) waiting",
                    code=live.code,
                    today=r.day(app.now()),
                    made=live.made,
                    states=states,
                    levels=levels or _("none"),
                    extensions=live.extensions_pending,
                    reopens=live.reopen_requests,
                )
            )
        else:
            click.echo(_("campaign %(code)s: already loaded", code=live.code))
    click.echo(
        _(
            "programme %(code)s: %(made)s calls replayed, %(transitions)s transitions",
            code=HOTLINE,
            made=hotline.made,
            transitions=hotline.transitions,
        )
        if hotline.made
        else _("programme %(code)s: already loaded", code=HOTLINE)
    )
    if not no_report:
        click.echo("")
        # The report as `rectiflow report` prints it: in the reader's language, by name.
        click.echo(render_text(report, report_text(r)), nl=False)
