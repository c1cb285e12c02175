"""Notices to whoever must act: a ticket given, given back or reopened to someone.

A transition notifies the people the ticket now waits for (``engine.acting``:
its officer, else those who hold the queue of the new state and can fire a
trigger there, the unit's leaders first) when it

- changes the ticket's unit or officer (an assignment, a reassignment, routing
  to a unit): kind ``assignment``;
- leaves a final state or fires the workflow's ``reopen`` trigger: kind ``reopen``;
- returns the ticket to a state nearer the workflow's start (a send-back, a reply
  returned to the unit, a redo): kind ``returned``.

The notice is written in the transition's transaction, never to the actor, with a
message id and parameters so that each reader sees it in their language; e-mail
goes out after commit (``engine.mailer``).

The escalation ladder's notices go only to people who can act on the ticket in its
state (``ladder_audience``): nobody chases an officer about a ticket that only a
supervisor or a clerk can move on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table

from engine import acting
from engine.actors import Actor
from engine.audit import canonical_json
from engine.context import UnitOfWork
from engine.models import Notification
from engine.notifications import Recipients
from engine.rawsql import BulkInsert
from engine.workflow import Workflow

_INSERT_NOTICES = BulkInsert(
    cast(Table, Notification.__table__),
    ("user_id", "kind", "ticket_id", "subject", "body", "created_at", "message_id", "params"),
)

SUBJECTS = {
    "assignment": "{number} is yours to act on: {trigger} by {actor}",
    "returned": "{number} came back to you: {trigger} by {actor}",
    "reopen": "{number} was reopened by {actor}: it is yours to act on",
}


def notify_who_must_act(
    uow: UnitOfWork,
    ticket: Any,
    *,
    trigger: str,
    dest: str,
    values: dict[str, Any],
    actor: Actor,
    reason: str | None,
    now: datetime,
) -> int:
    """After ``trigger`` moved ``ticket`` (the row before) to ``dest`` with ``values``:
    notify who must now act, when the ticket was given, given back or reopened to them
    (see the module). How many notices; none for any other transition."""
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    if dest in workflow.final_states:
        return 0
    if ticket.state in workflow.final_states or trigger == workflow.use("reopen"):
        kind = "reopen"
    elif "unit_id" in values or "assignee_id" in values:
        kind = "assignment"
    elif acting.goes_back(workflow, ticket.state, dest):
        kind = "returned"
    else:
        return 0
    after = acting.TicketView.of(
        ticket,
        state=dest,
        unit_id=values.get("unit_id", ticket.unit_id),
        assignee_id=values.get("assignee_id", ticket.assignee_id),
    )
    people = acting.People(uow.conn, uow.policy, uow.registry, cache=uow.ctx.cache)
    users = [uid for uid in people.must_act(after) if uid != actor.id]
    if not users:
        return 0
    trigger_en = workflow.trigger_title(trigger, "en", ticket.state)
    state_en = workflow.state_title(dest, "en")
    why = (reason or "").strip()
    body = f"Now: {state_en}." + (f"\nReason: {why}" if why else "")
    subject = SUBJECTS[kind].format(number=ticket.number, trigger=trigger_en, actor=actor.username)
    params = canonical_json(
        {
            "number": ticket.number,
            "workflow": workflow.name,
            "version": workflow.version,
            "trigger": trigger,
            "from": ticket.state,
            "state": dest,
            "actor": actor.username,
            "reason": why[:500],
        }
    )
    # A prebuilt insert on the driver (the transition's hot path), no ids read back.
    return _INSERT_NOTICES.execute_few(
        uow.conn,
        [
            (uid, kind, ticket.id, subject[:300], body, now, f"notice.{kind}", params)
            for uid in users
        ],
    )


def ladder_audience(
    people: acting.People,
    recipients: Recipients,
    workflow: Workflow,
    ticket: acting.TicketView,
    *,
    level: int,
    named: list[list[int]],
) -> tuple[list[list[int]], list[int]]:
    """Who a ladder step (``level``; 0 is the warning) reaches on ``ticket``.

    ``named`` holds the users each of the step's ``notify`` names resolved to; each list
    keeps only those who can act on the ticket in its state. When nobody is left, the
    second value is who can act instead, less the people the ladder's higher steps are
    for (they come later; all who can act when that leaves nobody): the clerks for a
    ticket nobody categorized, the people who close a ticket escalated beyond the unit.
    """
    kept = [people.keep_who_can_act(users, ticket) for users in named]
    if any(kept):
        return kept, []
    able = people.who_can_act(ticket)
    later = {
        uid
        for step in workflow.ladder.steps
        if step.level > level
        for uid in recipients.resolve(
            step.notify, assignee_id=ticket.assignee_id, unit_id=ticket.unit_id
        )
    }
    return kept, [uid for uid in able if uid not in later] or able
