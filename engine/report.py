"""The campaign report: what the bureau sends its superiors, computed from the data as of a time.

Every figure comes from aggregate SQL (GROUP BY over the campaign's tickets,
with conditional sums); Python only folds the few hundred groups that come
back, never the ticket rows, so a million tickets cost a handful of scans.

"As of" a time T: the tickets the system held at T (their first log row is at
or before T), each in the state of its last log row at or before T; solved
means rectified at or before T (``rectified_at``), escalated means a
government escalation recorded at or before T; citizens' answers and
reopenings are counted from the log rows before T. Category, kind, unit and
escalation level are read from the ticket as it is now (a ticket still
``received`` at T counts as uncategorized), which is exact for the built-in
workflow except for a later reassignment or escalation step.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Subquery

from engine.audit import safe_cell
from engine.context import UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.models import (
    Campaign,
    Category,
    GovernmentEscalation,
    Ticket,
    TicketTheme,
    TransitionLog,
    Unit,
)

FORMATS = ("text", "json", "csv", "xlsx")
SPECIFIC_PROBLEM_KIND = "request"
UNCATEGORIZED = "(uncategorized)"
UNASSIGNED = "(no unit)"
NO_KIND = "(no kind)"


def resolve_as_of(value: date | datetime | str | None, timezone: str) -> datetime | None:
    """The cut-off instant (exclusive) for ``value``: a date means the end of that day in
    the campaign's timezone; a datetime is taken as given (naive = campaign time)."""
    if value is None:
        return None
    zone = ZoneInfo(timezone)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = date.fromisoformat(text)
            else:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"as-of {text!r} is not a date; write it as YYYY-MM-DD or an ISO-8601 time",
                fields={"as_of": "write it as YYYY-MM-DD or 2005-03-18T09:00:00+08:00"},
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    end = datetime.combine(value + timedelta(days=1), time(0), tzinfo=zone)
    return end.astimezone(UTC)


def _ticket_view(campaign_id: int, cutoff: datetime | None) -> Subquery:
    """One row per ticket the system held at ``cutoff``: its state then and the columns counted."""
    t = Ticket.__table__
    columns = [
        t.c.id,
        t.c.category,
        t.c.kind,
        t.c.unit_id,
        t.c.escalation_level,
        t.c.due_at,
        t.c.rectified_at,
    ]
    if cutoff is None:
        return select(*columns, t.c.state).where(t.c.campaign_id == campaign_id).subquery("v")
    log = TransitionLog.__table__
    last = (
        select(log.c.ticket_id, func.max(log.c.seq).label("seq"))
        .join(t, t.c.id == log.c.ticket_id)
        .where(t.c.campaign_id == campaign_id, log.c.at < cutoff)
        .group_by(log.c.ticket_id)
        .subquery("last")
    )
    return (
        select(*columns, log.c.to_state.label("state"))
        .select_from(t)
        .join(last, last.c.ticket_id == t.c.id)
        .join(log, and_(log.c.ticket_id == last.c.ticket_id, log.c.seq == last.c.seq))
        .subquery("v")
    )


def campaign_report(
    uow: UnitOfWork,
    campaign_code: str,
    as_of: date | datetime | str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The campaign report as a plain dict (JSON-ready), as of ``as_of`` (default: now).

    ``as_of`` is a date (figures at the end of that day, campaign time) or an
    instant. ``now`` is the moment "overdue" is judged at when ``as_of`` is not
    given (default: the wall clock). Keys: total, by_category, by_kind,
    by_unit, by_state, fed_back, solved_by_deadline, solved_after_deadline,
    escalated_to_government, overdue, satisfaction, themes, specific_problems.
    """
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).first()
    if campaign is None:
        known = ", ".join(session.scalars(select(Campaign.code).order_by(Campaign.code)))
        raise NotFound(f"no campaign {campaign_code!r}; known campaigns: {known or 'none'}")
    cutoff = resolve_as_of(as_of, campaign.timezone)
    judged_at = cutoff or uow.now(now)
    workflow = uow.registry.get(campaign.workflow_name, campaign.workflow_version)
    final_states = sorted(workflow.final_states)
    deadline = campaign.rectification_deadline
    view = _ticket_view(campaign.id, cutoff)

    solved: ColumnElement[bool] = view.c.rectified_at.is_not(None)
    if cutoff is not None:
        solved = and_(solved, view.c.rectified_at < cutoff)
    overdue = and_(
        view.c.due_at.is_not(None),
        view.c.due_at < judged_at,
        view.c.state.not_in(final_states),
    )
    # Grouped on the raw columns, in the order of the covering index ix_tickets_report, so
    # the database streams the groups without sorting (SQLite: 1.0 s → 0.3 s at 400k tickets);
    # a ticket still in the initial state counts as uncategorized below.
    groups = session.execute(
        select(
            view.c.state,
            view.c.category,
            view.c.kind,
            view.c.unit_id,
            view.c.escalation_level,
            func.count().label("n"),
            func.sum(case((and_(solved, view.c.rectified_at < deadline), 1), else_=0)).label(
                "solved_early"
            ),
            func.sum(case((and_(solved, view.c.rectified_at >= deadline), 1), else_=0)).label(
                "solved_late"
            ),
            func.sum(case((overdue, 1), else_=0)).label("overdue"),
        ).group_by(
            view.c.state, view.c.category, view.c.kind, view.c.unit_id, view.c.escalation_level
        )
    ).all()

    units = {
        row.id: (row.code, row.name)
        for row in session.execute(select(Unit.id, Unit.code, Unit.name))
    }
    categories = session.execute(
        select(Category.code, Category.name, Category.outside_duties)
        .where(Category.campaign_id == campaign.id)
        .order_by(Category.position, Category.id)
    ).all()

    total = 0
    by_state: dict[str, int] = {s: 0 for s in workflow.states}
    by_category: dict[str, int] = {c.code: 0 for c in categories}
    by_kind: dict[str, int] = {}
    by_unit: dict[str, int] = {}
    overdue_by_unit: dict[str, int] = defaultdict(int)
    overdue_by_level: dict[str, int] = defaultdict(int)
    overdue_by_unit_level: dict[tuple[str, int], int] = defaultdict(int)
    sums: dict[str, int] = defaultdict(int)
    problems: dict[str, int] = defaultdict(int)
    for g in groups:
        n = int(g.n)
        total += n
        by_state[g.state] = by_state.get(g.state, 0) + n
        cat = (g.category if g.state != workflow.initial else None) or UNCATEGORIZED
        by_category[cat] = by_category.get(cat, 0) + n
        kind = g.kind or NO_KIND
        by_kind[kind] = by_kind.get(kind, 0) + n
        unit = units[g.unit_id][0] if g.unit_id in units else UNASSIGNED
        by_unit[unit] = by_unit.get(unit, 0) + n
        for key in ("solved_early", "solved_late", "overdue"):
            sums[key] += int(getattr(g, key) or 0)
        if g.overdue:
            overdue_by_unit[unit] += int(g.overdue)
            overdue_by_level[str(g.escalation_level)] += int(g.overdue)
            overdue_by_unit_level[(unit, int(g.escalation_level))] += int(g.overdue)
        if g.kind == SPECIFIC_PROBLEM_KIND:
            problems["total"] += n
            problems["solved_by_deadline"] += int(g.solved_early or 0)
            problems["solved_after_deadline"] += int(g.solved_late or 0)
            if g.state in final_states:
                problems["fed_back"] += n
    if not by_category.get(UNCATEGORIZED):
        by_category.pop(UNCATEGORIZED, None)

    escalated, problems["escalated_to_government"] = _escalated(session, campaign.id, cutoff)
    answers = _log_counts(session, campaign.id, cutoff)
    reopened = answers[REOPEN]
    themes = _themes(session, view, total, campaign.id if cutoff is None else None)

    fed_back = sum(by_state.get(s, 0) for s in final_states)
    answered = answers[SATISFIED] + answers[UNSATISFIED]
    zone = ZoneInfo(campaign.timezone)
    return {
        "campaign": {
            "code": campaign.code,
            "name": campaign.name,
            "timezone": campaign.timezone,
            "starts_on": campaign.starts_on.isoformat(),
            "ends_on": campaign.ends_on.isoformat(),
            "rectification_deadline": deadline.astimezone(zone).isoformat(),
        },
        "as_of": (cutoff or judged_at).astimezone(zone).isoformat(),
        "total": total,
        "by_category": by_category,
        "category_names": {c.code: c.name for c in categories},
        "outside_duties": sum(by_category.get(c.code, 0) for c in categories if c.outside_duties),
        "by_kind": dict(sorted(by_kind.items())),
        "by_unit": dict(sorted(by_unit.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unit_names": {code: name for code, name in units.values() if code in by_unit},
        "by_state": by_state,
        "fed_back": fed_back,
        "solved_by_deadline": sums["solved_early"],
        "solved_after_deadline": sums["solved_late"],
        "escalated_to_government": int(escalated),
        "specific_problems": {
            "total": problems["total"],
            "solved_by_deadline": problems["solved_by_deadline"],
            "solved_after_deadline": problems["solved_after_deadline"],
            "escalated_to_government": int(problems["escalated_to_government"]),
            "fed_back": problems["fed_back"],
        },
        "overdue": {
            "total": sums["overdue"],
            "by_unit": dict(sorted(overdue_by_unit.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_level": dict(sorted(overdue_by_level.items())),
            "by_unit_and_level": [
                {"unit": u, "level": lvl, "count": c}
                for (u, lvl), c in sorted(overdue_by_unit_level.items())
            ],
        },
        "satisfaction": {
            "answered": answered,
            "satisfied": answers[SATISFIED],
            "unsatisfied": answers[UNSATISFIED],
            "rate": _ratio(answers[SATISFIED], answered),
            "reopened": reopened,
            "reopen_rate": _ratio(reopened, fed_back + reopened),
        },
        "themes": themes,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _escalated(session: Session, campaign_id: int, cutoff: datetime | None) -> tuple[int, int]:
    """Tickets escalated to government (each once), all and specific problems, in one scan."""
    g = GovernmentEscalation.__table__
    query = (
        select(
            func.count(func.distinct(g.c.ticket_id)),
            func.count(func.distinct(case((Ticket.kind == SPECIFIC_PROBLEM_KIND, g.c.ticket_id)))),
        )
        .join(Ticket, Ticket.id == g.c.ticket_id)
        .where(Ticket.campaign_id == campaign_id)
    )
    if cutoff is not None:
        query = query.where(g.c.at < cutoff)
    row = session.execute(query).one()
    return int(row[0] or 0), int(row[1] or 0)


SATISFIED, UNSATISFIED, REOPEN = "citizen_satisfied", "citizen_unsatisfied", "reopen"


def _log_counts(session: Session, campaign_id: int, cutoff: datetime | None) -> dict[str, int]:
    """Citizens' answers (each answer counts) and reopened tickets (each ticket once), from the
    log, so a reopened ticket's earlier answer still counts and "as of" is exact."""
    log = TransitionLog.__table__
    query = (
        select(
            log.c.trigger,
            func.count().label("n"),
            func.count(func.distinct(log.c.ticket_id)).label("tickets"),
        )
        .join(Ticket, Ticket.id == log.c.ticket_id)
        .where(
            Ticket.campaign_id == campaign_id, log.c.trigger.in_((SATISFIED, UNSATISFIED, REOPEN))
        )
        .group_by(log.c.trigger)
    )
    if cutoff is not None:
        query = query.where(log.c.at < cutoff)
    out = {SATISFIED: 0, UNSATISFIED: 0, REOPEN: 0}
    for row in session.execute(query):
        out[row.trigger] = int(row.tickets if row.trigger == REOPEN else row.n)
    return out


def _themes(
    session: Session, view: Subquery, total: int, campaign_id: int | None
) -> dict[str, dict[str, Any]]:
    """Tickets per theme tag. Now (``campaign_id`` given): one range of
    ix_ticket_themes_campaign_tag; as of a past date: only the tickets the view held then."""
    theme = TicketTheme.__table__
    query = select(theme.c.tag, func.count().label("n"))
    if campaign_id is not None:
        query = query.where(theme.c.campaign_id == campaign_id)
    else:
        query = query.join(view, view.c.id == theme.c.ticket_id)
    rows = session.execute(
        query.group_by(theme.c.tag).order_by(func.count().desc(), theme.c.tag)
    ).all()
    return {row.tag: {"count": int(row.n), "share": _ratio(int(row.n), total)} for row in rows}


# --- rendering ---------------------------------------------------------------------------


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


# The words of a rendered report, keyed; %(name)s placeholders. English here; an adapter (the
# web pages, the CLI) passes its reader's language as a ``ReportText``.
WORDS: dict[str, str] = {
    "title": "Campaign report: %(name)s (%(code)s)",
    "as_of": "as of %(as_of)s; rectification deadline %(deadline)s",
    "recorded": "Opinions recorded: %(total)s",
    "by_category": "By category",
    "by_kind": "By kind",
    "by_unit": "By unit",
    "by_state": "By state",
    "fed_back": "Fed back",
    "solved_by_deadline": "Solved before the deadline",
    "solved_after_deadline": "Solved after the deadline",
    "escalated_to_government": "Escalated to government",
    "specific_problems_line": "Specific problems: %(total)s; solved before the deadline "
    "%(early)s, after %(late)s; escalated to government %(escalated)s; fed back %(fed_back)s",
    "overdue_line": "Overdue now: %(total)s",
    "level": "escalation level %(level)s",
    "satisfaction_line": "Satisfaction: %(satisfied)s of %(answered)s answers satisfied "
    "(%(rate)s); reopened %(reopened)s (%(reopen_rate)s)",
    "themes_line": "Themes (share of all opinions)",
    "column_section": "section",
    "column_item": "item",
    "column_count": "count",
    "column_share": "share",
    "campaign": "campaign",
    "total": "total",
    "opinions": "opinions",
    "specific_problems": "specific_problems",
    "overdue": "overdue",
    "overdue_by_unit": "overdue_by_unit",
    "overdue_by_level": "overdue_by_level",
    "satisfaction": "satisfaction",
    "themes": "themes",
    "answered": "answered",
    "satisfied": "satisfied",
    "rate": "rate",
    "reopened": "reopened",
    "reopen_rate": "reopen_rate",
}


@dataclass(frozen=True)
class ReportText:
    """How a rendered report reads: ``words`` (keys of ``WORDS``) and ``item(section, key)``,
    the name shown for a category, unit, state or kind code. The default is English with the
    category names of the report and the codes as they are."""

    words: Mapping[str, str] = field(default_factory=dict)
    item: Callable[[str, str], str] | None = None

    def __call__(self, key: str, **values: Any) -> str:
        template = self.words.get(key) or WORDS[key]
        return template % values if values else template

    def name(self, report: dict[str, Any], section: str, key: str) -> str:
        if self.item is not None:
            return self.item(section, key)
        if section == "by_category":
            return str(report.get("category_names", {}).get(key, key))
        return key


ENGLISH = ReportText()


def report_rows(
    report: dict[str, Any], text: ReportText = ENGLISH
) -> list[tuple[str, str, Any, Any]]:
    """The report flattened to (section, item, count, share) rows for CSV and XLSX."""
    total = report["total"]
    rows: list[tuple[str, str, Any, Any]] = [
        (text("campaign"), report["campaign"]["code"], None, None),
        ("as_of", report["as_of"], None, None),
        (text("total"), text("opinions"), total, None),
    ]
    for section in ("by_category", "by_kind", "by_unit", "by_state"):
        for item, count in report[section].items():
            rows.append(
                (text(section), text.name(report, section, item), count, _ratio(count, total))
            )
    for key in ("fed_back", "solved_by_deadline", "solved_after_deadline"):
        rows.append((text(key), text(key), report[key], _ratio(report[key], total)))
    rows.append(
        (
            text("escalated_to_government"),
            text("escalated_to_government"),
            report["escalated_to_government"],
            _ratio(report["escalated_to_government"], total),
        )
    )
    for key, value in report["specific_problems"].items():
        rows.append((text("specific_problems"), text(key) if key in WORDS else key, value, None))
    rows.append((text("overdue"), text("total"), report["overdue"]["total"], None))
    for unit, count in report["overdue"]["by_unit"].items():
        rows.append((text("overdue_by_unit"), text.name(report, "by_unit", unit), count, None))
    for level, count in report["overdue"]["by_level"].items():
        rows.append((text("overdue_by_level"), text("level", level=level), count, None))
    for key, value in report["satisfaction"].items():
        rows.append((text("satisfaction"), text(key) if key in WORDS else key, value, None))
    for tag, theme in report["themes"].items():
        rows.append((text("themes"), tag, theme["count"], theme["share"]))
    return rows


def render_text(report: dict[str, Any], text: ReportText = ENGLISH) -> str:
    """The report as the plain text a supervisor reads or pastes into a letter."""
    total = report["total"]
    camp = report["campaign"]
    lines = [
        text("title", name=camp["name"], code=camp["code"]),
        text("as_of", as_of=report["as_of"], deadline=camp["rectification_deadline"]),
        "",
        text("recorded", total=total),
    ]
    for key in ("by_category", "by_kind", "by_unit", "by_state"):
        lines += ["", text(key) + ":"]
        for item, count in report[key].items():
            name = text.name(report, key, item)
            lines.append(f"  {name:<36} {count:>7}  {_pct(count, total):>6}")
    sp = report["specific_problems"]
    lines += [
        "",
        f"{text('fed_back') + ':':<38} {report['fed_back']:>7}  "
        f"{_pct(report['fed_back'], total):>6}",
        f"{text('solved_by_deadline') + ':':<38} {report['solved_by_deadline']:>7}",
        f"{text('solved_after_deadline') + ':':<38} {report['solved_after_deadline']:>7}",
        f"{text('escalated_to_government') + ':':<38} {report['escalated_to_government']:>7}",
        "",
        text(
            "specific_problems_line",
            total=sp["total"],
            early=sp["solved_by_deadline"],
            late=sp["solved_after_deadline"],
            escalated=sp["escalated_to_government"],
            fed_back=sp["fed_back"],
        ),
        "",
        text("overdue_line", total=report["overdue"]["total"]),
    ]
    for unit, count in report["overdue"]["by_unit"].items():
        lines.append(f"  {text.name(report, 'by_unit', unit):<36} {count:>7}")
    for level, count in report["overdue"]["by_level"].items():
        lines.append(f"  {text('level', level=level):<36} {count:>7}")
    sat = report["satisfaction"]
    rate = f"{100 * sat['rate']:.1f}%" if sat["rate"] is not None else "-"
    reopen = f"{100 * sat['reopen_rate']:.1f}%" if sat["reopen_rate"] is not None else "-"
    lines += [
        "",
        text(
            "satisfaction_line",
            satisfied=sat["satisfied"],
            answered=sat["answered"],
            rate=rate,
            reopened=sat["reopened"],
            reopen_rate=reopen,
        ),
        "",
        text("themes_line") + ":",
    ]
    for tag, theme in report["themes"].items():
        lines.append(f"  {tag:<36} {theme['count']:>7}  {_pct(theme['count'], total):>6}")
    return "\n".join(lines) + "\n"


def write_report(
    report: dict[str, Any], fmt: str, out: IO[bytes], text: ReportText = ENGLISH
) -> None:
    """Write the report as ``text``, ``json``, ``csv`` or ``xlsx`` to a binary stream, its
    headings and names as ``text`` says (English by default; JSON keeps the keys).

    CSV and XLSX cells pass through ``safe_cell`` so a unit or tag named
    ``=cmd|...`` is written as text, never as a formula.
    """
    columns = tuple(text(f"column_{c}") for c in ("section", "item", "count", "share"))
    if fmt == "text":
        out.write(render_text(report, text).encode("utf-8"))
    elif fmt == "json":
        out.write(json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8"))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in report_rows(report, text):
            writer.writerow([safe_cell(v) for v in row])
        out.write(buffer.getvalue().encode("utf-8-sig"))
    elif fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("report")
        sheet.append(columns)
        for row in report_rows(report, text):
            sheet.append([_xlsx_cell(v) for v in row])
        book.save(out)
    else:
        raise ValidationError(
            f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}",
            fields={"format": f"use one of {', '.join(FORMATS)}"},
        )


def _xlsx_cell(value: Any) -> Any:
    """openpyxl stores a string starting with ``=`` as a formula; ``safe_cell`` quotes it."""
    return safe_cell(value)
