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
from engine.rawsql import PreparedQuery
from engine.readcache import ReadCache
from engine.workflow import FieldSpec, TriggerSpec, Workflow

# Built once: these run inside fire() (bench/transitions.py), and their answers are kept in
# the context's read cache (engine.readcache): units, users, categories and a campaign's
# timezone change only through an administrator.
_UNIT_BY_CODE = PreparedQuery(select(Unit.id).where(Unit.code == bindparam("code")))
_USER_BY_NAME = PreparedQuery(
    select(User.id, User.role, User.active, User.unit_id).where(
        User.username == bindparam("username")
    )
)
_CAMPAIGN_TZ = PreparedQuery(select(Campaign.timezone).where(Campaign.id == bindparam("id")))
_CATEGORY = PreparedQuery(
    select(Category.id).where(
        Category.campaign_id == bindparam("campaign_id"), Category.code == bindparam("code")
    )
)


def _looked_up(
    cache: ReadCache | None, conn: Connection, query: PreparedQuery, params: dict[str, Any]
) -> Any:
    """The first row ``query`` finds for ``params`` (None: none), from the read cache when
    one is given. A miss is not kept: a row an administrator adds is found at once."""

    def load() -> Any:
        return query.first(conn, params)

    if cache is None:
        return load()
    key = (id(query), *sorted(params.items()))
    row = cache.get(key, load)
    if row is None:
        cache.forget(key)
    return row


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


@dataclass
class CheckedData:
    """``logged``: JSON-able values as written to the log; ``ids``: resolved row ids."""

    logged: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    officer_unit: int | None = None  # the unit of the ``officer`` field's user


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
    cache: ReadCache | None = None,
) -> CheckedData:
    """Validate ``data`` for ``spec``: every required field present and well formed,
    no field the trigger does not take. Raises ``ValidationError`` naming each bad field.

    A ``date`` field is the day something happened (feedback given, work done):
    with ``now`` given, a day after today in the campaign's timezone is refused.
    Units, users, categories and the campaign's timezone are read through ``cache``
    when one is given (``uow.ctx.cache``).
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
            _check_one(conn, workflow.fields[name], value, out, campaign_id, cache)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if workflow.fields[name].type == "date" and now is not None:
            today = _local_today(conn, campaign_id, now, cache)
            if date.fromisoformat(out.logged[name]) > today:
                errors[name] = (
                    f"{out.logged[name]} is in the future (today is {today.isoformat()}); "
                    "give the day it happened"
                )
    if (
        "unit" in out.ids
        and "officer" in out.ids
        and errors.get("officer") is None
        and out.officer_unit != out.ids["unit"]
    ):
        errors["officer"] = (
            f"{out.logged['officer']!r} is not an officer of unit {out.logged['unit']!r}"
        )
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(
            f"{spec.name!r} cannot proceed: {listed}", fields=errors, ticket=ticket, state=state
        )
    return out


def _local_today(
    conn: Connection, campaign_id: int, now: datetime, cache: ReadCache | None
) -> date:
    row = _looked_up(cache, conn, _CAMPAIGN_TZ, {"id": campaign_id})
    return now.astimezone(ZoneInfo(row.timezone if row is not None else "UTC")).date()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_one(
    conn: Connection,
    spec: FieldSpec,
    value: Any,
    out: CheckedData,
    campaign_id: int,
    cache: ReadCache | None = None,
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
        unit = _looked_up(cache, conn, _UNIT_BY_CODE, {"code": code})
        if unit is None:
            raise ValueError(f"no unit with code {code!r}")
        out.logged[name] = code
        out.ids[name] = unit.id
    elif spec.type == "user":
        username = str(value).strip()
        row = _looked_up(cache, conn, _USER_BY_NAME, {"username": username})
        if row is None or not row.active:
            raise ValueError(f"no active user {username!r}")
        if spec.role and row.role not in (spec.role, "unit_leader"):
            raise ValueError(f"{username!r} is a {row.role}, not a {spec.role}")
        out.logged[name] = username
        out.ids[name] = row.id
        if name == "officer":
            out.officer_unit = row.unit_id
    elif spec.type == "category":
        code = str(value).strip()
        found = _looked_up(cache, conn, _CATEGORY, {"campaign_id": campaign_id, "code": code})
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
