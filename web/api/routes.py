"""The /api/v1 endpoints. Each view: check the caller (role, unit), call one engine
function with the request's session and ``now``, commit once, return the schema's shape.

The views live in ``web.api.tickets`` and ``web.api.reference``; importing them here
registers them on the blueprint."""

from __future__ import annotations

from web.api import reference, tickets  # noqa: F401  (register the views)
from web.api.common import bp, one_transaction

__all__ = ["bp", "one_transaction"]
