"""Near-duplicate opinions: grouping those that say the same thing, and acting on a group at once.

Texts are normalised (Unicode NFKC, case folded, punctuation and spaces
removed, so full-width Chinese punctuation and ASCII compare alike) and
compared with RapidFuzz's normalised Indel similarity, which works on
characters and so needs no word segmentation for Chinese. Comparison is
blocked by character bigrams: two texts are compared only if they share one
of their rarer bigrams, so a campaign of thousands does not cost a full
square. Groups are the connected components of "similar enough" pairs; each
gets the id of its first ticket in ``tickets.duplicate_group``.

A group is acted on in one audited batch: each ticket gets its own ``fire``
(and its own log row) inside the caller's single transaction, so either every
ticket moves or, on any refusal, none does.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rapidfuzz.distance import Indel
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from engine.context import UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.models import Campaign, Ticket
from engine.tickets import Actor, Fired, fire

DEFAULT_THRESHOLD = 0.8
_STRIP = re.compile(r"[\W_]+", re.UNICODE)
MAX_BLOCK = 200  # bigrams shared by more texts than this are too common to block on


def normalise(text: str) -> str:
    """The text as compared: NFKC, case folded, without punctuation or spaces."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text).casefold())


def _bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text} if text else set()
    return {text[i : i + 2] for i in range(len(text) - 1)}


def similarity(a: str, b: str) -> float:
    """Similarity of two opinions in [0, 1] after normalisation."""
    return float(Indel.normalized_similarity(normalise(a), normalise(b)))


def group_texts(texts: dict[int, str], threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Groups (of two or more ids) whose texts are near-duplicates, each sorted, largest first."""
    norm = {i: normalise(t) for i, t in texts.items()}
    grams = {i: _bigrams(t) for i, t in norm.items()}
    index: dict[str, list[int]] = defaultdict(list)
    for i, gs in grams.items():
        for g in gs:
            index[g].append(i)
    parent = {i: i for i in texts}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, gs in grams.items():
        # The texts sharing this text's rarest bigrams: a near-duplicate shares most of them.
        rare = sorted(gs, key=lambda g: len(index[g]))[:6]
        candidates: set[int] = set()
        for g in rare:
            bucket = index[g]
            if len(bucket) <= MAX_BLOCK:
                candidates.update(j for j in bucket if j > i)
        for j in candidates:
            if find(i) == find(j):
                continue
            score = Indel.normalized_similarity(norm[i], norm[j], score_cutoff=threshold)
            if score >= threshold:
                parent[find(j)] = find(i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in texts:
        groups[find(i)].append(i)
    found = [sorted(g) for g in groups.values() if len(g) > 1]
    return sorted(found, key=lambda g: (-len(g), g[0]))


@dataclass
class DuplicateGroup:
    group: int  # the id stored in tickets.duplicate_group (the first ticket's id)
    numbers: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def find_duplicates(
    session: Session,
    campaign_code: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    states: tuple[str, ...] | None = None,
) -> list[DuplicateGroup]:
    """Group the campaign's open opinions that say the same thing and store the groups.

    Writes ``tickets.duplicate_group`` for the grouped tickets (and clears it
    for the others in ``states``); the caller commits. This is a grouping
    hint for the clerk, not a transition, so it is not logged. Without ``states``: the
    tickets still at the intake desk, in any workflow (open, and no one assigned yet).
    """
    if not 0 < threshold <= 1:
        raise ValidationError(
            f"threshold {threshold} must be between 0 and 1 (e.g. 0.8)",
            fields={"threshold": "between 0 and 1"},
        )
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.code == campaign_code))
    if campaign_id is None:
        raise NotFound(f"no campaign {campaign_code!r}")
    in_scope = (
        Ticket.state.in_(states)
        if states is not None
        else and_(Ticket.closed_at.is_(None), Ticket.assignee_id.is_(None))
    )
    rows = session.execute(
        select(Ticket.id, Ticket.number, Ticket.text).where(
            Ticket.campaign_id == campaign_id, in_scope
        )
    ).all()
    by_id = {r.id: r for r in rows}
    groups = group_texts({r.id: r.text for r in rows}, threshold)
    session.execute(
        update(Ticket)
        .where(
            Ticket.campaign_id == campaign_id,
            in_scope,
            Ticket.duplicate_group.is_not(None),
        )
        .values(duplicate_group=None)
    )
    out = []
    for ids in groups:
        session.execute(update(Ticket).where(Ticket.id.in_(ids)).values(duplicate_group=ids[0]))
        out.append(
            DuplicateGroup(
                group=ids[0],
                numbers=[by_id[i].number for i in ids],
                texts=[by_id[i].text for i in ids],
            )
        )
    return out


def act_on_group(
    uow: UnitOfWork,
    group: int,
    trigger: str,
    *,
    actor: Actor,
    now: datetime | None = None,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
) -> list[Fired]:
    """Fire ``trigger`` with ``data`` on every ticket of duplicate group ``group``.

    Each ticket gets its own ``fire`` and log row (the reason names the
    group), all in the caller's one transaction: the first refusal raises
    and the caller's rollback leaves every ticket as it was. Used to
    categorize a group, or to close it with one feedback (``feed_back``).
    """
    uow.policy.require(actor, "duplicates.resolve")
    numbers = list(
        uow.session.scalars(
            select(Ticket.number).where(Ticket.duplicate_group == group).order_by(Ticket.id)
        )
    )
    if not numbers:
        raise NotFound(f"no duplicate group {group}; find duplicates first")
    why = reason or f"batch on duplicate group {group} ({len(numbers)} tickets)"
    fired = []
    for number in numbers:
        fired.append(
            fire(uow, number, trigger, actor=actor, data=dict(data or {}), now=now, reason=why)
        )
    return fired
