"""Who can act on a ticket now, and who must: the people notices go to.

Everything here is derived from the workflow and the policy, never from state or
trigger names. Someone *can act* on a ticket when they take part in its workflow
(a trigger names their role) and can move it in its current state: fire one of
the triggers from that state (``engine.firing.check_actor``: the policy's
``ticket.fire`` grant and scope, then the trigger's roles), or, as a supervisor of
that workflow, escalate it (``ticket.escalate``). Someone *must act* when the
ticket waits for them: its officer when the officer can fire a trigger in the
state; otherwise those who can fire one and hold the queue the state is listed
in (a unit-scoped queue: people of the ticket's unit), the unit's leaders first.

``People`` reads the active users once per transaction or sweep chunk, or with the
context's read cache once in its time to live, and keeps each answer with the users
it was drawn from, so asking for the notices of a transition or a batch is mostly a
dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from engine import firing  # a module import: firing writes the notices this module decides
from engine.actors import Actor
from engine.errors import NotPermitted
from engine.models import User
from engine.policy import Policy
from engine.readcache import ReadCache
from engine.workflow import Workflow, WorkflowRegistry

users_t = cast(Table, User.__table__)

# The role that dispatches inside a unit (also a ladder recipient: "unit_leader").
UNIT_LEADER = "unit_leader"

_ACTIVE_USERS = (
    select(users_t.c.id, users_t.c.username, users_t.c.role, users_t.c.unit_id)
    .where(users_t.c.active.is_(True))
    .order_by(users_t.c.id)
)


@dataclass(frozen=True)
class TicketView:
    """What deciding who acts reads from a ticket (a row, or the row a transition leaves)."""

    id: int
    number: str
    workflow_name: str
    workflow_version: int
    state: str
    unit_id: int | None
    assignee_id: int | None

    @classmethod
    def of(cls, row: Any, **changes: Any) -> TicketView:
        fields = {
            name: getattr(row, name)
            for name in (
                "id",
                "number",
                "workflow_name",
                "workflow_version",
                "state",
                "unit_id",
                "assignee_id",
            )
        }
        fields.update(changes)
        return cls(**fields)


def acting_key(ticket: Any) -> tuple[Any, ...]:
    """What who can act on ``ticket``, and who must, depends on: its workflow, state, unit
    and officer (its id and number only name it in refusals). Tickets with the same key get
    the same answers."""
    return (
        ticket.workflow_name,
        ticket.workflow_version,
        ticket.state,
        ticket.unit_id,
        ticket.assignee_id,
    )


def _roles_in(workflow: Workflow) -> frozenset[str]:
    return frozenset(role for spec in workflow.triggers for role in spec.roles)


@dataclass(frozen=True)
class _Snapshot:
    """The active users as read at one moment, and the answers drawn from them."""

    users: dict[int, Actor]
    must_act: dict[tuple[Any, ...], tuple[int, ...]] = field(default_factory=dict)
    can_fire: dict[tuple[Any, ...], bool] = field(default_factory=dict)


class People:
    """The active users of the installation and what each can do on a ticket, cached."""

    def __init__(
        self,
        conn: Connection,
        policy: Policy,
        registry: WorkflowRegistry,
        cache: ReadCache | None = None,
    ) -> None:
        self.conn = conn
        self.policy = policy
        self.registry = registry
        # With the context's read cache, the users are read once in its time to live (a few
        # seconds: a user created or deactivated that long ago is seen) instead of once per
        # transition.
        self.cache = cache
        self._snap: _Snapshot | None = None

    def _load_users(self) -> _Snapshot:
        users = {
            r.id: Actor(username=r.username, role=r.role, unit_id=r.unit_id, id=r.id)
            for r in self.conn.execute(_ACTIVE_USERS)
        }
        return _Snapshot(users)

    def _snapshot(self) -> _Snapshot:
        if self._snap is None:
            if self.cache is not None:
                self._snap = self.cache.get(("acting", "active_users"), self._load_users)
            else:
                self._snap = self._load_users()
        return self._snap

    @property
    def users(self) -> dict[int, Actor]:
        """The active users by id (never changed in place: a cached copy may be shared)."""
        return self._snapshot().users

    def _key(self, user: Actor, ticket: TicketView) -> tuple[Any, ...]:
        # What the answer depends on: the user's role and unit, the ticket's workflow, state
        # and unit, and whether the ticket is assigned to this very user.
        return (
            user.role,
            user.unit_id,
            ticket.workflow_name,
            ticket.workflow_version,
            ticket.state,
            ticket.unit_id,
            ticket.assignee_id == user.id,
        )

    def can_fire(self, user: Actor, ticket: TicketView) -> bool:
        """Whether ``user`` may fire some trigger on ``ticket`` in its state."""
        key = self._key(user, ticket)
        answers = self._snapshot().can_fire
        found = answers.get(key)
        if found is None:
            workflow = self.registry.get(ticket.workflow_name, ticket.workflow_version)
            specs = workflow.triggers_from(ticket.state)
            found = False
            # Cheap necessary conditions first (a trigger names the role; the grant reaches
            # the ticket), so most people are ruled out without a refusal being built;
            # check_actor has the last word.
            if any(user.role in spec.roles for spec in specs) and self.policy.can(
                user, "ticket.fire", ticket
            ):
                found = self._check_actor(specs, user, ticket)
            answers[key] = found
        return found

    def _check_actor(self, specs: list[Any], user: Actor, ticket: TicketView) -> bool:
        for spec in specs:
            try:
                firing.check_actor(self.policy, spec, ticket, user)
            except NotPermitted:
                continue
            return True
        return False

    def can_act(self, user_id: int, ticket: TicketView) -> bool:
        """Whether the active user ``user_id`` can move ``ticket`` now (see the module)."""
        user = self.users.get(user_id)
        if user is None:
            return False
        if self.can_fire(user, ticket):
            return True
        workflow = self.registry.get(ticket.workflow_name, ticket.workflow_version)
        return (
            ticket.state not in workflow.final_states
            and user.role in _roles_in(workflow)
            and self.policy.can(user, "ticket.escalate", ticket)
        )

    def who_can_act(self, ticket: TicketView) -> list[int]:
        return [uid for uid in self.users if self.can_act(uid, ticket)]

    def keep_who_can_act(self, user_ids: Iterable[int], ticket: TicketView) -> list[int]:
        return sorted({uid for uid in user_ids if self.can_act(uid, ticket)})

    def must_act(self, ticket: TicketView) -> list[int]:
        """Who the ticket now waits for: its officer, else the queue's people (see the module).

        With the context's read cache the answer is kept as long as the active users it was
        drawn from (it depends only on them, the policy and the workflow, which a process
        loads once); it is kept with the users, for the ticket's workflow, state, unit and
        officer, so a transition asks it once instead of asking every user."""
        answers = self._snapshot().must_act
        key = acting_key(ticket)
        found = answers.get(key)
        if found is None:
            found = answers[key] = tuple(self._must_act(ticket))
        return list(found)

    def _must_act(self, ticket: TicketView) -> list[int]:
        officer = self.users.get(ticket.assignee_id) if ticket.assignee_id is not None else None
        if officer is not None and self.can_fire(officer, ticket):
            return [officer.id] if officer.id is not None else []
        workflow = self.registry.get(ticket.workflow_name, ticket.workflow_version)
        firers = [u for u in self.users.values() if self.can_fire(u, ticket)]
        queues = [q for q in workflow.queues if ticket.state in q.states]

        def holds_queue(user: Actor) -> bool:
            return any(
                self.policy.can(user, q.permission)
                and (
                    q.scope != "unit"
                    or (user.unit_id is not None and user.unit_id == ticket.unit_id)
                )
                for q in queues
            )

        chosen = [u for u in firers if holds_queue(u)] or firers
        leaders = [u for u in chosen if u.role == UNIT_LEADER and u.unit_id == ticket.unit_id]
        return sorted(u.id for u in (leaders or chosen) if u.id is not None)


def goes_back(workflow: Workflow, source: str, dest: str) -> bool:
    """Whether a transition returns the ticket: out of a final state, or to a state nearer
    the start of the workflow than the one it leaves (a send-back, a returned reply, a redo)."""
    if source in workflow.final_states:
        return True
    if source == dest:
        return False
    ranks = workflow.state_ranks
    return ranks.get(dest, 0) < ranks.get(source, 0)
