"""Routing rules: which unit a ticket goes to, "according to functions and territorial principles".

A rule names a category, an area (town), or both, and a unit. The most
specific rule that matches wins: category and area, then area, then category.
Campaign-specific rules win over general ones at the same specificity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.engine import Connection

from engine.models import RoutingRule, Unit
from engine.rawsql import PreparedQuery
from engine.readcache import ReadCache

# Built once: categorizing runs it inside the transition. Every rule that can apply in a
# campaign (its own and the general ones); the category and area are matched in Python, so the
# rows can be kept in the context's read cache.
_CAMPAIGN_RULES = PreparedQuery(
    select(
        RoutingRule.category,
        RoutingRule.area,
        RoutingRule.campaign_id,
        Unit.id,
        Unit.code,
        Unit.name,
    )
    .join(Unit, Unit.id == RoutingRule.unit_id)
    .where(
        or_(RoutingRule.campaign_id == bindparam("campaign_id"), RoutingRule.campaign_id.is_(None))
    )
)


@dataclass(frozen=True)
class Suggestion:
    unit_id: int
    unit_code: str
    unit_name: str
    rule: str


def suggest_unit(
    conn: Connection,
    *,
    campaign_id: int,
    category: str | None,
    area: str | None,
    cache: ReadCache | None = None,
) -> Suggestion | None:
    """The unit the routing rules suggest for ``category`` in ``area``, or None.

    With ``cache`` (``uow.ctx.cache``), the campaign's rules are read once and kept there.
    """

    def load() -> list[Any]:
        return _CAMPAIGN_RULES.all(conn, {"campaign_id": campaign_id})

    rules = load() if cache is None else cache.get(("routing_rules", campaign_id), load)
    rows = [r for r in rules if r.category in (None, category) and r.area in (None, area)]
    best = None
    best_score = -1
    for row in rows:
        if row.category is None and row.area is None:
            continue
        score = (2 if row.area else 0) + (1 if row.category else 0)
        score = score * 2 + (1 if row.campaign_id is not None else 0)
        if score > best_score:
            best, best_score = row, score
    if best is None:
        return None
    parts = [
        f"category {best.category}" if best.category else "",
        f"area {best.area}" if best.area else "",
    ]
    return Suggestion(
        best.id, best.code, best.name, " + ".join(p for p in parts if p) + f" → {best.code}"
    )
