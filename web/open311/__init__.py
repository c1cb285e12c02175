"""Open311 GeoReport v2 at ``/open311/v2``, for existing civic clients.

Services are the campaign's categories plus a general ``opinion``; a service request is a
ticket. Which campaign: the setting ``open311_campaign`` (a campaign code), or, when it is
empty, the most recent campaign. Every resource answers in ``.json`` and ``.xml``; errors
are the spec's list of ``{code, description}`` with 400, 403 or 404.
"""

from __future__ import annotations

from web.open311.routes import bp

__all__ = ["bp"]
