"""The web's side of the rate limits: which requests count against which limit, and the
429 answer with ``Retry-After``. The decision is ``engine.ratelimit.RateLimiter``'s.

Counting happens in a ``before_request`` hook, before the view (or anything else) opens the
request's database transaction: on SQLite the limiter's own short write must not wait behind
a transaction of the same request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, current_app, g, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import TooManyRequests

from engine.ratelimit import RateLimiter
from web.context import now

log = logging.getLogger(__name__)

WHAT = {
    "signin_per_address": _l(
        "Too many sign-in attempts from your address. Try again in %(seconds)s seconds."
    ),
    "signin_per_account": _l(
        "Too many sign-in attempts for this account. Try again in %(seconds)s seconds."
    ),
    "public_submit": _l(
        "Too many opinions sent from your address. Try again in %(seconds)s seconds."
    ),
    "status_lookup": _l(
        "Too many receipt look-ups from your address. Try again in %(seconds)s seconds."
    ),
    "open311_post_per_address": _l(
        "Too many service requests from your address. Try again in %(seconds)s seconds."
    ),
    "open311_post_per_key": _l(
        "Too many service requests with this api_key. Try again in %(seconds)s seconds."
    ),
    "api_token": _l("Too many requests with this API token. Try again in %(seconds)s seconds."),
    "api_bad_token_per_address": _l(
        "Too many requests with an unknown API token from your address. "
        "Try again in %(seconds)s seconds."
    ),
}
OTHER = _l("Too many requests. Try again in %(seconds)s seconds.")


class RateLimited(TooManyRequests):
    """HTTP 429; the app's after-request hook adds ``Retry-After``."""

    def __init__(self, name: str, retry_after: int) -> None:
        message = WHAT.get(name, OTHER)
        super().__init__(str(message) % {"seconds": retry_after}, retry_after=retry_after)
        self.limit_name = name


def address() -> str:
    return request.remote_addr or "unknown"


def _form(name: str) -> Callable[[], str | None]:
    def read() -> str | None:
        value = (request.form.get(name) or "").strip()
        return value.lower()[:200] or None

    return read


# (endpoint, method) → the limits that request counts against, each with its subject.
RULES: dict[tuple[str, str], list[tuple[str, Callable[[], str | None]]]] = {
    ("auth.signin", "POST"): [
        ("signin_per_address", address),
        ("signin_per_account", _form("username")),
    ],
    ("public.submit", "POST"): [("public_submit", address)],
    ("public.status", "POST"): [("status_lookup", address)],
    ("public.answer", "POST"): [("status_lookup", address)],
}
for _endpoint in ("open311.requests", "open311.requests_plain"):
    RULES[(_endpoint, "POST")] = [
        ("open311_post_per_address", address),
        ("open311_post_per_key", lambda: _form("api_key")() or request.args.get("api_key")),
    ]


def limiter() -> RateLimiter:
    return current_app.extensions["rectiflow.limiter"]  # type: ignore[no-any-return]


def enforce(name: str, subject: str | None) -> None:
    """Count one hit of ``name`` for ``subject``; raise ``RateLimited`` past the limit. A
    storage that fails (Redis down) lets the request through and logs it: the limits guard
    against floods, they must not take the service down with them."""
    if not subject:
        return
    try:
        decision = limiter().hit(name, subject, now=now())
    except Exception:  # noqa: BLE001 - any storage failure: log, do not refuse
        log.exception("rate limit %s could not be counted; request let through", name)
        return
    if decision is not None and not decision.allowed:
        g.retry_after = decision.retry_after
        log.warning("rate limit %s reached (%s hits)", name, decision.hits)
        raise RateLimited(name, decision.retry_after)


def init_app(app: Flask, limiter: RateLimiter) -> None:
    app.extensions["rectiflow.limiter"] = limiter

    @app.before_request
    def _count() -> None:
        for name, subject in RULES.get((request.endpoint or "", request.method), ()):
            enforce(name, subject())

    @app.after_request
    def _retry_after(response: Response) -> Response:
        retry = g.get("retry_after")
        if response.status_code == 429 and retry:
            response.headers["Retry-After"] = str(retry)
        return response
