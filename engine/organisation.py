"""Loading the organisation (units, users, routing) and campaigns from TOML into the database.

Loading is idempotent: running it again updates names and rules and adds what
is new, so ``rectiflow demo`` can be repeated.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select

from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.errors import ConfigError, NotFound
from engine.models import (
    NO_DEADLINE,
    OPEN_END,
    Campaign,
    CampaignPhase,
    Category,
    RoutingRule,
    Unit,
    User,
)
from engine.security import hash_password
from engine.titles import parse_titles
from engine.workflow import Workflow, read_toml_file


def read_toml(path: Path) -> dict[str, Any]:
    """The file as a dict; missing, oversized, not UTF-8 or not TOML: ``ConfigError`` naming it."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    return read_toml_file(path, ConfigError)


def load_organisation(
    uow: UnitOfWork, data: dict[str, Any], *, source: str = "<memory>", password: str = "demo"
) -> dict[str, int]:
    """Create or update units, users and general routing rules from ``data``.

    Every user's role must be a role of the policy. Unit names are ``{zh_CN, en}`` tables;
    a missing language is a ``ConfigError`` naming the file and item.
    """
    uow.read_mostly_changed()
    session = uow.session
    roles = uow.policy.role_names()
    units: dict[str, Unit] = {u.code: u for u in session.scalars(select(Unit))}
    counts = {"units": 0, "users": 0, "routing": 0}
    for i, item in enumerate(data.get("units", []), start=1):
        code = _need(item, "code", source, f"unit #{i}")
        unit = units.get(code) or Unit(code=code)
        names = _names(item, source, f"unit {code!r}")
        unit.name, unit.name_zh = names["en"], names["zh_CN"]
        unit.kind = item.get("kind", "department")
        parent = item.get("parent")
        if parent is not None:
            if parent not in units:
                raise ConfigError(
                    f"{source}: unit {code!r}: parent {parent!r} is not defined above it"
                )
            unit.parent = units[parent]
        units[code] = unit
        session.add(unit)
        counts["units"] += 1
    session.flush()
    existing = {u.username: u for u in session.scalars(select(User))}
    hashed = hash_password(password) if data.get("users") else None
    for i, item in enumerate(data.get("users", []), start=1):
        username = _need(item, "username", source, f"user #{i}")
        role = _need(item, "role", source, f"user {username!r}")
        if role not in roles:
            raise ConfigError(
                f"{source}: user {username!r}: unknown role {role!r}; "
                f"the policy's roles are {', '.join(sorted(roles))}"
            )
        unit_code = item.get("unit")
        if unit_code is not None and unit_code not in units:
            raise ConfigError(f"{source}: user {username!r}: unknown unit {unit_code!r}")
        user = existing.get(username)
        if user is None:
            user = User(username=username, password_hash=hashed)
            session.add(user)
        user.display_name = item.get("name", username)
        user.role = role
        user.unit = units[unit_code] if unit_code else None
        user.email = item.get("email")
        counts["users"] += 1
    if "routing" in data:
        session.execute(delete(RoutingRule).where(RoutingRule.campaign_id.is_(None)))
        for i, item in enumerate(data["routing"], start=1):
            unit_code = _need(item, "unit", source, f"routing rule #{i}")
            if unit_code not in units:
                raise ConfigError(f"{source}: routing rule #{i}: unknown unit {unit_code!r}")
            if not item.get("category") and not item.get("area"):
                raise ConfigError(f"{source}: routing rule #{i}: needs a category, an area or both")
            session.add(
                RoutingRule(
                    category=item.get("category"), area=item.get("area"), unit=units[unit_code]
                )
            )
            counts["routing"] += 1
    session.flush()
    return counts


def load_organisation_file(uow: UnitOfWork, path: Path, **kw: Any) -> dict[str, int]:
    return load_organisation(uow, read_toml(path), source=str(path), **kw)


def upsert_campaign(
    uow: UnitOfWork,
    data: dict[str, Any],
    *,
    source: str = "<memory>",
) -> Campaign:
    """Create the campaign described by ``data`` (or update the one with its code).

    Its workflow must be one of the registry's and its calendar one the context knows.
    """
    # The campaign's clock is kept in each process's read cache: drop this process's copy
    # now and once the change commits (other processes' copies expire within seconds).
    uow.read_mostly_changed()
    session = uow.session
    code = _need(data, "code", source, "campaign")
    tz = _need(data, "timezone", source, f"campaign {code!r}")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: campaign {code!r}: unknown timezone {tz!r} (use e.g. Asia/Shanghai)"
        ) from None
    kind = data.get("kind", "campaign")
    if kind not in ("campaign", "continuous"):
        raise ConfigError(
            f"{source}: campaign {code!r}: kind must be 'campaign' (dates and a deadline) or "
            f"'continuous' (a standing service: no end, no deadline), got {kind!r}"
        )
    continuous = kind == "continuous"
    starts = _date(data, "starts_on", source, code)
    ends: date
    deadline: Any
    if continuous:
        for key in ("ends_on", "rectification_deadline"):
            if key in data:
                raise ConfigError(
                    f"{source}: campaign {code!r}: {key}: a continuous programme has none"
                )
        ends, deadline = OPEN_END, NO_DEADLINE
    else:
        ends = _date(data, "ends_on", source, code)
        if ends < starts:
            raise ConfigError(
                f"{source}: campaign {code!r}: ends_on {ends} is before starts_on {starts}"
            )
        deadline = data.get("rectification_deadline")
        if isinstance(deadline, date) and not isinstance(deadline, datetime):
            deadline = datetime(deadline.year, deadline.month, deadline.day, tzinfo=zone)
        if not isinstance(deadline, datetime):
            raise ConfigError(
                f"{source}: campaign {code!r}: rectification_deadline must be a date or a time"
            )
        if deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=zone)
    wf_name = data.get("workflow", "consultation")
    try:
        workflow = uow.registry.get(wf_name, data.get("workflow_version"))
    except NotFound as exc:
        raise ConfigError(f"{source}: campaign {code!r}: {exc.message}") from None
    calendar_name = str(data.get("calendar", "CN"))
    try:
        uow.ctx.calendar(calendar_name)
    except ConfigError as exc:
        raise ConfigError(f"{source}: campaign {code!r}: {exc.message}") from None
    phases = _phases(data.get("phases", []), workflow, starts, ends, source, code)
    campaign = session.scalars(select(Campaign).where(Campaign.code == code)).first()
    if campaign is None:
        campaign = Campaign(code=code, ticket_seq=0)
        session.add(campaign)
    elif campaign.workflow_name != workflow.name and campaign.ticket_seq > 0:
        # Running tickets keep their own workflow and version; a programme's process does not
        # change under them (a new version is moved to with `rectiflow workflow migrate`).
        raise ConfigError(
            f"{source}: campaign {code!r}: workflow: it runs {campaign.workflow_name!r} and has "
            f"tickets; it cannot switch to {workflow.name!r}"
        )
    names = _names(data, source, f"campaign {code!r}")
    campaign.name, campaign.name_zh = names["en"], names["zh_CN"]
    campaign.timezone = tz
    campaign.starts_on = starts
    campaign.ends_on = ends
    campaign.rectification_deadline = ensure_utc(deadline)
    campaign.continuous = continuous
    campaign.number_prefix = str(data.get("number_prefix", code))
    campaign.workflow_name = workflow.name
    campaign.workflow_version = workflow.version
    campaign.calendar = calendar_name
    campaign.personal_data_retention_days = _retention_days(data, source, code)
    session.flush()
    known = {
        c.code: c
        for c in session.scalars(select(Category).where(Category.campaign_id == campaign.id))
    }
    for position, item in enumerate(data.get("categories", []), start=1):
        ccode = _need(item, "code", source, f"category #{position}")
        category = known.get(ccode) or Category(campaign_id=campaign.id, code=ccode)
        names = _names(item, source, f"category {ccode!r}")
        category.name, category.name_zh = names["en"], names["zh_CN"]
        category.outside_duties = bool(item.get("outside_duties", False))
        category.position = position
        session.add(category)
    session.execute(delete(CampaignPhase).where(CampaignPhase.campaign_id == campaign.id))
    for position, phase in enumerate(phases, start=1):
        session.add(CampaignPhase(campaign_id=campaign.id, position=position, **phase))
    session.flush()
    return campaign


def _retention_days(data: dict[str, Any], source: str, code: str) -> int | None:
    """``personal_data_retention_days``: days after a ticket closes that the citizen's contact
    data is kept (engine.personal_data); absent = kept until erased on request."""
    value = data.get("personal_data_retention_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 36500:
        raise ConfigError(
            f"{source}: campaign {code!r}: personal_data_retention_days must be a whole number "
            f"of days from 1 to 36500, got {value!r}"
        )
    return value


def load_campaign_file(uow: UnitOfWork, path: Path) -> Campaign:
    return upsert_campaign(uow, read_toml(path), source=str(path))


def _names(item: dict[str, Any], source: str, what: str) -> dict[str, str]:
    """A ``name = {zh_CN = ..., en = ...}`` entry, both languages required."""
    _need(item, "name", source, what)
    try:
        return parse_titles(item["name"])
    except ValueError as exc:
        raise ConfigError(f"{source}: {what}: name: {exc}") from None


def _phases(
    items: Any, workflow: Workflow, starts: date, ends: date, source: str, code: str
) -> list[dict[str, Any]]:
    """The campaign's phases, checked: each has a code, a name and dates inside the
    campaign; none runs backwards; they follow each other without overlapping; each state
    they govern exists and is governed by one phase only. The error names file and phase."""
    if not isinstance(items, list):
        raise ConfigError(f"{source}: campaign {code!r}: phases must be a list of [[phases]]")
    out: list[dict[str, Any]] = []
    governed: dict[str, str] = {}
    for i, item in enumerate(items, start=1):
        pcode = _need(item, "code", source, f"campaign {code!r}: phase #{i}")
        what = f"campaign {code!r}: phase {pcode!r}"
        if any(p["code"] == pcode for p in out):
            raise ConfigError(f"{source}: {what}: declared twice")
        first = _date(item, "starts_on", source, code, what)
        last = _date(item, "ends_on", source, code, what)
        if last < first:
            raise ConfigError(
                f"{source}: {what}: runs backwards (ends_on {last} is before starts_on {first})"
            )
        if first < starts or last > ends:
            raise ConfigError(
                f"{source}: {what}: {first} – {last} lies outside the campaign ({starts} – {ends})"
            )
        if out and first <= out[-1]["ends_on"]:
            before = out[-1]
            raise ConfigError(
                f"{source}: {what}: starts on {first}, which overlaps phase {before['code']!r} "
                f"({before['starts_on']} – {before['ends_on']}); phases follow each other in order"
            )
        names = _names(item, source, what)
        states = item.get("governs", [])
        if not isinstance(states, list) or not all(isinstance(s, str) for s in states):
            raise ConfigError(f"{source}: {what}: governs must be a list of state names")
        for state in states:
            if state not in workflow.states:
                raise ConfigError(
                    f"{source}: {what}: governs unknown state {state!r}; workflow "
                    f"{workflow.name!r} has {', '.join(workflow.states)}"
                )
            if state in governed:
                raise ConfigError(
                    f"{source}: {what}: state {state!r} is already governed by phase "
                    f"{governed[state]!r}"
                )
            governed[state] = pcode
        out.append(
            {
                "code": pcode,
                "name": names["en"],
                "name_zh": names["zh_CN"],
                "starts_on": first,
                "ends_on": last,
                "governs": ",".join(states),
            }
        )
    return out


def _need(item: dict[str, Any], key: str, source: str, what: str) -> Any:
    if not isinstance(item, dict) or item.get(key) in (None, ""):
        raise ConfigError(f"{source}: {what}: missing {key!r}")
    return item[key]


def _date(data: dict[str, Any], key: str, source: str, code: str, what: str | None = None) -> date:
    value = data.get(key)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(
        f"{source}: {what or f'campaign {code!r}'}: {key} must be a date like 2005-02-25, "
        f"got {value!r}"
    )
