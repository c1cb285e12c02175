"""Who may do what: named permissions granted to roles, with the unit scope they reach.

The grants are configuration (``config/policy.toml``, beside the organisation),
not Python constants. Every adapter — web pages, the JSON API, Open311, the
CLI — and the engine itself ask one question, ``policy.can(actor, permission,
ticket)``, and get the same answer. The permission *names* are the engine's
vocabulary (code asks for them, so they are listed here); which role holds
which permission, and how far it reaches, is the organisation's decision.

Scopes:

- ``all``: every ticket.
- ``unit``: tickets of the actor's own unit, or assigned to the actor (an
  officer who moved unit still reaches what is assigned to them). An actor
  with no unit reaches none. For ``ticket.fire`` the unit scope also keeps an
  assignment inside the actor's unit.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.errors import ConfigError, NotPermitted

ALL = "all"
UNIT = "unit"
SCOPES = (ALL, UNIT)

# The permissions the code asks for, with what each lets a role do.
PERMISSIONS: dict[str, str] = {
    "web.signin": "sign in to the staff pages",
    "ticket.view": "see a ticket, its history and its data",
    "ticket.create": "record an opinion as a ticket",
    "ticket.fire": "fire a workflow trigger (the workflow also names the roles per trigger)",
    "ticket.escalate": "raise a ticket's escalation level by hand",
    "ticket.deadline": "set a new, defined deadline on an overdue ticket",
    "ticket.mark_exemplary": "mark a ticket as an example for the situation report",
    "queue.intake": "work the intake queue (tickets to categorize)",
    "queue.unit": "work the unit's and one's own queue",
    "board.view": "see the overdue board across units",
    "board.reassign": "reassign tickets in bulk from the board",
    "reopen.decide": "decide a citizen's request to reopen a ticket",
    "extension.ask": "ask for a deadline extension",
    "extension.decide": "approve or refuse a deadline extension",
    "import.run": "import opinions from a spreadsheet",
    "duplicates.resolve": "act on near-duplicate groups",
    "report.view": "see a campaign's report",
    "log.view": "search and read the transition log",
    "log.verify": "verify the transition log's chains",
    "log.export": "export the transition log",
    "log.sample": "draw an inspector's sample",
    "admin.users": "create, deactivate and reset users",
    "admin.units": "edit the unit tree",
    "admin.campaigns": "create, edit and close campaigns and programmes",
    "admin.routing": "edit routing rules",
    "admin.tokens": "issue and revoke API tokens",
    "admin.workflows": "list workflow versions, plan and run migrations",
    "personal_data.erase": "erase a citizen's contact data (on request, or when retention ends)",
}

SYSTEM_ROLE = "system"


def people_roles(roles: Iterable[str]) -> list[str]:
    """``roles`` as a refusal names them to a person: sorted, without the engine's own role
    (nobody can be given it) unless it is the only one."""
    ordered = sorted(set(roles))
    return [r for r in ordered if r != SYSTEM_ROLE] or ordered


DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "policy.toml"


class TicketScope(Protocol):
    """What a scope check reads from a ticket (a row, a model, a read-model record)."""

    @property
    def unit_id(self) -> int | None: ...

    @property
    def assignee_id(self) -> int | None: ...


class Who(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def unit_id(self) -> int | None: ...

    @property
    def id(self) -> int | None: ...


@dataclass(frozen=True)
class Role:
    name: str
    title: Mapping[str, str]
    grants: Mapping[str, str]  # permission -> scope
    staff: bool


class Policy:
    """The roles and their grants, as loaded from a policy file."""

    def __init__(self, roles: Iterable[Role]) -> None:
        self.roles: dict[str, Role] = {role.name: role for role in roles}

    # -- the one question --------------------------------------------------

    def can(self, actor: Who, permission: str, ticket: TicketScope | None = None) -> bool:
        """May ``actor`` do ``permission`` (on ``ticket``, when the permission concerns one)?

        Without a ticket the answer is whether the actor holds the permission at all
        (a list is then narrowed with ``ticket_filter``).
        """
        scope = self.scope(actor, permission)
        if scope is None:
            return False
        if ticket is None or scope == ALL:
            return True
        return _in_unit(actor, ticket)

    def require(
        self, actor: Who, permission: str, ticket: TicketScope | None = None, *, number: str = ""
    ) -> None:
        """``NotPermitted`` (saying which roles may, or that the ticket is another unit's)
        unless ``can(actor, permission, ticket)``."""
        if self.can(actor, permission, ticket):
            return
        if self.scope(actor, permission) is None:
            holders = people_roles(self.holders(permission))
            raise NotPermitted(
                f"{PERMISSIONS.get(permission, permission)} needs the role "
                f"{' or '.join(holders) or 'nobody'}; {actor.username} is {actor.role}",
                ticket=number or None,
                details={"permission": permission, "roles": holders},
                message_id="policy.role",
                params={"permission": permission, "roles": holders, "role": actor.role},
            )
        unit = getattr(ticket, "unit_code", None)
        raise NotPermitted(
            f"{number or 'this ticket'} belongs to {unit or 'another unit'}; "
            f"{actor.username} ({actor.role}) may act only on tickets of their own unit — "
            "a supervisor can reassign it",
            ticket=number or None,
            details={"permission": permission, "unit_id": getattr(ticket, "unit_id", None)},
            message_id="policy.unit",
            params={"permission": permission},
        )

    # -- what lists and forms need ----------------------------------------

    def scope(self, actor: Who, permission: str) -> str | None:
        """The scope of ``actor``'s grant of ``permission``, or None when not granted."""
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        role = self.roles.get(actor.role)
        if role is None:
            return None
        return role.grants.get(permission)

    def ticket_filter(self, actor: Who, permission: str = "ticket.view") -> UnitFilter | None:
        """How to narrow a list of tickets to what ``actor`` reaches: None for every ticket,
        else a ``UnitFilter`` (a unit id and the actor's id; no unit reaches only what is
        assigned to the actor). ``NotPermitted`` when the actor holds no such grant."""
        scope = self.scope(actor, permission)
        if scope is None:
            self.require(actor, permission)
        if scope == ALL:
            return None
        return UnitFilter(unit_id=actor.unit_id, user_id=actor.id)

    def unit_bound(self, actor: Who, permission: str = "ticket.fire") -> bool:
        """True when ``actor``'s grant of ``permission`` reaches only their unit."""
        return self.scope(actor, permission) == UNIT

    def holders(self, permission: str) -> list[str]:
        return sorted(name for name, role in self.roles.items() if permission in role.grants)

    def is_staff(self, role: str) -> bool:
        found = self.roles.get(role)
        return found is not None and found.staff

    def role_names(self) -> frozenset[str]:
        return frozenset(self.roles)

    def title(self, role: str, locale: str = "en") -> str:
        found = self.roles.get(role)
        if found is None:
            return role
        return found.title.get(locale) or found.title.get("en") or role

    def check_roles(self, roles: Iterable[str], source: str, item: str) -> None:
        """``ConfigError`` naming ``source`` and ``item`` for a role this policy does not know."""
        for name in roles:
            if name not in self.roles:
                raise ConfigError(
                    f"{source}: {item}: unknown role {name!r}; the policy "
                    f"knows {', '.join(sorted(self.roles))}"
                )


@dataclass(frozen=True)
class UnitFilter:
    """Tickets of ``unit_id`` or assigned to ``user_id``."""

    unit_id: int | None
    user_id: int | None


def _in_unit(actor: Who, ticket: TicketScope) -> bool:
    if actor.unit_id is not None and ticket.unit_id == actor.unit_id:
        return True
    return actor.id is not None and ticket.assignee_id == actor.id


def parse_policy(data: Mapping[str, Any], source: str = "<memory>") -> Policy:
    """A Policy from the parsed policy file; ``ConfigError`` names the file and the item."""
    roles_data = data.get("roles")
    if not isinstance(roles_data, Mapping) or not roles_data:
        raise ConfigError(f"{source}: [roles] is missing; declare each role and its grants")
    unknown_keys = set(data) - {"roles"}
    if unknown_keys:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown_keys))}")
    roles: list[Role] = []
    for name, body in roles_data.items():
        item = f"role {name!r}"
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: {item}: expected a table")
        extra = set(body) - {"title", "grants", "staff"}
        if extra:
            raise ConfigError(f"{source}: {item}: unknown key(s) {', '.join(sorted(extra))}")
        title = body.get("title", {})
        if not isinstance(title, Mapping) or not all(
            isinstance(title.get(lang), str) and title.get(lang) for lang in ("zh_CN", "en")
        ):
            raise ConfigError(
                f"{source}: {item}: title must give zh_CN and en, "
                'e.g. title = { zh_CN = "民警", en = "Officer" }'
            )
        grants_raw = body.get("grants", [])
        if not isinstance(grants_raw, list) or not all(isinstance(g, str) for g in grants_raw):
            raise ConfigError(
                f'{source}: {item}: grants must be a list of strings like "ticket.view@unit"'
            )
        grants: dict[str, str] = {}
        for grant in grants_raw:
            permission, _, scope = grant.partition("@")
            scope = scope or ALL
            if permission not in PERMISSIONS:
                raise ConfigError(
                    f"{source}: {item}: unknown permission {permission!r}; "
                    f"permissions are {', '.join(sorted(PERMISSIONS))}"
                )
            if scope not in SCOPES:
                raise ConfigError(
                    f"{source}: {item}: {grant!r}: unknown scope {scope!r}; "
                    f"scopes are {', '.join(SCOPES)}"
                )
            if permission in grants:
                raise ConfigError(f"{source}: {item}: {permission!r} is granted twice")
            grants[permission] = scope
        staff = body.get("staff", False)
        if not isinstance(staff, bool):
            raise ConfigError(f"{source}: {item}: staff must be true or false")
        roles.append(Role(name=name, title=dict(title), grants=grants, staff=staff))
    if SYSTEM_ROLE not in roles_data:
        raise ConfigError(
            f"{source}: the role {SYSTEM_ROLE!r} (the engine's own actor) must be declared"
        )
    return Policy(roles)


def load_policy_file(path: Path | str = DEFAULT_POLICY_FILE) -> Policy:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such policy file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_policy(data, str(path))
