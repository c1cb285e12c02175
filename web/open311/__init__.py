"""Open311 GeoReport v2 at ``/open311/v2``, for existing civic clients.

Services are the categories of every programme open for intake, coded
``<programme>.<category>``, plus each programme's general ``<programme>.opinion``; a service
request is a ticket in its service's programme. With the setting ``open311_campaign`` (a
programme's code), that programme alone with plain codes. Every resource answers in ``.json``
and ``.xml``; errors are the spec's list of ``{code, description}`` with 400, 403 or 404.
"""

from __future__ import annotations

from web.open311.routes import bp

__all__ = ["bp"]
