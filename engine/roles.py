"""The roles of DESIGN.md, "Who uses it"."""

from __future__ import annotations

CITIZEN = "citizen"
CLERK = "clerk"
OFFICER = "officer"
UNIT_LEADER = "unit_leader"
SUPERVISOR = "supervisor"
INSPECTOR = "inspector"
ADMIN = "admin"
SYSTEM = "system"

ROLES: tuple[str, ...] = (
    CITIZEN,
    CLERK,
    OFFICER,
    UNIT_LEADER,
    SUPERVISOR,
    INSPECTOR,
    ADMIN,
    SYSTEM,
)

# Roles that may act only on tickets of their own unit.
UNIT_BOUND_ROLES: frozenset[str] = frozenset({OFFICER, UNIT_LEADER})
