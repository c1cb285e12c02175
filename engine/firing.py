"""Firing a trigger on a ticket: every check, then one chained change.

``fire`` is the hot path. It reads the ticket row, asks the policy whether the
actor reaches the ticket, checks the workflow (the trigger from this state and
the roles it names), the data and the guards, runs the trigger's declared
effects, moves the clock, and writes the ticket (with an optimistic version
check) and its hash-chained log row through the ledger, in the caller's unit of
work, with the notices to whoever must now act (``engine.notices``). On any error
the caller rolls back and nothing is half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from engine import deadlines, notices
from engine.actors import Actor
from engine.context import UnitOfWork
from engine.effects import Effect, apply_effects
from engine.errors import EngineError, InvalidTransition, NotPermitted, ValidationError
from engine.fields import check_data
from engine.guards import GUARDS
from engine.ledger import check_version, load_ticket_row, log_t, write_change
from engine.policy import Policy, people_roles
from engine.rawsql import pipeline
from engine.workflow import TriggerSpec


@dataclass(frozen=True)
class Fired:
    number: str
    trigger: str
    from_state: str
    to_state: str
    version: int
    log_seq: int
    # the ticket columns the change wrote besides state, version, hash and updated_at
    effects: dict[str, Any] = field(default_factory=dict)
    ticket: Any = None  # the ticket row as fire() read it, before the change
    at: datetime | None = None  # the change's time (the ticket's new updated_at)


def check_actor(policy: Policy, spec: TriggerSpec, ticket: Any, actor: Actor) -> None:
    """Raise ``NotPermitted`` unless ``actor`` may fire ``spec`` on ``ticket``: the policy's
    ``ticket.fire`` grant and its unit scope, then the roles the workflow names."""
    policy.require(actor, "ticket.fire", ticket, number=ticket.number)
    if actor.role not in spec.roles:
        roles = people_roles(spec.roles)
        raise NotPermitted(
            f"{spec.name!r} on {ticket.number} needs the role {' or '.join(roles)}; "
            f"{actor.username} is {actor.role}",
            ticket=ticket.number,
            state=ticket.state,
            details={"roles": roles},
            message_id="fire.role",
            params={"trigger": spec.name, "roles": roles, "role": actor.role},
        )


def may_fire(policy: Policy, spec: TriggerSpec, ticket: Any, actor: Actor) -> bool:
    """Whether ``check_actor`` lets ``actor`` fire ``spec`` on ``ticket``, without building
    the refusal (an API answer lists the next triggers, most of them someone else's)."""
    return policy.can(actor, "ticket.fire", ticket) and actor.role in spec.roles


def allowed_triggers(uow: UnitOfWork, ticket: Any, actor: Actor) -> list[TriggerSpec]:
    """The triggers ``actor`` may fire on ``ticket`` now (policy and role; data comes later)."""
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    return [
        spec
        for spec in workflow.triggers_from(ticket.state)
        if may_fire(uow.policy, spec, ticket, actor)
    ]


def why_not(uow: UnitOfWork, ticket: Any, actor: Actor) -> EngineError | None:
    """Why ``actor`` can fire nothing on ``ticket`` now, as the refusal (None when they can).

    A final state (``fire.final``), the policy's refusal (``policy.*``, the same whichever
    trigger), or the roles the next triggers need (``fire.roles``); ``message_id`` and
    ``params`` let a page say it in the reader's language (``engine.messages``).
    """
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    candidates = workflow.triggers_from(ticket.state)
    where = {
        "number": ticket.number,
        "state": ticket.state,
        "workflow": ticket.workflow_name,
        "version": ticket.workflow_version,
    }
    if not candidates:
        return InvalidTransition(
            f"{ticket.number} is in a final state ({ticket.state}); nothing more can happen",
            ticket=ticket.number,
            state=ticket.state,
            message_id="fire.final",
            params=where,
        )
    refusals: list[NotPermitted] = []
    for spec in candidates:
        try:
            check_actor(uow.policy, spec, ticket, actor)
        except NotPermitted as refusal:
            refusals.append(refusal)
        else:
            return None
    if refusals[0].message_id != "fire.role":
        return refusals[0]
    triggers = list(dict.fromkeys(spec.name for spec in candidates))
    roles = people_roles(role for spec in candidates for role in spec.roles)
    return NotPermitted(
        f"{', '.join(triggers)} on {ticket.number} need the role {' or '.join(roles)}; "
        f"{actor.username} is {actor.role}",
        ticket=ticket.number,
        state=ticket.state,
        details={"triggers": triggers, "roles": roles},
        message_id="fire.roles",
        params={**where, "triggers": triggers, "roles": roles, "role": actor.role},
    )


_TIMES_FIRED = (
    select(log_t.c.trigger, func.count())
    .where(
        log_t.c.ticket_id == bindparam("ticket_id"),
        log_t.c.trigger.in_(bindparam("names", expanding=True)),
    )
    .group_by(log_t.c.trigger)
)


def _check_declared_conditions(
    conn: Connection, spec: TriggerSpec, ticket: Any, logged: dict[str, Any], now: datetime
) -> None:
    """The trigger's conditions declared in the workflow file: ``when``, ``before_due``,
    ``max_times``, ``needs_prior`` (one count over the ticket's log, only when declared)."""
    refusals: list[str] = []
    for fname, values in spec.when:
        if logged.get(fname) not in values:
            refusals.append(f"{fname} must be {' or '.join(values)} for {spec.name!r}")
    if spec.before_due and ticket.due_at is not None and now > ticket.due_at:
        refusals.append(
            f"{spec.name!r} is possible only before the due time "
            f"({ticket.due_at.isoformat(timespec='minutes')}), which has passed"
        )
    if spec.max_times is not None or spec.needs_prior:
        names = sorted({spec.name, *spec.needs_prior})
        fired: dict[str, int] = {
            row[0]: int(row[1])
            for row in conn.execute(_TIMES_FIRED, {"ticket_id": ticket.id, "names": names})
        }
        if spec.max_times is not None and fired.get(spec.name, 0) >= spec.max_times:
            refusals.append(
                f"{spec.name!r} may happen {spec.max_times} time(s) on a ticket; "
                f"it already happened {fired.get(spec.name, 0)}"
            )
        missing = [p for p in spec.needs_prior if not fired.get(p)]
        if missing:
            refusals.append(f"{spec.name!r} comes only after {', '.join(missing)}")
    if refusals:
        raise ValidationError(
            f"{spec.name!r} refused on {ticket.number}: " + "; ".join(refusals),
            ticket=ticket.number,
            state=ticket.state,
            details={"conditions": refusals},
        )


def fire(
    uow: UnitOfWork,
    number: str,
    trigger: str,
    *,
    actor: Actor,
    data: dict[str, Any] | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
    reason: str | None = None,
    view: bool = False,
) -> Fired:
    """Fire ``trigger`` on ticket ``number`` as ``actor`` and write the change and its log row.

    Checks, in order: the ticket exists, the version the caller saw is current,
    the workflow allows the trigger from the current state, the policy (the
    ``ticket.fire`` grant and its unit scope) and the trigger's roles, the data,
    the guards. Then runs the trigger's effects, moves the clock, updates the
    ticket with ``WHERE version = expected`` (a concurrent writer makes it a
    ``Conflict``) and appends the hash-chained log row, in the caller's unit of
    work. ``now`` defaults to the context's clock; ``reason`` to ``data['reason']``.
    ``view=True`` reads every column the API shows with the ticket, so the answer is built
    from ``Fired`` without reading the ticket again (``engine.read.api.ticket_after``).
    """
    now = uow.now(now)
    conn = uow.conn
    # On PostgreSQL the row is locked as it is read: a concurrent writer waits (and then
    # reads our version: a Conflict), and our writes go out in one pipeline.
    pg = conn.dialect.name == "postgresql"
    ticket = load_ticket_row(conn, number, view=view, lock=pg)
    check_version(ticket, expected_version)
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    spec = workflow.transition_for(trigger, ticket.state)
    if spec is None:
        allowed = sorted({t.name for t in workflow.triggers_from(ticket.state)})
        known = trigger in workflow.trigger_names()
        what = (
            "is not allowed from"
            if known
            else "is not a trigger of this workflow; it cannot fire from"
        )
        raise InvalidTransition(
            f"{trigger!r} {what} state {ticket.state!r} of {number}; "
            f"allowed now: {', '.join(allowed) or 'nothing (final state)'}",
            ticket=number,
            state=ticket.state,
            details={"allowed": allowed},
        )
    check_actor(uow.policy, spec, ticket, actor)
    checked = check_data(
        conn,
        workflow,
        spec,
        data,
        campaign_id=ticket.campaign_id,
        ticket=number,
        state=ticket.state,
        now=now,
        cache=uow.ctx.cache,
    )
    if (
        "unit" in checked.ids
        and checked.ids["unit"] != actor.unit_id
        and uow.policy.unit_bound(actor, "ticket.fire")
    ):
        raise NotPermitted(
            f"{actor.username} ({actor.role}) can assign only inside their own unit; "
            f"{checked.logged['unit']!r} is another unit — ask a supervisor",
            ticket=number,
            state=ticket.state,
        )
    _check_declared_conditions(conn, spec, ticket, checked.logged, now)
    guard_view = {
        "kind": ticket.kind,
        "assignee_id": ticket.assignee_id,
        "category": ticket.category,
    }
    for guard in spec.guards:
        refusal = GUARDS[guard](guard_view, checked.logged)
        if refusal:
            raise ValidationError(
                f"{trigger!r} refused on {number}: {refusal}",
                ticket=number,
                state=ticket.state,
                details={"guard": guard},
            )
    record = Effect(
        conn=conn,
        ticket=ticket,
        logged=dict(checked.logged),
        ids=checked.ids,
        actor=actor,
        now=now,
        values={},
        cache=uow.ctx.cache,
    )
    with pipeline(conn):
        return _write(uow, workflow, spec, record, ticket, number, trigger, reason, locked=pg)


def _write(
    uow: UnitOfWork,
    workflow: Any,
    spec: TriggerSpec,
    record: Effect,
    ticket: Any,
    number: str,
    trigger: str,
    reason: str | None,
    *,
    locked: bool,
) -> Fired:
    """The checked change's writes: effects, clock, the ticket and its log row, notices."""
    conn, now, actor = uow.conn, record.now, record.actor
    dest = spec.dest  # what the compiled machine moves to (transition_for keys by source)
    apply_effects(spec.effects, record)
    values, logged = record.values, record.logged
    if dest in workflow.final_states:
        values["closed_at"] = now
    elif ticket.state in workflow.final_states:
        values["closed_at"] = None
        values["satisfied"] = None
    new_version = ticket.version + 1
    values.update(
        deadlines.on_transition(
            uow,
            workflow=workflow,
            ticket_id=ticket.id,
            number=number,
            campaign_id=ticket.campaign_id,
            from_state=ticket.state,
            to_state=dest,
            trigger=trigger,
            now=now,
            version=new_version,
            due_at=ticket.due_at,
            level=ticket.escalation_level,
            priority=ticket.priority,
        )
    )
    why = reason if reason is not None else logged.get("reason")
    write_change(
        conn,
        ticket,
        trigger=trigger,
        dest=dest,
        actor=actor,
        logged=logged,
        reason=why,
        values=values,
        now=now,
        workflow_version=workflow.version,
        audit_key=uow.audit_key,
        locked=locked,
    )
    notices.notify_who_must_act(
        uow, ticket, trigger=trigger, dest=dest, values=values, actor=actor, reason=why, now=now
    )
    return Fired(number, trigger, ticket.state, dest, new_version, new_version, values, ticket, now)
