"""The root ``rectiflow`` group and the setup commands (init, demo)."""

from __future__ import annotations

import click

from cli.context import AppContext, configure_logging, fail, pass_app
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
@click.pass_context
def main(ctx: click.Context, now_text: str | None, database_url: str | None, verbose: bool) -> None:
    """rectiflow: consultation tickets driven by a state machine, with self-enforcing deadlines."""
    configure_logging(verbose)
    overrides = {"database_url": database_url} if database_url else {}
    app = AppContext(overrides=overrides, now_text=now_text)
    try:
        app.clock  # noqa: B018  (validate --now early)
    except EngineError as exc:
        fail(exc)
    ctx.obj = app
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
        click.echo(f"database {url} is up to date (revision {after})")
    else:
        click.echo(f"database {url} upgraded from {before or 'empty'} to revision {after}")


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
    click.echo(
        f"organisation: {counts['units']} units, {counts['users']} users (password 'demo'), "
        f"{counts['routing']} routing rules"
    )
    click.echo(
        f"campaign {campaign_code}: {summary.made} opinions replayed, "
        f"{summary.transitions} transitions, {summary.timers_fired} timers fired"
        if summary.made
        else f"campaign {campaign_code}: already loaded"
    )
    if live is not None:
        if live.made:
            states = ", ".join(f"{n} {state}" for state, n in sorted(live.states.items()))
            levels = ", ".join(f"{n} at level {lv}" for lv, n in sorted(live.levels.items()))
            click.echo(
                f"campaign {live.code} (running today, {app.now():%Y-%m-%d}): {live.made} "
                f"tickets ({states}); overdue: {levels or 'none'}; "
                f"{live.extensions_pending} extension request(s) and "
                f"{live.reopen_requests} reopen request(s) waiting"
            )
        else:
            click.echo(f"campaign {live.code}: already loaded")
    click.echo(
        f"programme {HOTLINE}: {hotline.made} calls replayed, {hotline.transitions} transitions"
        if hotline.made
        else f"programme {HOTLINE}: already loaded"
    )
    if not no_report:
        click.echo("")
        click.echo(render_text(report), nl=False)
