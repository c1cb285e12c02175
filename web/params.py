"""Query-string and form parameters, parsed and bounded in one place for every blueprint.

A value out of range or of the wrong type raises ``BadParameter`` (HTTP 400, naming the
parameter and what would be right); the app's, the API's and Open311's error handlers turn
it into their own error shape. Nothing past this module sees an integer a database column
cannot hold, or a date whose end of day overflows in some timezone.

The request body is limited here too: its size (``MAX_CONTENT_LENGTH``, smaller for
everything but file uploads) and the nesting depth of a JSON body, checked on the raw bytes
before any parser recurses into it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

MAX_INT = 2**31 - 1  # the widest INTEGER column (PostgreSQL int4) holds this
# Dates a person could mean: far from the ends of Python's calendar, so that a day's end in
# any timezone (UTC-12 to UTC+14) and a 90-day window around it stay inside it.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
MAX_OFFSET = 10_000_000  # paging past ten million rows is never a person reading a queue
MAX_LEVEL = 99  # escalation levels are a ladder's few steps
JSON_MAX_DEPTH = 32
BODY_MAX = 1024 * 1024  # 1 MiB for forms and JSON; uploads have their own limit
UPLOAD_MAX = 64 * 1024 * 1024
UPLOAD_ENDPOINTS = frozenset({"imports.upload"})


class BadParameter(BadRequest):
    """A parameter is missing its shape or its range; the description names it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"The parameter {name!r} {problem}.")
        self.parameter = name
        self.problem = problem


def _source(source: Any) -> Any:
    return request.args if source is None else source


def integer(
    name: str,
    default: int | None = None,
    *,
    minimum: int = 0,
    maximum: int = MAX_INT,
    source: Any = None,
) -> int | None:
    """The whole number ``name`` (query string unless ``source`` is given), or ``default``
    when absent or empty; refused when not a whole number or outside [minimum, maximum]."""
    raw = (_source(source).get(name) or "").strip()
    if not raw:
        return default
    return _bounded(name, raw, minimum, maximum)


def integers(
    name: str, *, minimum: int = 0, maximum: int = MAX_INT, source: Any = None, limit: int = 1000
) -> list[int]:
    """Every value of the repeated parameter ``name`` as a bounded whole number."""
    raw = [v.strip() for v in _source(source).getlist(name) if v.strip()]
    if len(raw) > limit:
        raise BadParameter(name, f"is given {len(raw)} times; at most {limit}")
    return [_bounded(name, value, minimum, maximum) for value in raw]


def _bounded(name: str, raw: str, minimum: int, maximum: int) -> int:
    # Length first: int() of a 100,000-digit string is itself a denial of service.
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit()):
        raise BadParameter(name, f"must be a whole number between {minimum} and {maximum}")
    if len(digits.lstrip("0")) > 18:
        raise BadParameter(name, f"must be between {minimum} and {maximum}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadParameter(name, f"must be between {minimum} and {maximum}")
    return value


def day(name: str, *, source: Any = None) -> date | None:
    """The date ``name`` (YYYY-MM-DD) or None when absent; refused when malformed or outside
    1900-01-01 … 2999-12-31."""
    raw = (_source(source).get(name) or "").strip()
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, "must be a date written YYYY-MM-DD") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise BadParameter(name, f"must be a date between {FIRST_DAY} and {LAST_DAY}")
    return value


def instant(
    name: str, *, source: Any = None, example: str = "2005-03-01T00:00:00Z"
) -> datetime | None:
    """The ISO 8601 / W3C time ``name`` in UTC (UTC when it carries no offset), or None when
    absent; refused when malformed or when its UTC date lies outside 1900 … 2999."""
    raw = (_source(source).get(name) or "").strip()
    if not raw:
        return None
    text = raw[:-1] + "+00:00" if raw[-1:] in "Zz" else raw
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, f"must be a W3C date-time written like {example}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not FIRST_DAY <= parsed.date() <= LAST_DAY:
        raise BadParameter(name, f"must be a time between {FIRST_DAY} and {LAST_DAY}")
    return parsed.astimezone(UTC)


def day_or_instant(name: str, *, source: Any = None) -> date | datetime | None:
    """A date (YYYY-MM-DD) or an ISO 8601 time, each bounded as ``day`` and ``instant``."""
    raw = (_source(source).get(name) or "").strip()
    if not raw:
        return None
    if len(raw) == 10:
        return day(name, source=source)
    return instant(name, source=source, example="YYYY-MM-DD or 2005-03-18T09:00:00+08:00")


def choice(
    name: str, allowed: Iterable[str], default: str | None = None, *, source: Any = None
) -> str | None:
    """One of ``allowed``, or ``default`` when absent."""
    raw = (_source(source).get(name) or "").strip()
    if not raw:
        return default
    options = list(allowed)
    if raw not in options:
        raise BadParameter(name, f"must be one of {', '.join(options)}")
    return raw


def json_depth(body: bytes, limit: int = JSON_MAX_DEPTH) -> int:
    """The nesting depth of the JSON text ``body``, counted on the bytes (strings skipped)
    and stopping as soon as it passes ``limit``: no parser recursion, no big allocations."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def init_app(app: Flask) -> None:
    """Bound every request body: size per endpoint, and JSON depth before anyone parses it."""
    app.config.setdefault("MAX_CONTENT_LENGTH", UPLOAD_MAX)
    app.config.setdefault("RECTIFLOW_BODY_MAX", BODY_MAX)
    app.config.setdefault("RECTIFLOW_JSON_MAX_DEPTH", JSON_MAX_DEPTH)

    @app.before_request
    def _limit_body() -> None:
        if request.endpoint not in UPLOAD_ENDPOINTS:
            request.max_content_length = app.config["RECTIFLOW_BODY_MAX"]
            request.max_form_memory_size = app.config["RECTIFLOW_BODY_MAX"]
        length, most = request.content_length, request.max_content_length
        if length is not None and most is not None and length > most:
            raise RequestEntityTooLarge(
                f"The request body is {length} bytes; at most {most} are accepted here."
            )
        if request.is_json:
            limit = app.config["RECTIFLOW_JSON_MAX_DEPTH"]
            body = request.get_data(cache=True)
            # No more opening brackets than the limit: no deeper either, without a walk.
            if body.count(b"[") + body.count(b"{") > limit and json_depth(body, limit) > limit:
                raise BadRequest(f"The JSON body is nested deeper than {limit} levels.")
