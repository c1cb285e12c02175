"""Reassigning many tickets at once from the overdue board: one change and log row per ticket.

Which trigger moves a ticket to another unit and officer is read from its
workflow (a trigger from the ticket's state that has the ``assign`` effect and
that the actor may fire), not from state names. Each ticket is written in its
own savepoint: one refusal (moved, closed, not reachable) leaves the others
done, and each outcome is reported.

A fresh time limit for the new unit (``engine.redeadline.FreshLimit``) is checked
against every selected ticket before anything is written — a date in the past or
after a campaign's end refuses the whole request — then given to each ticket right
after its reassignment, in the same savepoint (``give_fresh_limit``: the
``deadline_set`` log row, the timers re-armed, the level back to 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.actors import Actor
from engine.context import UnitOfWork
from engine.errors import EngineError, InvalidTransition, NotFound, ValidationError
from engine.firing import allowed_triggers, fire
from engine.ledger import load_ticket_row
from engine.redeadline import FreshLimit, check_fresh_limit, give_fresh_limit

MAX_BULK = 200


@dataclass
class BulkResult:
    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (number, why)


def reassign_many(
    uow: UnitOfWork,
    numbers: list[str],
    *,
    actor: Actor,
    unit: str,
    officer: str,
    reason: str,
    now: datetime | None = None,
    limit: FreshLimit | None = None,
) -> BulkResult:
    """Move each ticket of ``numbers`` to ``unit`` and ``officer`` (with the fresh time limit
    ``limit`` when given); the caller commits once."""
    uow.policy.require(actor, "board.reassign")
    wanted = list(dict.fromkeys(n.strip() for n in numbers if n and n.strip()))
    if not wanted:
        raise ValidationError(
            "select at least one ticket to reassign", fields={"numbers": "none selected"}
        )
    if len(wanted) > MAX_BULK:
        raise ValidationError(
            f"at most {MAX_BULK} tickets at once; {len(wanted)} were selected",
            fields={"numbers": f"at most {MAX_BULK}"},
        )
    when = uow.now(now)
    if limit is not None:
        for number in wanted:
            try:
                check_fresh_limit(uow, number, limit, actor=actor, now=when)
            except NotFound:
                continue  # refused below, with the others done
    result = BulkResult()
    for number in wanted:
        try:
            with uow.session.begin_nested():
                row = load_ticket_row(uow.conn, number)
                spec = next(
                    (s for s in allowed_triggers(uow, row, actor) if "assign" in s.effects), None
                )
                if spec is None:
                    raise InvalidTransition(
                        f"nothing reassigns {number} in state {row.state!r}",
                        ticket=number,
                        state=row.state,
                    )
                data = {"unit": unit, "officer": officer, "reason": reason}
                taken = set(spec.requires) | set(spec.optional)
                fire(
                    uow,
                    number,
                    spec.name,
                    actor=actor,
                    data={k: v for k, v in data.items() if k in taken},
                    reason=reason,
                    now=when,
                )
                if limit is not None:
                    give_fresh_limit(uow, number, actor=actor, limit=limit, reason=reason, now=when)
            result.done.append(number)
        except EngineError as exc:
            result.refused.append((number, exc.message))
    return result
