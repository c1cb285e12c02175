"""The ticket services in one import: who acts, creating, firing, and the chained log writer.

Each lives in its own module (``engine.actors``, ``engine.creating``,
``engine.firing``, ``engine.ledger``, ``engine.effects``); this module only
gathers their public names for adapters.
"""

from __future__ import annotations

from engine.actors import SYSTEM_ACTOR, Actor, get_actor
from engine.creating import (
    SECRET_ALPHABET,
    TEXT_MAX,
    Created,
    create_ticket,
    hash_secret,
    new_secret,
    normalise_secret,
)
from engine.firing import Fired, allowed_triggers, check_actor, fire, why_not
from engine.ledger import (
    EVENTS,
    Event,
    check_version,
    declare_event,
    load_ticket_row,
    record_event,
    record_events,
    write_change,
)

__all__ = [
    "EVENTS",
    "SECRET_ALPHABET",
    "SYSTEM_ACTOR",
    "TEXT_MAX",
    "Actor",
    "Created",
    "Event",
    "Fired",
    "allowed_triggers",
    "check_actor",
    "check_version",
    "create_ticket",
    "declare_event",
    "fire",
    "get_actor",
    "hash_secret",
    "load_ticket_row",
    "new_secret",
    "normalise_secret",
    "record_event",
    "record_events",
    "why_not",
    "write_change",
]
