"""Deadlines: the due time a state sets on a ticket, and the timers that enforce it.

``on_transition`` is called by ``tickets.create_ticket`` and ``tickets.fire``
inside the transition's transaction; it returns the ticket columns to change
(``due_at``, ``due_rule``, ``escalation_level``) and writes timer rows itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from engine.workflow import Workflow


def on_transition(
    conn: Connection,
    *,
    workflow: Workflow,
    ticket_id: int,
    number: str,
    campaign_id: int,
    from_state: str | None,
    to_state: str,
    trigger: str,
    now: datetime,
    version: int,
) -> dict[str, Any]:
    """Ticket column changes for entering ``to_state``; none until the deadlines land."""
    return {}
