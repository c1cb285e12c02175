"""Effects: what a trigger records besides the state, registered by name.

A workflow declares per trigger the effects it has (``effects = ["assign"]``);
loading checks that each named effect exists and that the trigger carries the
fields the effect reads. An effect gets the firing's ``Effect`` record and
adds the ticket columns it changes to ``values`` (only those it declares in
``writes``) and, where it must, rows of its own (a feedback record, a
government escalation). Nothing here knows a state or trigger name.

To add one: write a function taking an ``Effect``, register it with
``@effect(name, needs=(...), writes=(...))``, and name it in a workflow file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Connection

from engine.actors import Actor
from engine.models import FeedbackRecord, GovernmentEscalation
from engine.rawsql import PreparedWrite
from engine.readcache import ReadCache
from engine.routing import suggest_unit

feedback_t = cast(Table, FeedbackRecord.__table__)
government_t = cast(Table, GovernmentEscalation.__table__)


@dataclass
class Effect:
    """One firing, as an effect sees it; ``values`` and ``logged`` are the effect's to extend."""

    conn: Connection
    ticket: Any  # the row fire() read: id, number, campaign_id, area, assignee_id, ...
    logged: dict[str, Any]  # the validated data, as it goes to the log
    ids: dict[str, int]  # resolved ids of unit/user fields
    actor: Actor
    now: datetime
    values: dict[str, Any]  # ticket columns to change
    cache: ReadCache | None = None  # the context's read cache (routing rules)


EffectFunction = Callable[[Effect], None]


@dataclass(frozen=True)
class EffectSpec:
    name: str
    run: EffectFunction
    needs: tuple[str, ...]  # fields the trigger must carry (required or optional)
    writes: frozenset[str]  # ticket columns the effect may set
    doc: str


EFFECTS: dict[str, EffectSpec] = {}


def effect(
    name: str, *, needs: tuple[str, ...] = (), writes: tuple[str, ...] = ()
) -> Callable[[EffectFunction], EffectFunction]:
    """Register ``function`` as the effect ``name``."""

    def register(function: EffectFunction) -> EffectFunction:
        if name in EFFECTS:
            raise ValueError(f"effect {name!r} is registered twice")
        EFFECTS[name] = EffectSpec(
            name, function, needs, frozenset(writes), (function.__doc__ or "").strip()
        )
        return function

    return register


def apply_effects(names: tuple[str, ...], record: Effect) -> None:
    """Run the named effects in order; each may set only the columns it declares."""
    for name in names:
        spec = EFFECTS[name]
        before = set(record.values)
        spec.run(record)
        undeclared = set(record.values) - before - spec.writes
        if undeclared:
            raise RuntimeError(f"effect {name!r} set undeclared column(s) {sorted(undeclared)}")


@effect("set_category", needs=("category",), writes=("category",))
def set_category(e: Effect) -> None:
    """The ticket's category is the one given."""
    e.values["category"] = e.logged["category"]


@effect("route", needs=("category",), writes=("unit_id",))
def route(e: Effect) -> None:
    """Send the ticket to the unit the routing rules suggest for its category and area,
    unless the trigger names a unit or an officer is already responsible."""
    if "unit" in e.ids or e.ticket.assignee_id is not None:
        return
    suggestion = suggest_unit(
        e.conn,
        campaign_id=e.ticket.campaign_id,
        category=e.logged["category"],
        area=e.ticket.area,
        cache=e.cache,
    )
    if suggestion is not None:
        e.values["unit_id"] = suggestion.unit_id
        e.logged["routed_to"] = suggestion.unit_code


@effect("set_kind", needs=("kind",), writes=("kind",))
def set_kind(e: Effect) -> None:
    """The ticket's kind (praise, criticism, ...) is the one given."""
    e.values["kind"] = e.logged["kind"]


@effect("assign", writes=("unit_id", "assignee_id"))
def assign(e: Effect) -> None:
    """The unit and officer given (either, or both) become responsible."""
    if "unit" in e.ids:
        e.values["unit_id"] = e.ids["unit"]
    if "officer" in e.ids:
        e.values["assignee_id"] = e.ids["officer"]


@effect("record_rectification", writes=("rectified_at",))
def record_rectification(e: Effect) -> None:
    """The rectification time is now."""
    e.values["rectified_at"] = e.now


_INSERT_FEEDBACK = PreparedWrite(
    insert(feedback_t).values(
        {c: bindparam(c) for c in ("ticket_id", "method", "text", "given_on", "by_user_id", "at")}
    )
)


@effect("record_feedback", needs=("method", "text", "date"))
def record_feedback(e: Effect) -> None:
    """A feedback record: how, what and when the person was answered."""
    _INSERT_FEEDBACK.execute(
        e.conn,
        {
            "ticket_id": e.ticket.id,
            "method": e.logged["method"],
            "text": e.logged["text"],
            "given_on": date.fromisoformat(e.logged["date"]),
            "by_user_id": e.actor.id,
            "at": e.now,
        },
    )


@effect("record_government_escalation", needs=("receiving_body",))
def record_government_escalation(e: Effect) -> None:
    """A record of the report to the government body that must answer."""
    e.conn.execute(
        insert(government_t).values(
            ticket_id=e.ticket.id,
            receiving_body=e.logged["receiving_body"],
            reference=e.logged.get("reference"),
            reason=e.logged.get("reason", ""),
            citizen_told=False,
            by_user_id=e.actor.id,
            at=e.now,
        )
    )


def check_effect(name: str, fields: tuple[str, ...]) -> str | None:
    """Why a trigger carrying ``fields`` cannot name effect ``name`` (None when it can)."""
    spec = EFFECTS.get(name)
    if spec is None:
        return f"unknown effect {name!r}; effects are {', '.join(sorted(EFFECTS))}"
    missing = [f for f in spec.needs if f not in fields]
    if missing:
        return f"effect {name!r} reads the field(s) {', '.join(missing)}; add them to requires"
    return None
