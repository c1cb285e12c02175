"""The APScheduler adapter: the clock that calls the engine's sweep and daily digest.

APScheduler holds two kinds of jobs in a memory store, never one per ticket:
an interval sweep (``max_instances=1``, ``coalesce=True``,
``misfire_grace_time=None``, UTC) and a daily digest per running campaign at
the configured hour in the campaign's timezone. The deadlines themselves are
rows (engine.timers). ``SchedulerLock`` keeps one scheduler per database on a
machine: an ``fcntl`` lock file under instance/ named after the database URL.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, date
from pathlib import Path
from typing import IO, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from cli.context import AppContext
from engine import mailer, notifications, timers
from engine.errors import ConfigError
from engine.i18n import Readers
from engine.read import reference
from engine.settings import PROJECT_ROOT, project_path

log = logging.getLogger(__name__)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class SchedulerLock:
    """An exclusive, non-blocking lock file per database URL; released when the process ends."""

    def __init__(self, database_url: str, directory: Path | None = None) -> None:
        digest = hashlib.sha256(database_url.encode("utf-8")).hexdigest()[:16]
        self.path = (directory or PROJECT_ROOT / "instance") / f"scheduler-{digest}.lock"
        self._handle: IO[str] | None = None
        self.owner_pid: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        self.owner_pid = os.getpid()
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    @property
    def held_here(self) -> bool:
        """True only in the process that took the lock (not in a forked child)."""
        return self._handle is not None and self.owner_pid == os.getpid()

    def release(self) -> None:
        if self._handle is not None and self.held_here:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
        self._handle = None


def run_sweep(
    app: AppContext, listing: Callable[[timers.SweepResult], None] | None = None
) -> timers.SweepTotals:
    """One sweep at the app's clock; e-mail (and ``listing``) after each committed batch."""
    smtp = mailer.SmtpSettings.from_settings(app.settings)
    readers = Readers.of(app.ctx)  # each letter in its recipient's language
    now = app.now()
    worker = app.settings.get("worker", {})
    batch = int(worker.get("sweep_batch", timers.DEFAULT_BATCH))
    budget = float(worker.get("sweep_budget_seconds", timers.DEFAULT_BUDGET_SECONDS))
    if batch < 1 or budget <= 0:
        raise ConfigError(
            f"[worker] sweep_batch must be at least 1 and sweep_budget_seconds above 0 "
            f"(got {batch} and {budget})"
        )

    def deliver(part: timers.SweepResult) -> None:
        if listing is not None:
            listing(part)
        mailer.deliver(app.sessions, part.notification_ids, smtp=smtp, now=now, readers=readers)

    result = timers.sweep(
        app.ctx,
        now=now,
        batch=batch,
        budget_seconds=budget,
        after_commit=deliver,
    )
    if result.fired:
        log.info(
            "sweep at %s fired %d timers in %d transactions (longest %.2f s)",
            now.isoformat(),
            result.fired,
            result.transactions,
            result.longest_transaction_seconds,
        )
    # Notices written outside the sweep (web and API actions) go out here too.
    mailer.deliver_pending(app.sessions, smtp=smtp, now=now, readers=readers)
    return result


def run_jobs(app: AppContext) -> list[int]:
    """Run the jobs people queued (imports from the web page); the ids run."""
    from engine import jobs

    done = jobs.run_pending(app.ctx)
    if done:
        log.info("ran jobs %s", ", ".join(map(str, done)))
    return done


def run_digest(app: AppContext, campaign: str) -> list[int]:
    """Write the daily overdue digest of ``campaign`` and e-mail it after commit."""
    now = app.now()
    with app.unit_of_work() as uow:
        ids = notifications.send_daily_digest(uow.session, campaign=campaign, now=now)
    mailer.deliver(
        app.sessions,
        ids,
        smtp=mailer.SmtpSettings.from_settings(app.settings),
        now=now,
        readers=Readers.of(app.ctx),
    )
    log.info("digest of %s: %d notices", campaign, len(ids))
    return ids


def run_checkpoint(app: AppContext) -> Path:
    """Write today's checkpoint into ``[worker] checkpoint_dir``, signed when a key is set."""
    from cli.audit import take_checkpoint
    from engine import checkpoint

    directory = project_path(
        app.settings.get("worker", {}).get("checkpoint_dir", "instance/checkpoints")
    )
    now = app.now()
    key = checkpoint.signing_key(app.settings)
    if key is None:
        log.warning(
            "no checkpoint_key_file is set: today's checkpoint is UNSIGNED and proves nothing "
            "against someone who can also rewrite it; run `rectiflow audit keygen`"
        )
    path = directory / f"checkpoint-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.txt"
    written = take_checkpoint(app, path, key)
    log.info("checkpoint of %d tickets written to %s", written.tickets, path)
    return path


def run_purge(app: AppContext) -> int:
    """Erase citizens' contact data past their campaign's retention period, in batches."""
    from engine.personal_data import purge
    from engine.tickets import SYSTEM_ACTOR

    now = app.now()
    total = 0
    while True:
        with app.unit_of_work() as uow:
            erased = purge(uow, now=now, actor=SYSTEM_ACTOR)
        total += len(erased)
        if not erased:
            break
    if total:
        log.info("personal data erased on %d tickets past their retention period", total)
    return total


def run_snapshots(app: AppContext, campaign: str) -> int:
    """Keep the campaign report of every day that is over (``engine.snapshots``)."""
    from engine.snapshots import take_snapshots

    with app.unit_of_work() as uow:
        days = take_snapshots(uow, campaign, now=app.now())
    log.info("report snapshots of %s: %d days computed", campaign, len(days))
    return len(days)


def running_campaigns(app: AppContext, today: date | None = None) -> list[Any]:
    """Campaigns whose end is not more than 30 days past (code, timezone)."""
    with app.sessions() as session:
        return list(reference.campaign_clocks(session))


def build_scheduler(
    app: AppContext, *, blocking: bool, sweep_seconds: float | None = None
) -> BaseScheduler:
    """A scheduler with the sweep and the daily digests; not started."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # one line per job run every few seconds is noise; our own sweep logs what fired
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    worker = app.settings.get("worker", {})
    seconds = float(sweep_seconds or worker.get("sweep_seconds", 5))
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults=JOB_DEFAULTS,
        timezone=UTC,
    )
    scheduler.add_job(
        run_jobs,
        IntervalTrigger(seconds=seconds, timezone=UTC),
        args=[app],
        id="jobs",
        name="run queued jobs (imports started from the web)",
        replace_existing=True,
    )
    scheduler.add_job(
        run_sweep,
        IntervalTrigger(seconds=seconds, timezone=UTC),
        args=[app],
        id="sweep",
        name="sweep due timers",
        replace_existing=True,
    )
    scheduler.add_job(
        run_checkpoint,
        CronTrigger(hour=int(worker.get("checkpoint_hour", 1)), minute=0, timezone=UTC),
        args=[app],
        id="checkpoint",
        name="daily signed checkpoint",
        replace_existing=True,
    )
    scheduler.add_job(
        run_purge,
        CronTrigger(hour=int(worker.get("purge_hour", 2)), minute=0, timezone=UTC),
        args=[app],
        id="purge",
        name="daily personal data purge",
        replace_existing=True,
    )
    hour = int(worker.get("digest_hour", 8))
    for camp in running_campaigns(app):
        scheduler.add_job(
            run_digest,
            CronTrigger(hour=hour, minute=0, timezone=camp.timezone),
            args=[app, camp.code],
            id=f"digest:{camp.code}",
            name=f"daily digest {camp.code}",
            replace_existing=True,
        )
        scheduler.add_job(
            run_snapshots,
            CronTrigger(hour=0, minute=30, timezone=camp.timezone),
            args=[app, camp.code],
            id=f"snapshots:{camp.code}",
            name=f"daily report snapshots {camp.code}",
            replace_existing=True,
        )
    return scheduler
