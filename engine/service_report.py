"""The service report: what a standing service (a 12345 hotline centre) publishes.

Volume by channel, category, kind and priority; how many tickets the units signed for on
time and handled on time; how many were returned; the citizens' ratings; and the same per
unit. Which trigger is "signed for", which are "returned" and which field carries the rating
are named in the workflow file (``[report]``), so nothing here knows a state or a trigger.

"On time" is judged from the log: a trigger named in ``[report] on_time`` fired before the
due time of the state it left, the due time being the one that state set when the ticket
entered it (its limit for the ticket's priority, on the programme's calendar, capped by a
campaign's deadline). The consultation campaign keeps its own report (``engine.report``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.context import UnitOfWork
from engine.deadlines import campaign_clock, state_due
from engine.errors import NotFound
from engine.i18n import Reader
from engine.messages import source_title
from engine.models import Campaign, Ticket, TransitionLog, Unit
from engine.report import resolve_as_of


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def service_report(
    uow: UnitOfWork,
    campaign_code: str,
    as_of: date | datetime | str | None = None,
) -> dict[str, Any]:
    """The service report of programme ``campaign_code`` as a plain dict (JSON-ready)."""
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).first()
    if campaign is None:
        known = ", ".join(session.scalars(select(Campaign.code).order_by(Campaign.code)))
        raise NotFound(f"no programme {campaign_code!r}; known: {known or 'none'}")
    cutoff = resolve_as_of(as_of, campaign.timezone)
    clock = campaign_clock(uow, campaign.id)
    units = {r.id: (r.code, r.name) for r in session.execute(select(Unit.id, Unit.code, Unit.name))}

    tickets = {
        r.id: r
        for r in session.execute(
            select(
                Ticket.id,
                Ticket.source,
                Ticket.category,
                Ticket.kind,
                Ticket.priority,
                Ticket.unit_id,
                Ticket.workflow_name,
                Ticket.workflow_version,
                Ticket.received_at,
            ).where(Ticket.campaign_id == campaign.id)
        )
        if cutoff is None or r.received_at < cutoff
    }
    log = TransitionLog.__table__
    query = (
        select(
            log.c.ticket_id,
            log.c.trigger,
            log.c.from_state,
            log.c.to_state,
            log.c.at,
            log.c.data,
        )
        .join(Ticket, Ticket.id == log.c.ticket_id)
        .where(Ticket.campaign_id == campaign.id)
        .order_by(log.c.ticket_id, log.c.seq)
    )
    if cutoff is not None:
        query = query.where(log.c.at < cutoff)

    by_channel: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_priority: Counter[str] = Counter()
    by_state: Counter[str] = Counter()
    for t in tickets.values():
        by_channel[t.source or "unknown"] += 1
        by_category[t.category or "uncategorized"] += 1
        by_kind[t.kind or "unspecified"] += 1
        by_priority[t.priority or "none"] += 1

    def blank_unit() -> dict[str, int]:
        return defaultdict(int)

    per_unit: dict[str, dict[str, int]] = defaultdict(blank_unit)
    on_time: dict[str, Counter[str]] = {name: Counter() for name, _ in _on_time_specs(uow, tickets)}
    returned: Counter[str] = Counter()
    ratings: Counter[str] = Counter()
    entered: dict[str, datetime] = {}
    current: dict[int, str] = {}
    last_ticket: int | None = None
    unit = "none"
    for row in session.execute(query):
        if row.ticket_id not in tickets:
            continue
        ticket = tickets[row.ticket_id]
        workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
        spec = workflow.report
        data = json.loads(row.data) if row.data else {}
        if row.ticket_id != last_ticket:
            entered, last_ticket, unit = {}, row.ticket_id, "none"
        # Each figure counts for the unit responsible at that step (a dispatch names it).
        if isinstance(data.get("unit"), str):
            unit = data["unit"]
        figures = dict(spec.on_time)
        trigger_to_figure = {trig: fig for fig, trig in figures.items()}
        if row.trigger in trigger_to_figure and row.from_state in entered:
            figure = trigger_to_figure[row.trigger]
            state_spec = workflow.states[row.from_state]
            due = state_due(state_spec, clock, entered[row.from_state], ticket.priority)
            in_time = due is None or row.at <= due.at
            on_time.setdefault(figure, Counter())["on_time" if in_time else "late"] += 1
            per_unit[unit][figure] += 1
            per_unit[unit][f"{figure}_on_time"] += int(in_time)
        if row.trigger in spec.returned:
            returned[row.trigger] += 1
            per_unit[unit]["returned"] += 1
        if spec.satisfaction_field:
            rating = data.get(spec.satisfaction_field)
            if isinstance(rating, str):
                ratings[rating] += 1
                per_unit[unit][f"rated_{rating}"] += 1
        if row.from_state != row.to_state:
            entered[row.to_state] = row.at
        current[row.ticket_id] = row.to_state
    for state in current.values():
        by_state[state] += 1
    for t in tickets.values():
        unit = units.get(t.unit_id, ("none", ""))[0] if t.unit_id else "none"
        per_unit[unit]["tickets"] += 1

    workflows = {(t.workflow_name, t.workflow_version) for t in tickets.values()}
    closed_states: set[str] = set()
    choices: list[str] = []
    figure_titles: dict[str, dict[str, str]] = {}
    satisfaction_field: str | None = None
    for name, version in sorted(workflows):
        wf = uow.registry.get(name, version)
        closed_states |= wf.closed_states
        field_name = wf.report.satisfaction_field
        if field_name and field_name in wf.fields:
            satisfaction_field = field_name
            choices += [c for c in wf.fields[field_name].choices if c not in choices]
        figure_titles.update(wf.report.figure_titles)
    answered = sum(ratings.values())
    zone = ZoneInfo(campaign.timezone)
    judged = cutoff or uow.now()
    return {
        "programme": {
            "code": campaign.code,
            "name": campaign.name,
            "continuous": campaign.continuous,
            "timezone": campaign.timezone,
            "starts_on": campaign.starts_on.isoformat(),
            "ends_on": None if campaign.continuous else campaign.ends_on.isoformat(),
        },
        "as_of": judged.astimezone(zone).isoformat(),
        "total": len(tickets),
        "closed": sum(n for s, n in by_state.items() if s in closed_states),
        "by_channel": dict(by_channel.most_common()),
        "by_category": dict(by_category.most_common()),
        "by_kind": dict(by_kind.most_common()),
        "by_priority": dict(sorted(by_priority.items())),
        "by_state": dict(sorted(by_state.items())),
        "on_time": {
            figure: {
                "total": c["on_time"] + c["late"],
                "on_time": c["on_time"],
                "late": c["late"],
                "rate": _rate(c["on_time"], c["on_time"] + c["late"]),
            }
            for figure, c in on_time.items()
        },
        "returned": dict(sorted(returned.items())),
        "satisfaction": {
            "answered": answered,
            **{choice: ratings.get(choice, 0) for choice in choices},
            # Satisfied and basically satisfied, as the centres publish it.
            "rate": _rate(answered - ratings.get(choices[-1], 0), answered) if choices else None,
        },
        "per_unit": {
            code: dict(sorted(values.items()))
            for code, values in sorted(per_unit.items(), key=lambda kv: kv[0])
        },
        "unit_names": {code: name for code, name in units.values()},
        # What the workflow file calls each figure, in both languages (the keys stay codes).
        "figure_titles": {f: figure_titles.get(f, {}) for f in on_time},
        "satisfaction_field": satisfaction_field,
        "workflows": sorted(f"{name} v{version}" for name, version in workflows),
    }


def _on_time_specs(uow: UnitOfWork, tickets: dict[int, Any]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for name, version in {(t.workflow_name, t.workflow_version) for t in tickets.values()}:
        for pair in uow.registry.get(name, version).report.on_time:
            if pair not in seen:
                seen.append(pair)
    return seen


def figure_name(report: dict[str, Any], figure: str, r: Reader) -> str:
    """An on-time figure's title (from the workflow file) in ``r``'s language."""
    return r.title(report["figure_titles"].get(figure), figure.replace("_", " "))


def item_name(report: dict[str, Any], section: str, key: str, r: Reader) -> str:
    """A row of a ``by_...`` section, or a per-unit figure, in ``r``'s language: names and
    titles, never codes."""
    placeholders = {
        "uncategorized": r.gettext("(uncategorized)"),
        "unspecified": r.gettext("(no kind)"),
        "none": r.gettext("(none)"),
    }
    if section == "by_channel":
        return source_title(r, key)
    if key in placeholders and section in ("by_category", "by_kind", "by_priority"):
        return placeholders[key]
    wf = _workflow(report, r)
    if section == "by_category":
        return r.category(key)
    if section == "by_kind":
        return r.kind(key, wf)
    if section == "by_priority":
        return r.choice("priority", key, wf)
    if section == "by_state":
        return r.state(key, wf)
    if section == "returned":
        return r.trigger(key, wf)
    if section == "per_unit":
        if key == "tickets":
            return r.gettext("Tickets")
        if key == "returned":
            return r.gettext("Returned")
        if key.startswith("rated_"):
            field_name = report.get("satisfaction_field") or ""
            rating = r.choice(field_name, key[len("rated_") :], _workflow(report, r))
            return r.gettext("Rated %(rating)s", rating=rating)
        if key.endswith("_on_time") and key[: -len("_on_time")] in report["on_time"]:
            figure = figure_name(report, key[: -len("_on_time")], r)
            return r.gettext("%(figure)s on time", figure=figure)
        if key in report["on_time"]:
            return figure_name(report, key, r)
    return key


def _workflow(report: dict[str, Any], r: Reader) -> Any:
    """The workflow the programme's tickets run on (its titles first), when the reader has
    the registry and the report names one."""
    if r.registry is None or not report.get("workflows"):
        return None
    name, version = report["workflows"][-1].rsplit(" v", 1)
    return r.registry.get(name, int(version))


def unit_name(report: dict[str, Any], code: str, r: Reader) -> str:
    return r.gettext("(no unit)") if code == "none" else r.unit(code)


def render_service_text(report: dict[str, Any], r: Reader) -> str:
    """The service report as plain text for the terminal, in ``r``'s language."""
    prog = report["programme"]

    def listed(section: str) -> str:
        return r.gettext(", ").join(
            f"{item_name(report, section, k, r)} {v}" for k, v in report[section].items()
        )

    lines = [
        f"{r.campaign(prog['code'])} ({prog['code']}), "
        + (
            r.gettext(
                "continuous service since %(day)s", day=r.day(date.fromisoformat(prog["starts_on"]))
            )
            if prog["continuous"]
            else f"{r.day(date.fromisoformat(prog['starts_on']))} – "
            f"{r.day(date.fromisoformat(prog['ends_on']))}"
        ),
        r.gettext(
            "as of %(when)s",
            when=r.when(datetime.fromisoformat(report["as_of"]), prog["timezone"]),
        ),
        "",
        r.gettext(
            "Tickets: %(total)s  closed %(closed)s", total=report["total"], closed=report["closed"]
        ),
        r.gettext("By channel: %(items)s", items=listed("by_channel")),
        r.gettext("By category: %(items)s", items=listed("by_category")),
        r.gettext("By kind: %(items)s", items=listed("by_kind")),
        r.gettext("By priority: %(items)s", items=listed("by_priority")),
    ]
    for figure, f in report["on_time"].items():
        rate = f"{f['rate']}%" if f["rate"] is not None else "—"
        lines.append(
            r.gettext(
                "%(figure)s on time: %(on_time)s of %(total)s (%(rate)s)",
                figure=figure_name(report, figure, r),
                on_time=f["on_time"],
                total=f["total"],
                rate=rate,
            )
        )
    lines.append(r.gettext("Returned: %(items)s", items=listed("returned") or "0"))
    sat = report["satisfaction"]
    rate = f"{sat['rate']}%" if sat["rate"] is not None else "—"
    parts = r.gettext(", ").join(
        f"{r.choice(report.get('satisfaction_field') or '', k, _workflow(report, r))} {v}"
        for k, v in sat.items()
        if k not in ("answered", "rate")
    )
    lines.append(
        r.gettext(
            "Satisfaction: %(answered)s rated (%(parts)s); satisfied rate %(rate)s",
            answered=sat["answered"],
            parts=parts,
            rate=rate,
        )
    )
    lines.append("")
    lines.append(r.gettext("Per unit:"))
    for code, values in report["per_unit"].items():
        shown = r.gettext(", ").join(
            f"{item_name(report, 'per_unit', k, r)} {v}" for k, v in values.items()
        )
        lines.append(f"  {unit_name(report, code, r)}: {shown}")
    return "\n".join(lines) + "\n"
