"""``rectiflow sweep | simulate | digest``, the scheduler's jobs and its one-per-database lock."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli import main
from cli.context import AppContext
from cli.scheduler import SchedulerLock, build_scheduler
from engine import db
from tests.integration.deadline_support import assigned_ticket, local


def _seed(url: str) -> str:
    engine = db.make_engine(url)
    with db.session_factory(engine)() as s:
        number = assigned_ticket(s, local(2005, 2, 28, 10))
        s.commit()
    engine.dispose()
    return number


def _run(url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)


def test_sweep_now_prints_what_fired_and_exits(sqlite_url: str) -> None:
    number = _seed(sqlite_url)
    result = _run(sqlite_url, "sweep", "--now", "2005-03-15T09:00:00+08:00")
    assert result.exit_code == 0, result.output
    # counts per committed batch, not a line per firing (a backlog of 100,000 prints one line
    # per batch of up to 500)
    assert number not in result.output
    # the warning that fell due during the downtime is not sent beside the overdue notice
    assert "batch 1: 2 fired (1 warnings, 1 breaches or escalations), 2 notices" in result.output
    assert "2 timers fired" in result.output and "1 warnings, 1 breaches" in result.output
    again = _run(sqlite_url, "sweep", "--now", "2005-03-15T09:00:00+08:00")
    assert "0 timers fired" in again.output and "batch" not in again.output


def test_sweep_list_prints_each_firing_and_bad_batch_is_refused(sqlite_url: str) -> None:
    number = _seed(sqlite_url)
    refused = CliRunner().invoke(
        main, ["--database-url", sqlite_url, "sweep", "--now", "2005-04-01", "--batch", "0"]
    )
    assert refused.exit_code == 2 and "--batch must be at least 1" in refused.output
    result = _run(sqlite_url, "sweep", "--now", "2005-03-15T09:00:00+08:00", "--list")
    assert f"{number}\twarning" in result.output
    assert f"{number}\tlevel 1 (breach)" in result.output


def test_simulate_prints_each_day_per_unit(sqlite_url: str) -> None:
    _seed(sqlite_url)
    result = _run(
        sqlite_url,
        "simulate",
        "--campaign",
        "consultation-2005",
        "--until",
        "2005-03-31",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Mar 14, 2005: 1 warnings, 0 breaches, 0 escalations" in lines
    assert "Mar 15, 2005: 0 warnings, 1 breaches, 0 escalations" in lines
    assert "  Traffic Police Brigade: 1 overdue" in lines
    assert "  Traffic Police Brigade: 1 to level 3" in lines
    zh = _run(sqlite_url, "--lang", "zh_CN", "simulate", "--campaign", "consultation-2005",
              "--until", "2005-03-31", "--dry-run").output.splitlines()  # fmt: skip
    assert "2005年3月14日：1 次预警，0 次超期，0 次升级" in zh
    assert "  交警大队：1 件升至 3 级" in zh
    assert "4 timers fired" in lines[-1] and "dry run" in lines[-1]
    # The dry run rolled back: a real sweep still finds them due.
    assert "4 timers fired" in _run(sqlite_url, "sweep", "--now", "2005-04-01").output


def test_simulate_refuses_bad_input(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["--database-url", sqlite_url, "simulate", "--campaign", "nope", "--until", "2005-03-31"],
    )
    assert result.exit_code == 2 and "no campaign 'nope'" in result.output


def test_digest_command(sqlite_url: str) -> None:
    _seed(sqlite_url)
    result = _run(
        sqlite_url, "digest", "--campaign", "consultation-2005", "--now", "2005-03-16T08:00+08:00"
    )
    assert result.exit_code == 0 and "digest notices written" in result.output


def test_scheduler_has_one_sweep_and_a_digest_per_campaign(sqlite_url: str) -> None:
    app = AppContext(overrides={"database_url": sqlite_url})
    scheduler = build_scheduler(app, blocking=False, sweep_seconds=3)
    assert not scheduler.running  # built, never started by the factory
    scheduler.start(paused=True)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)
    assert set(jobs) == {
        "jobs",
        "sweep",
        "digest:consultation-2005",
        "snapshots:consultation-2005",
        "checkpoint",
        "purge",
    }
    sweep = jobs["sweep"]
    assert sweep.max_instances == 1 and sweep.coalesce is True and sweep.misfire_grace_time is None
    assert sweep.trigger.interval.total_seconds() == 3
    assert str(jobs["digest:consultation-2005"].trigger.timezone) == "Asia/Shanghai"
    app.engine.dispose()


def test_one_scheduler_per_database(tmp_path: Path) -> None:
    first = SchedulerLock("sqlite:///x.db", tmp_path)
    second = SchedulerLock("sqlite:///x.db", tmp_path)
    other = SchedulerLock("sqlite:///y.db", tmp_path)
    assert first.acquire()
    assert not second.acquire()
    assert other.acquire()
    first.release()
    assert second.acquire()
    second.release()
    other.release()


def test_the_app_factory_never_starts_a_scheduler(sqlite_url: str) -> None:
    import threading

    from web import create_app

    create_app({"database_url": sqlite_url, "TESTING": True})
    assert not [t for t in threading.enumerate() if t.name == "APScheduler"]
