"""Named guard conditions a workflow definition may attach to a trigger.

A guard takes the ticket (a row mapping: ``kind``, ``assignee_id``...) and the
validated data, and returns ``None`` when the trigger may proceed or a sentence
saying why not and what would be right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Guard = Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]


def praise_or_unfounded(ticket: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    if ticket.get("kind") == "praise" or data.get("unfounded") is True:
        return None
    return (
        "only praise, or an opinion marked unfounded (unfounded=true, with an explanation), "
        "can be fed back without being assigned and rectified; assign it instead"
    )


def assignee_known(ticket: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    if ticket.get("assignee_id") is not None or data.get("officer") is not None:
        return None
    return "the ticket has no responsible officer; name one (officer=USERNAME, unit=CODE)"


GUARDS: dict[str, Guard] = {
    "praise_or_unfounded": praise_or_unfounded,
    "assignee_known": assignee_known,
}
