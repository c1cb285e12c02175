"""``rectiflow worker | sweep | simulate | digest | serve``: the deadlines at work."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from cli.context import AppContext, _, fail, pass_app, reader
from cli.main import main
from cli.scheduler import (
    SchedulerLock,
    build_scheduler,
    run_digest,
    run_sweep,
)
from engine import db, timers
from engine.clock import FixedClock, parse_instant
from engine.errors import EngineError, ValidationError
from engine.messages import translate
from engine.read import reference
from engine.settings import database_url, require_audit_key

log = logging.getLogger(__name__)


def _set_now(app: AppContext, now_text: str | None) -> None:
    try:
        app.ctx  # noqa: B018 - builds the context: a bad policy, workflow or calendar stops here
    except EngineError as exc:
        fail(exc)
    if now_text:
        try:
            app.clock = FixedClock(parse_instant(now_text))
        except EngineError as exc:
            fail(exc)


def _check_audit_key(app: AppContext) -> None:
    """Warn loudly without an audit key; refuse to start when ``production`` is set."""
    try:
        warning = require_audit_key(app.settings)
    except EngineError as exc:
        fail(exc)
    if warning:
        _warn(warning)


def _check_server_settings(app: AppContext) -> None:
    """Warn about database server settings that would slow every write (``engine.db``)."""
    for warning in db.server_setting_warnings(app.engine):
        _warn(warning)


def _warn(warning: str) -> None:
    """Say a start-up warning in the reader's language (the engine's sentence, translated);
    when stderr is not a terminal (a service's log) also log it in English, the operators'
    log language — on a terminal the person would read it twice."""
    if not sys.stderr.isatty():
        log.warning(warning)
    click.echo(_("WARNING: %(warning)s", warning=translate(warning, reader())), err=True)


def _is_sqlite(app: AppContext) -> bool:
    return app.engine.dialect.name == "sqlite"


@main.command()
@click.option("--now", "now_text", metavar="ISO-8601", help="Sweep as if it were this time.")
@click.option("--batch", type=int, help="Timers per transaction (default: [worker] sweep_batch).")
@click.option(
    "--list", "listing", is_flag=True, help="Also print each firing as its batch commits."
)
@pass_app
def sweep(app: AppContext, now_text: str | None, batch: int | None, listing: bool) -> None:
    """Fire every timer that is due now, print counts per committed batch, and exit."""
    _set_now(app, now_text)
    if batch is not None:
        if batch < 1:
            fail(
                ValidationError(_("--batch must be at least 1"), fields={"batch": _("at least 1")})
            )
        app.settings.setdefault("worker", {})["sweep_batch"] = batch
    done = 0

    def report(part: timers.SweepResult) -> None:
        nonlocal done
        done += 1
        if listing:
            r = app.reader
            for f in part.firings:
                what = (
                    _("warning")
                    if f.kind == "warning"
                    else _("level %(level)s (%(kind)s)", level=f.level, kind=f.kind)
                )
                click.echo(
                    f"{f.ticket}\t{what}\t"
                    + _("due %(due)s", due=f.due_at.isoformat())
                    + "\t"
                    + _("unit %(unit)s", unit=r.unit(f.unit_code) if f.unit_code else "-")
                    + "\t"
                    + _("%(count)s notified", count=len(f.notified))
                )
        kinds = Counter("warning" if f.kind == "warning" else "escalation" for f in part.firings)
        click.echo(
            _(
                "batch %(batch)s: %(fired)s fired (%(warnings)s warnings, %(escalations)s "
                "breaches or escalations), %(notices)s notices, %(skipped)s already fired, "
                "%(deferred)s deferred",
                batch=done,
                fired=len(part.firings),
                warnings=kinds["warning"],
                escalations=kinds["escalation"],
                notices=len(part.notification_ids),
                skipped=part.skipped,
                deferred=part.deferred,
            )
        )

    try:
        result = run_sweep(app, listing=report)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "%(fired)s timers fired at %(now)s (%(warnings)s warnings, %(breaches)s breaches, "
            "%(escalations)s escalations; %(transactions)s transactions, longest %(longest)s s)",
            fired=result.fired,
            now=app.now().isoformat(),
            warnings=result.warnings,
            breaches=result.breaches,
            escalations=result.escalations,
            transactions=result.transactions,
            longest=f"{result.longest_transaction_seconds:.2f}",
        )
    )


@main.command()
@click.option(
    "--sweep-seconds", type=float, help="Sweep interval (default: [worker] sweep_seconds)."
)
@pass_app
def worker(app: AppContext, sweep_seconds: float | None) -> None:
    """Run the scheduler: the sweep every few seconds and the daily overdue digest.

    On SQLite only one worker may run per database (a lock file under
    instance/); on PostgreSQL start as many as you like.
    """
    _check_audit_key(app)
    _check_server_settings(app)
    lock = None
    if _is_sqlite(app):
        lock = SchedulerLock(database_url(app.settings))
        if not lock.acquire():
            click.echo(
                _(
                    "error: another scheduler (pid %(pid)s) already sweeps this database; "
                    "SQLite takes one",
                    pid=lock.holder(),
                ),
                err=True,
            )
            raise SystemExit(2)
    scheduler = build_scheduler(app, blocking=True, sweep_seconds=sweep_seconds)
    click.echo(
        _(
            "worker: sweeping every %(interval)s (Ctrl-C stops)",
            interval=scheduler.get_job("sweep").trigger.interval,
        )
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if lock is not None:
            lock.release()


@main.command()
@click.option("--campaign", "campaign_code", required=True)
@click.option("--now", "now_text", metavar="ISO-8601")
@pass_app
def digest(app: AppContext, campaign_code: str, now_text: str | None) -> None:
    """Write today's overdue digest of a campaign into the inboxes (and e-mail it if on)."""
    _set_now(app, now_text)
    try:
        ids = run_digest(app, campaign_code)
    except EngineError as exc:
        fail(exc)
    click.echo(_("%(count)s digest notices written", count=len(ids)))


def _local_instant(text: str, tz: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A bare date is a local day (its end when ``end_of_day``); anything else an ISO instant."""
    if len(text.strip()) == 10:
        try:
            day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
        except ValueError:
            return parse_instant(text)
        if end_of_day:
            day += timedelta(days=1)
        return datetime.combine(day, time(0), tzinfo=tz)
    return parse_instant(text)


@main.command()
@click.option("--campaign", "campaign_code", required=True)
@click.option("--until", "until_text", required=True, help="Last day (local) or an ISO instant.")
@click.option("--from", "from_text", help="Start (default: the clock, or the campaign's start).")
@click.option("--dry-run", is_flag=True, help="Roll everything back at the end.")
@click.option(
    "--quiet-days/--no-quiet-days", default=False, help="Print days when nothing fell due."
)
@pass_app
def simulate(
    app: AppContext,
    campaign_code: str,
    until_text: str,
    from_text: str | None,
    dry_run: bool,
    quiet_days: bool,
) -> None:
    """Move a simulated clock to --until, sweeping as it goes; print each day's firings per unit."""
    from engine.simulate import simulate as run

    _set_now(app, None)
    uow = app.ctx.bind(app.sessions())
    session = uow.session
    try:
        camp = reference.campaign_clock(session, campaign_code)
        tz = ZoneInfo(camp.timezone)
        until = _local_instant(until_text, tz, end_of_day=True)
        if from_text:
            start = _local_instant(from_text, tz, end_of_day=False)
        elif app.now_text:
            start = app.now()
        else:
            start = datetime.combine(camp.starts_on, time(0), tzinfo=tz)
        days = run(uow, campaign=campaign_code, start=start, until=until)
        if dry_run:
            session.rollback()
        else:
            uow.commit()
    except EngineError as exc:
        session.rollback()
        fail(exc)
    finally:
        session.close()
    for day in days:
        if day.quiet and not quiet_days:
            continue
        for line in _day_lines(day, app.reader):
            click.echo(line)
    total = sum(d.fired for d in days)
    click.echo(
        _(
            "%(count)s timers fired up to %(until)s",
            count=total,
            until=app.reader.when(until, camp.timezone),
        )
        + (_(" (dry run: rolled back)") if dry_run else "")
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the embedded scheduler.")
@pass_app
def serve(app: AppContext, host: str, port: int, threads: int, no_worker: bool) -> None:
    """Run the web app with waitress, plus one embedded scheduler (unless --no-worker).

    The scheduler starts only in the process that holds the database's lock
    file; a second ``serve`` on the same database serves pages without one.
    """
    import waitress

    from web import create_app

    problem = _port_problem(host, port)
    if problem is not None:
        click.echo(
            _(
                "error: cannot listen on %(host)s:%(port)s (%(problem)s); is another rectiflow "
                "running? Stop it, or choose another port with --port",
                host=host,
                port=port,
                problem=problem,
            ),
            err=True,
        )
        raise SystemExit(2)
    _check_audit_key(app)
    _check_server_settings(app)
    config: dict[str, object] = {"database_url": database_url(app.settings)}
    if app.now_text:
        # --now holds for the pages as for every command: deadline drills end to end.
        config["CLOCK"] = app.clock
    web_app = create_app(config)
    server = waitress.create_server(web_app, host=host, port=port, threads=threads)
    lock = SchedulerLock(database_url(app.settings))
    scheduler = None
    if not no_worker:
        if lock.acquire():
            scheduler = build_scheduler(app, blocking=False)
            scheduler.start()
            click.echo(_("embedded scheduler started"))
        else:
            click.echo(
                _(
                    "scheduler already running (pid %(pid)s); serving without one",
                    pid=lock.holder(),
                )
            )
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{shown}:{port}/"
    click.echo(
        _(
            "rectiflow is listening on %(url)s with the clock at %(now)s — press Ctrl+C to stop",
            url=url,
            now=app.now_text,
        )
        if app.now_text
        else _("rectiflow is listening on %(url)s — press Ctrl+C to stop", url=url)
    )
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo(_("stopped"))
    finally:
        server.close()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        lock.release()


def _port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (taken, not allowed), or None when it can."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return str(exc)
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _day_lines(day: Any, r: Any) -> list[str]:
    """One simulated day (engine.simulate.DayReport) in the reader's language: the day's
    counts, then each unit's by its name."""
    when = r.day(day.day)
    if day.quiet:
        return [_("%(day)s: nothing fell due", day=when)]
    out = [
        _(
            "%(day)s: %(warnings)s warnings, %(breaches)s breaches, %(escalations)s escalations",
            day=when,
            warnings=sum(day.warnings.values()),
            breaches=sum(day.breaches.values()),
            escalations=sum(day.escalations.values()),
        )
    ]
    units = sorted(set(day.warnings) | set(day.breaches) | {u for u, _lvl in day.escalations})
    for unit in units:
        parts = []
        if day.warnings[unit]:
            parts.append(_("%(count)s warned", count=day.warnings[unit]))
        if day.breaches[unit]:
            parts.append(_("%(count)s overdue", count=day.breaches[unit]))
        for (u, level), n in sorted(day.escalations.items()):
            if u == unit:
                parts.append(_("%(count)s to level %(level)s", count=n, level=level))
        name = r.unit(unit) if unit != "none" else _("(no unit)")
        out.append("  " + _("%(unit)s: %(what)s", unit=name, what=_(", ").join(parts)))
    return out
