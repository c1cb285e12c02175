"""The policy: grants from configuration, one answer to can(actor, permission, ticket), and every
bad policy file refused with the file and the item."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.actors import Actor
from engine.errors import ConfigError, NotPermitted
from engine.policy import PERMISSIONS, load_policy_file, parse_policy, people_roles


@dataclass
class T:
    unit_id: int | None
    assignee_id: int | None = None


POLICY = load_policy_file()
OFFICER = Actor("o", "officer", unit_id=7, id=70)


def test_unit_scope_reaches_own_unit_and_assigned_tickets_only() -> None:
    assert POLICY.can(OFFICER, "ticket.view", T(unit_id=7))
    assert POLICY.can(OFFICER, "ticket.view", T(unit_id=8, assignee_id=70))
    assert not POLICY.can(OFFICER, "ticket.view", T(unit_id=8))
    assert not POLICY.can(Actor("x", "officer", unit_id=None, id=1), "ticket.view", T(unit_id=None))
    assert POLICY.can(Actor("s", "supervisor"), "ticket.view", T(unit_id=8))


def test_refusals_say_which_roles_may() -> None:
    with pytest.raises(NotPermitted) as err:
        POLICY.require(OFFICER, "log.verify")
    assert "admin or inspector or supervisor" in err.value.message
    with pytest.raises(NotPermitted, match="belongs to another unit"):
        POLICY.require(OFFICER, "ticket.view", T(unit_id=8), number="2005-0001")


def test_refusals_do_not_name_the_engines_own_role() -> None:
    # The inspector may not fire; the system role may, but nobody can be given it.
    with pytest.raises(NotPermitted) as err:
        POLICY.require(Actor("i", "inspector"), "ticket.fire")
    roles = err.value.details["roles"]
    assert "supervisor" in roles and "system" not in roles
    assert "system" not in err.value.message
    assert people_roles(["system", "clerk", "supervisor"]) == ["clerk", "supervisor"]
    # A step only the engine takes still says so.
    assert people_roles({"system"}) == ["system"]


def test_the_decisions_written_in_the_readme() -> None:
    # Officers do not read the campaign report (web and API alike); supervisors verify the log.
    assert not POLICY.can(OFFICER, "report.view")
    assert POLICY.can(Actor("s", "supervisor"), "log.verify")
    assert not POLICY.can(Actor("c", "citizen"), "ticket.view")
    assert POLICY.is_staff("clerk") and not POLICY.is_staff("citizen")


def test_asking_for_an_unknown_permission_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        POLICY.can(OFFICER, "ticket.teleport")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "[roles] is missing"),
        ({"roles": {"clerk": {"title": {"zh_CN": "受理员", "en": "Clerk"}}}}, "'system'"),
        (
            {"roles": {"clerk": {"title": {"en": "Clerk"}}, "system": {}}},
            "role 'clerk': title must give zh_CN and en",
        ),
        (
            {
                "roles": {
                    "clerk": {"title": {"zh_CN": "受理员", "en": "Clerk"}, "grants": ["fly"]},
                    "system": {"title": {"zh_CN": "系统", "en": "System"}},
                }
            },
            "role 'clerk': unknown permission 'fly'",
        ),
        (
            {
                "roles": {
                    "clerk": {
                        "title": {"zh_CN": "受理员", "en": "Clerk"},
                        "grants": ["ticket.view@town"],
                    },
                    "system": {"title": {"zh_CN": "系统", "en": "System"}},
                }
            },
            "unknown scope 'town'",
        ),
        (
            {
                "roles": {
                    "clerk": {"title": {"zh_CN": "受理员", "en": "Clerk"}, "colour": "red"},
                    "system": {"title": {"zh_CN": "系统", "en": "System"}},
                }
            },
            "unknown key(s) colour",
        ),
    ],
)
def test_bad_policy_files_are_refused_with_file_and_item(data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(data, "config/bad-policy.toml")
    assert err.value.message.startswith("config/bad-policy.toml: ")
    assert fragment in err.value.message


def test_a_policy_file_that_is_not_utf8_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.toml"
    path.write_bytes("[roles.clerk]\ntitle = '受理员'\n".encode("gb18030"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_policy_file(path)


def test_every_permission_is_granted_to_some_role() -> None:
    granted = {p for role in POLICY.roles.values() for p in role.grants}
    assert set(PERMISSIONS) <= granted, sorted(set(PERMISSIONS) - granted)


def test_may_fire_answers_as_check_actor_refuses() -> None:
    """``allowed_triggers`` asks ``may_fire`` (no refusal built); ``fire`` asks ``check_actor``:
    the same answer for every trigger of every workflow, role and unit."""
    from engine.firing import check_actor, may_fire
    from engine.workflow import WorkflowRegistry

    @dataclass
    class Ticket(T):
        number: str = "2005-0001"
        state: str = "received"

    checked = 0
    for workflow in WorkflowRegistry.from_directory().all():
        for spec in workflow.triggers:
            for role in POLICY.roles:
                for actor in (Actor("a", role, unit_id=7, id=70), Actor("b", role, id=71)):
                    for ticket in (Ticket(unit_id=7), Ticket(unit_id=8), Ticket(8, 71)):
                        try:
                            check_actor(POLICY, spec, ticket, actor)
                            refused = False
                        except NotPermitted:
                            refused = True
                        assert may_fire(POLICY, spec, ticket, actor) is not refused
                        checked += 1
    assert checked > 100
