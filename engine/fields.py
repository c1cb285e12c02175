"""Checking the data a trigger carries against the workflow's field definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from engine.errors import ValidationError
from engine.models import Campaign, Category, Unit, User
from engine.workflow import FieldSpec, TriggerSpec, Workflow

# Built once: these run inside every fire() (bench/transitions.py).
_UNIT_BY_CODE = select(Unit.id).where(Unit.code == bindparam("code"))
_USER_BY_NAME = select(User.id, User.role, User.active).where(
    User.username == bindparam("username")
)
_USER_UNIT = select(User.unit_id).where(User.id == bindparam("id"))
_CAMPAIGN_TZ = select(Campaign.timezone).where(Campaign.id == bindparam("id"))
_CATEGORY = select(Category.id).where(
    Category.campaign_id == bindparam("campaign_id"), Category.code == bindparam("code")
)

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


@dataclass
class CheckedData:
    """``logged``: JSON-able values as written to the log; ``ids``: resolved row ids."""

    logged: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


def check_data(
    conn: Connection,
    workflow: Workflow,
    spec: TriggerSpec,
    data: dict[str, Any] | None,
    *,
    campaign_id: int,
    ticket: str | None = None,
    state: str | None = None,
    now: datetime | None = None,
) -> CheckedData:
    """Validate ``data`` for ``spec``: every required field present and well formed,
    no field the trigger does not take. Raises ``ValidationError`` naming each bad field.

    A ``date`` field is the day something happened (feedback given, work done):
    with ``now`` given, a day after today in the campaign's timezone is refused.
    """
    data = dict(data or {})
    errors: dict[str, str] = {}
    allowed = set(spec.requires) | set(spec.optional)
    for name in sorted(set(data) - allowed):
        takes = ", ".join(sorted(allowed)) or "no data"
        errors[name] = f"unknown field; {spec.name!r} takes {takes}"
    out = CheckedData()
    for name in (*spec.requires, *spec.optional):
        value = data.get(name)
        if _blank(value):
            if name in spec.requires:
                errors[name] = f"is required ({workflow.fields[name].title})"
            continue
        try:
            _check_one(conn, workflow.fields[name], value, out, campaign_id)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if workflow.fields[name].type == "date" and now is not None:
            today = _local_today(conn, campaign_id, now)
            if date.fromisoformat(out.logged[name]) > today:
                errors[name] = (
                    f"{out.logged[name]} is in the future (today is {today.isoformat()}); "
                    "give the day it happened"
                )
    if "unit" in out.ids and "officer" in out.ids and errors.get("officer") is None:
        officer_unit = conn.execute(
            select(User.unit_id).where(User.id == out.ids["officer"])
        ).scalar()
        if officer_unit != out.ids["unit"]:
            errors["officer"] = (
                f"{out.logged['officer']!r} is not an officer of unit {out.logged['unit']!r}"
            )
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(
            f"{spec.name!r} cannot proceed: {listed}", fields=errors, ticket=ticket, state=state
        )
    return out


def _local_today(conn: Connection, campaign_id: int, now: datetime) -> date:
    zone = conn.execute(_CAMPAIGN_TZ, {"id": campaign_id}).scalar()
    return now.astimezone(ZoneInfo(zone or "UTC")).date()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_one(
    conn: Connection, spec: FieldSpec, value: Any, out: CheckedData, campaign_id: int
) -> None:
    name = spec.name
    if spec.type == "text":
        if not isinstance(value, str):
            raise ValueError("must be text")
        text = value.strip()
        if len(text) > spec.max_length:
            raise ValueError(f"is too long ({len(text)} characters; at most {spec.max_length})")
        out.logged[name] = text
    elif spec.type == "choice":
        if value not in spec.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(spec.choices)}")
        out.logged[name] = value
    elif spec.type == "bool":
        if isinstance(value, bool):
            out.logged[name] = value
        elif isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            out.logged[name] = value.strip().lower() in TRUE_WORDS
        else:
            raise ValueError(f"{value!r} is not true or false")
    elif spec.type == "date":
        if isinstance(value, date):
            out.logged[name] = value.isoformat()
        else:
            try:
                out.logged[name] = date.fromisoformat(str(value).strip()).isoformat()
            except ValueError:
                raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None
    elif spec.type == "unit":
        code = str(value).strip()
        unit_id = conn.execute(_UNIT_BY_CODE, {"code": code}).scalar()
        if unit_id is None:
            raise ValueError(f"no unit with code {code!r}")
        out.logged[name] = code
        out.ids[name] = unit_id
    elif spec.type == "user":
        username = str(value).strip()
        row = conn.execute(_USER_BY_NAME, {"username": username}).first()
        if row is None or not row.active:
            raise ValueError(f"no active user {username!r}")
        if spec.role and row.role not in (spec.role, "unit_leader"):
            raise ValueError(f"{username!r} is a {row.role}, not a {spec.role}")
        out.logged[name] = username
        out.ids[name] = row.id
    elif spec.type == "category":
        code = str(value).strip()
        found = conn.execute(_CATEGORY, {"campaign_id": campaign_id, "code": code}).scalar()
        if found is None:
            known = conn.execute(
                select(Category.code)
                .where(Category.campaign_id == campaign_id)
                .order_by(Category.position)
            ).scalars()
            raise ValueError(
                f"{code!r} is not a category of this campaign; use one of {', '.join(known)}"
            )
        out.logged[name] = code
    else:  # pragma: no cover - the loader rejects unknown types
        raise ValueError(f"unknown field type {spec.type}")
