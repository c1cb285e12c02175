"""Daily snapshots of the campaign report, so "as of" a past day answers at once.

The report as of a day reads the log and the timers (``engine.report``): exact, but a
pass over a million tickets' history. A day that is over does not change afterwards —
the log is append-only and every row is stamped when it is written — so the report as of
its end is computed once and kept (``report_snapshots``), by the worker's daily job or
``rectiflow report-snapshots``. ``campaign_report`` uses a kept day when it is still
fresh: no log row was written since it was computed with a time before the day's end
(only a back-dated replay does that; then the day is computed again from the log).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine.context import UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.models import Campaign, ReportSnapshot, TransitionLog


def _end_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def kept_report(session: Session, campaign_id: int, day: date, cutoff: datetime) -> Any:
    """The kept report of ``day`` if it is still fresh, else None."""
    row = session.execute(
        select(
            ReportSnapshot.report, ReportSnapshot.log_high_water, ReportSnapshot.computed_at
        ).where(ReportSnapshot.campaign_id == campaign_id, ReportSnapshot.day == day)
    ).first()
    if row is None:
        return None
    # Ordered by id so the primary key drives it: only the rows written since are read.
    backdated = session.scalar(
        select(TransitionLog.id)
        .where(TransitionLog.id > row.log_high_water, TransitionLog.at < cutoff)
        .order_by(TransitionLog.id)
        .limit(1)
    )
    if backdated is not None:
        return None
    report = json.loads(row.report)
    report["snapshot_computed_at"] = row.computed_at.isoformat()
    return report


def take_snapshots(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    now: datetime | None = None,
    days: Iterable[date] | None = None,
) -> list[date]:
    """Compute and keep the report of every day of the campaign that is over at ``now`` and
    has no fresh snapshot (first day to last, or to yesterday); with ``days``, of those days
    only (each must be a day of the campaign that is over). Returns the days written; the
    caller commits."""
    from engine.report import campaign_report

    now = uow.now(now)
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).first()
    if campaign is None:
        raise NotFound(f"no campaign {campaign_code!r}")
    zone = ZoneInfo(campaign.timezone)
    over = []
    day = campaign.starts_on
    while day <= campaign.ends_on and _end_of(day, zone) <= now:
        over.append(day)
        day += timedelta(days=1)
    if days is not None:
        asked = sorted(set(days))
        outside = [d for d in asked if d not in set(over)]
        if outside:
            last = over[-1].isoformat() if over else "none yet"
            raise ValidationError(
                f"no snapshot can be taken of {', '.join(d.isoformat() for d in outside)}: "
                f"a snapshot is of a day of campaign {campaign.code!r} that is over "
                f"({campaign.starts_on.isoformat()} to {last})",
                fields={"days": f"give days from {campaign.starts_on.isoformat()} to {last}"},
            )
        over = asked
    written = []
    for day in over:
        cutoff = _end_of(day, zone)
        high_water = session.scalar(select(func.max(TransitionLog.id))) or 0
        if kept_report(session, campaign.id, day, cutoff) is not None:
            # Still fresh: move its mark up, so the next check reads only newer rows.
            session.execute(
                update(ReportSnapshot)
                .where(ReportSnapshot.campaign_id == campaign.id, ReportSnapshot.day == day)
                .values(log_high_water=high_water)
            )
        else:
            report = campaign_report(uow, campaign_code, as_of=day, now=now, use_snapshot=False)
            session.execute(
                delete(ReportSnapshot).where(
                    ReportSnapshot.campaign_id == campaign.id, ReportSnapshot.day == day
                )
            )
            session.add(
                ReportSnapshot(
                    campaign_id=campaign.id,
                    day=day,
                    log_high_water=high_water,
                    computed_at=now,
                    report=json.dumps(report, ensure_ascii=False),
                )
            )
            session.flush()
            written.append(day)
    return written
