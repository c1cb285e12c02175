"""Administration: users, the unit tree, campaigns, routing rules and API tokens.

Every function takes the caller's unit of work and the acting user, asks the
policy (``admin.users``, ``admin.units``, ``admin.campaigns``, ``admin.routing``,
``admin.tokens``), validates everything before writing anything, and records
the change in the admin log (``engine.adminlog``) inside the same transaction:
either the change and its log row are committed together, or neither is.
Refusals are ``ValidationError``/``NotFound``/``NotPermitted`` with an English
sentence, a ``message_id`` and ``params`` an adapter can translate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import select

from engine import adminlog
from engine import tokens as api_tokens
from engine.context import UnitOfWork
from engine.errors import ConfigError, NotFound, ValidationError
from engine.models import Campaign, RoutingRule, Unit, User
from engine.organisation import read_toml, upsert_campaign
from engine.policy import SYSTEM_ROLE, Who
from engine.security import check_password, hash_password
from engine.web_sessions import end_user_sessions

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
UNIT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
UNIT_KINDS = ("bureau", "department", "station", "brigade", "office")
PASSWORD_MIN = 10
# The commonest choices, refused whatever their length.
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password12", "password123", "1234567890", "12345678910",
        "qwertyuiop", "qwerty1234", "1qaz2wsx3edc", "abc1234567", "iloveyou12", "admin12345",
        "administrator", "demo123456", "welcome123", "changeme123", "a123456789", "woaini1314",
        "zxcvbnm123", "0123456789",
    }
)  # fmt: skip


def _refuse(message: str, field: str, what: str, message_id: str, **params: Any) -> NoReturn:
    raise ValidationError(message, fields={field: what}, message_id=message_id, params=params)


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is too weak (an English phrase), or None when it will do."""
    if len(password) < PASSWORD_MIN:
        return f"is too short ({len(password)} characters; at least {PASSWORD_MIN})"
    if password.lower() in COMMON_PASSWORDS:
        return "is one of the commonest passwords"
    if username and username.lower() in password.lower():
        return "contains the username"
    if len(set(password)) < 5:
        return "repeats too few different characters"
    classes = sum(
        (
            any(c.isalpha() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 2:
        return "needs letters and digits or symbols, not only one kind"
    return None


def _check_password(password: str, username: str, field: str = "password") -> None:
    problem = password_problem(password, username)
    if problem is not None:
        _refuse(
            f"the password {problem}",
            field,
            problem,
            "admin.weak_password",
            problem=problem,
            minimum=PASSWORD_MIN,
        )


# -- users ------------------------------------------------------------------


@dataclass(frozen=True)
class UserInfo:
    username: str
    display_name: str
    role: str
    unit: str | None
    active: bool
    must_change_password: bool


def _info(user: User) -> UserInfo:
    return UserInfo(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        unit=user.unit.code if user.unit is not None else None,
        active=user.active,
        must_change_password=user.must_change_password,
    )


def _user(uow: UnitOfWork, username: str) -> User:
    user = uow.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(
            f"no user {username!r}", message_id="admin.no_user", params={"username": username}
        )
    return user


def _unit(uow: UnitOfWork, code: str | None, field: str = "unit") -> Unit | None:
    if not code:
        return None
    unit = uow.session.scalars(select(Unit).where(Unit.code == code)).first()
    if unit is None:
        _refuse(f"there is no unit {code!r}", field, "unknown unit", "admin.no_unit", unit=code)
    return unit


def _check_role(uow: UnitOfWork, role: str) -> None:
    roles = uow.policy.role_names() - {SYSTEM_ROLE}
    if role not in roles:
        _refuse(
            f"there is no role {role!r}; roles are {', '.join(sorted(roles))}",
            "role",
            "unknown role",
            "admin.no_role",
            role=role,
        )


def create_user(
    uow: UnitOfWork,
    actor: Who,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    unit: str | None = None,
    email: str | None = None,
) -> UserInfo:
    """A new active user who must choose their own password at the first sign-in.

    Refused: a name already taken (by an active or a deactivated user), a malformed
    name, an unknown role or unit, a weak first password."""
    uow.policy.require(actor, "admin.users")
    username = (username or "").strip().lower()
    if not USERNAME.match(username):
        _refuse(
            f"the username {username!r} must be 2 to 64 lower-case letters, digits, dots, "
            "dashes or underscores",
            "username",
            "2 to 64 of a-z 0-9 . _ -",
            "admin.bad_username",
            username=username,
        )
    if uow.session.scalar(select(User.id).where(User.username == username)) is not None:
        _refuse(
            f"the username {username!r} is taken; choose another",
            "username",
            "is taken",
            "admin.username_taken",
            username=username,
        )
    _check_role(uow, role)
    unit_row = _unit(uow, unit)
    _check_password(password, username)
    user = User(
        username=username,
        display_name=(display_name or "").strip() or username,
        role=role,
        unit=unit_row,
        email=(email or "").strip() or None,
        password_hash=hash_password(password),
        active=True,
        must_change_password=True,
    )
    uow.session.add(user)
    uow.session.flush()
    adminlog.record(
        uow, actor, "user.create", username, {"role": role, "unit": unit, "email": user.email}
    )
    return _info(user)


def update_user(
    uow: UnitOfWork,
    actor: Who,
    username: str,
    *,
    display_name: str | None = None,
    role: str | None = None,
    unit: str | None = None,
    email: str | None = None,
) -> UserInfo:
    """Change a user's name, role, unit or e-mail (None leaves a value as it is; ``unit=""``
    takes the user out of any unit)."""
    uow.policy.require(actor, "admin.users")
    user = _user(uow, username)
    changes: dict[str, Any] = {}
    if display_name is not None and display_name.strip() != user.display_name:
        user.display_name = display_name.strip() or user.username
        changes["display_name"] = user.display_name
    if role is not None and role != user.role:
        _check_role(uow, role)
        user.role = role
        changes["role"] = role
    if unit is not None:
        unit_row = _unit(uow, unit)
        if (unit_row.id if unit_row else None) != user.unit_id:
            user.unit = unit_row
            changes["unit"] = unit or None
    if email is not None and (email.strip() or None) != user.email:
        user.email = email.strip() or None
        changes["email"] = user.email
    if changes:
        uow.session.flush()
        adminlog.record(uow, actor, "user.update", username, changes)
    return _info(user)


def set_active(uow: UnitOfWork, actor: Who, username: str, active: bool) -> UserInfo:
    """Deactivate (or reactivate) a user: a deactivated user cannot sign in, and their API
    tokens stop working; their name stays on the records they made. Nobody deactivates
    themselves (an installation must keep an administrator)."""
    uow.policy.require(actor, "admin.users")
    user = _user(uow, username)
    if not active and user.username == actor.username:
        _refuse(
            "you cannot deactivate your own account",
            "username",
            "is you",
            "admin.deactivate_self",
        )
    if user.active != active:
        user.active = active
        uow.session.flush()
        if not active:
            end_user_sessions(uow, user.id, now=uow.now(), reason="deactivated")
        adminlog.record(uow, actor, "user.activate" if active else "user.deactivate", username)
    return _info(user)


def reset_password(uow: UnitOfWork, actor: Who, username: str, new_password: str) -> UserInfo:
    """Give a user a new password that they must change at their next sign-in."""
    uow.policy.require(actor, "admin.users")
    user = _user(uow, username)
    _check_password(new_password, user.username)
    user.password_hash = hash_password(new_password)
    user.must_change_password = True
    uow.session.flush()
    adminlog.record(uow, actor, "user.reset_password", username)
    return _info(user)


def change_own_password(
    uow: UnitOfWork, actor: Who, *, current_password: str, new_password: str
) -> None:
    """A signed-in user changes their own password (any role: no admin permission needed).

    Refused: a wrong current password, a weak new one, the same one again."""
    user = _user(uow, actor.username)
    if not check_password(user.password_hash, current_password):
        _refuse(
            "the current password is not right",
            "current_password",
            "is not right",
            "admin.wrong_password",
        )
    if new_password == current_password:
        _refuse(
            "the new password must differ from the current one",
            "new_password",
            "is the current one",
            "admin.same_password",
        )
    _check_password(new_password, user.username, "new_password")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    uow.session.flush()
    adminlog.record(uow, actor, "user.change_own_password", user.username)


def must_change_password(uow: UnitOfWork, user_id: int) -> bool:
    """True when the user must choose a new password before anything else."""
    return bool(uow.session.scalar(select(User.must_change_password).where(User.id == user_id)))


# -- units ------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in UNIT_KINDS:
        _refuse(
            f"the kind {kind!r} is not one of {', '.join(UNIT_KINDS)}",
            "kind",
            "unknown kind",
            "admin.bad_unit_kind",
            kind=kind,
        )


def create_unit(
    uow: UnitOfWork,
    actor: Who,
    *,
    code: str,
    name: str,
    name_zh: str,
    kind: str,
    parent: str | None = None,
) -> Unit:
    """A new unit under ``parent`` (None: a root of the tree), named in English and Chinese."""
    uow.policy.require(actor, "admin.units")
    code = (code or "").strip().lower()
    if not UNIT_CODE.match(code):
        _refuse(
            f"the unit code {code!r} must be lower-case letters, digits, dashes or underscores",
            "code",
            "1 to 64 of a-z 0-9 _ -",
            "admin.bad_unit_code",
            code=code,
        )
    if uow.session.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        _refuse(
            f"the unit code {code!r} is taken", "code", "is taken", "admin.unit_taken", code=code
        )
    if not (name or "").strip() or not (name_zh or "").strip():
        _refuse(
            "the unit needs a name in English and in Chinese", "name", "is required",
            "admin.unit_name",
        )  # fmt: skip
    _check_kind(kind)
    parent_row = _unit(uow, parent, "parent")
    unit = Unit(code=code, name=name.strip(), name_zh=name_zh.strip(), kind=kind, parent=parent_row)
    uow.session.add(unit)
    uow.session.flush()
    adminlog.record(
        uow,
        actor,
        "unit.create",
        code,
        {"name": unit.name, "name_zh": unit.name_zh, "kind": kind, "parent": parent},
    )
    return unit


def update_unit(
    uow: UnitOfWork,
    actor: Who,
    code: str,
    *,
    name: str | None = None,
    name_zh: str | None = None,
    kind: str | None = None,
    parent: str | None = None,
) -> Unit:
    """Rename a unit, change its kind, or move it under another unit (``parent=""``: to the
    root). Moving a unit under itself or under one of its own descendants is refused: the
    tree would become a loop."""
    uow.policy.require(actor, "admin.units")
    unit = _unit(uow, code, "code")
    assert unit is not None
    changes: dict[str, Any] = {}
    if name is not None and name.strip() and name.strip() != unit.name:
        unit.name = name.strip()
        changes["name"] = unit.name
    if name_zh is not None and name_zh.strip() and name_zh.strip() != unit.name_zh:
        unit.name_zh = name_zh.strip()
        changes["name_zh"] = unit.name_zh
    if kind is not None and kind != unit.kind:
        _check_kind(kind)
        unit.kind = kind
        changes["kind"] = kind
    if parent is not None:
        new_parent = _unit(uow, parent, "parent")
        if (new_parent.id if new_parent else None) != unit.parent_id:
            step = new_parent
            while step is not None:
                if step.id == unit.id:
                    _refuse(
                        f"{code} cannot move under {parent}: {parent} is {code} itself or "
                        f"one of its own sub-units",
                        "parent",
                        "is the unit itself or below it",
                        "admin.unit_loop",
                        unit=code,
                        parent=parent,
                    )
                step = step.parent
            unit.parent = new_parent
            changes["parent"] = parent or None
    if changes:
        uow.session.flush()
        adminlog.record(uow, actor, "unit.update", code, changes)
    return unit


# -- campaigns --------------------------------------------------------------


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def save_campaign(
    uow: UnitOfWork, actor: Who, data: dict[str, Any], *, source: str = "the form"
) -> Campaign:
    """Create a campaign, or edit the one with the same code, from campaign-file data.

    Besides the campaign file's own checks (dates, timezone, workflow, calendar), a
    rectification deadline before the campaign's start is refused."""
    uow.policy.require(actor, "admin.campaigns")
    code = str(data.get("code") or "")
    starts = _as_date(data.get("starts_on"))
    deadline = data.get("rectification_deadline")
    if isinstance(deadline, str):  # from a form: "2026-04-15" or "2026-04-15T00:00+08:00"
        try:
            moment = datetime.fromisoformat(deadline)
            parsed: date = moment.date() if len(deadline) == 10 else moment
        except ValueError:
            raise ValidationError(
                f"{source}: the rectification deadline {deadline!r} is not a date like 2026-04-15",
                fields={"rectification_deadline": "not a date"},
                message_id="admin.bad_deadline",
            ) from None
        data = {**data, "rectification_deadline": parsed}
        deadline = parsed
    deadline_day = _as_date(deadline)
    if starts is not None and deadline_day is not None and deadline_day < starts:
        raise ValidationError(
            f"{source}: campaign {code!r}: the rectification deadline {deadline_day} is before "
            f"the campaign starts ({starts})",
            fields={"rectification_deadline": "is before the start"},
            message_id="admin.deadline_before_start",
            params={"deadline": str(deadline_day), "starts_on": str(starts)},
        )
    existed = uow.session.scalar(select(Campaign.id).where(Campaign.code == code)) is not None
    try:
        campaign = upsert_campaign(uow, data, source=source)
    except ConfigError as exc:
        raise ValidationError(exc.message, message_id="admin.bad_campaign") from None
    adminlog.record(
        uow,
        actor,
        "campaign.update" if existed else "campaign.create",
        campaign.code,
        {
            "name": campaign.name,
            "starts_on": campaign.starts_on,
            "ends_on": campaign.ends_on,
            "rectification_deadline": campaign.rectification_deadline,
            "workflow": f"{campaign.workflow_name} v{campaign.workflow_version}",
            "categories": [
                c.get("code") for c in data.get("categories", []) if isinstance(c, dict)
            ],
        },
    )
    return campaign


def load_campaign_file(uow: UnitOfWork, actor: Who, path: Path) -> Campaign:
    """``save_campaign`` from a campaign TOML file."""
    try:
        data = read_toml(path)
    except ConfigError as exc:
        raise ValidationError(exc.message, message_id="admin.bad_campaign") from None
    return save_campaign(uow, actor, data, source=str(path))


def close_intake(uow: UnitOfWork, actor: Who, code: str, *, reopen: bool = False) -> Campaign:
    """Stop recording new opinions in a campaign from now on (``reopen``: accept them again).
    Tickets already recorded go on as before."""
    uow.policy.require(actor, "admin.campaigns")
    campaign = uow.session.scalars(select(Campaign).where(Campaign.code == code)).first()
    if campaign is None:
        raise NotFound(
            f"no campaign {code!r}", message_id="admin.no_campaign", params={"campaign": code}
        )
    if reopen and campaign.intake_closed_at is not None:
        campaign.intake_closed_at = None
        uow.session.flush()
        adminlog.record(uow, actor, "campaign.reopen_intake", code)
    elif not reopen and campaign.intake_closed_at is None:
        campaign.intake_closed_at = uow.now()
        uow.session.flush()
        adminlog.record(uow, actor, "campaign.close_intake", code)
    return campaign


# -- routing ----------------------------------------------------------------


def add_routing_rule(
    uow: UnitOfWork,
    actor: Who,
    *,
    unit: str,
    category: str | None = None,
    area: str | None = None,
    campaign: str | None = None,
) -> RoutingRule:
    """A rule sending a category, an area (town), or both to a unit, for every campaign or one."""
    uow.policy.require(actor, "admin.routing")
    category = (category or "").strip() or None
    area = (area or "").strip() or None
    if category is None and area is None:
        _refuse(
            "a routing rule needs a category, an area or both",
            "category",
            "category or area required",
            "admin.rule_empty",
        )
    unit_row = _unit(uow, unit)
    if unit_row is None:
        _refuse("a routing rule needs a unit", "unit", "is required", "admin.rule_unit")
    campaign_id = None
    if campaign:
        campaign_id = uow.session.scalar(select(Campaign.id).where(Campaign.code == campaign))
        if campaign_id is None:
            _refuse(
                f"there is no campaign {campaign!r}",
                "campaign",
                "unknown campaign",
                "admin.no_campaign",
                campaign=campaign,
            )
    rule = RoutingRule(category=category, area=area, unit=unit_row, campaign_id=campaign_id)
    uow.session.add(rule)
    uow.session.flush()
    adminlog.record(
        uow,
        actor,
        "routing.add",
        f"rule {rule.id}",
        {"category": category, "area": area, "unit": unit, "campaign": campaign},
    )
    return rule


def delete_routing_rule(uow: UnitOfWork, actor: Who, rule_id: int) -> None:
    uow.policy.require(actor, "admin.routing")
    rule = uow.session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(
            f"no routing rule {rule_id}", message_id="admin.no_rule", params={"rule": rule_id}
        )
    data = {"category": rule.category, "area": rule.area, "unit": rule.unit.code}
    uow.session.delete(rule)
    uow.session.flush()
    adminlog.record(uow, actor, "routing.delete", f"rule {rule_id}", data)


# -- API tokens -------------------------------------------------------------


def issue_token(
    uow: UnitOfWork, actor: Who, username: str, *, name: str = ""
) -> api_tokens.IssuedToken:
    """A new API token acting as ``username``; the value is in the result only (never logged)."""
    uow.policy.require(actor, "admin.tokens")
    issued = api_tokens.create_token(uow.session, username, now=uow.now(), name=name)
    adminlog.record(
        uow, actor, "token.issue", f"token {issued.id}", {"user": issued.username, "name": name}
    )
    return issued


def revoke_token(uow: UnitOfWork, actor: Who, token_id: int) -> api_tokens.TokenInfo:
    uow.policy.require(actor, "admin.tokens")
    info = api_tokens.revoke_token(uow.session, token_id, now=uow.now())
    adminlog.record(uow, actor, "token.revoke", f"token {token_id}", {"user": info.username})
    return info
