"""The GeoReport v2 resources: discovery, services, service definitions, requests, tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from engine.errors import (
    Conflict,
    EngineError,
    NotFound,
    NotPermitted,
    ValidationError,
)
from engine.read import open311 as queries
from engine.tickets import SYSTEM_ACTOR, Actor, create_ticket, fire
from engine.tokens import authenticate
from web import database, params
from web.api.common import can_see
from web.database import get_ctx, get_session, get_uow
from web.i18n import locale_code
from web.open311 import openapi
from web.open311.formats import error, render, w3c

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMAT = "<any(json, xml):fmt>"
STATUSES = ("open", "closed")
MAX_SPAN = timedelta(days=90)
DESCRIPTION_MAX = 4000


def _general() -> str:
    """The name of each programme's general service (its staff sort it into a category)."""
    return _("Opinion, request or problem (staff sort it into a category)")


def _catalogue() -> queries.Catalogue:
    """What Open311 serves now: every programme open for intake (or the one configured)."""
    return queries.catalogue(get_session(), current_app.config["RECTIFLOW"], now())


def _route(rule: str, **options: Any):  # type: ignore[no-untyped-def]
    """Each resource answers at ``rule.json``, ``rule.xml`` and, as JSON, at ``rule``."""

    def decorate(view):  # type: ignore[no-untyped-def]
        endpoint = options.pop("endpoint")
        bp.add_url_rule(f"{rule}.{FORMAT}", endpoint, view_func=view, **options)
        # A separate endpoint, or werkzeug would redirect ``rule.json`` to ``rule``.
        bp.add_url_rule(
            rule, f"{endpoint}_plain", view_func=view, defaults={"fmt": "json"}, **options
        )
        return view

    return decorate


def now() -> datetime:
    return get_ctx().now()


def _fmt() -> str:
    fmt = (request.view_args or {}).get("fmt")
    if fmt in ("json", "xml"):
        return str(fmt)
    return "xml" if request.path.endswith(".xml") else "json"


def _storable(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@bp.before_request
def _check_input() -> Response | None:
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if not (_storable(key) and _storable(value)):
                return error(400, f"{key!r} holds characters that cannot be stored", _fmt())
    return None


# ---------------------------------------------------------------- errors


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError) -> Response:
    database.rollback()
    # The engine's table decides; GeoReport v2 has no 422, it answers invalid data with 400.
    status = 400 if exc.status == 422 else exc.status
    description = exc.message
    fields = exc.details.get("fields") if isinstance(exc, ValidationError) else None
    if fields:
        return render(
            [
                {"code": status, "description": f"{name}: {problem}"}
                for name, problem in fields.items()
            ],
            _fmt(),
            root="errors",
            status=status,
        )
    return error(status, description, _fmt())


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    response = error(exc.code or 500, exc.description or exc.name, _fmt())
    if exc.code == 405:
        response.headers["Allow"] = ", ".join(
            h for k, h in exc.get_headers() if k.lower() == "allow"
        )
    return response


def _allowed_methods() -> list[str]:
    """The methods a real resource at this path takes (the catch-all below does not count)."""
    adapter = current_app.create_url_adapter(request)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(request.path, method=method)  # type: ignore[union-attr]
        except HTTPException:
            continue
        if endpoint != "open311._unknown":
            allowed.append(method)
    return allowed


@bp.before_request
def _options() -> Response | None:
    """OPTIONS lists what the resource takes, not what the catch-all route would."""
    if request.method != "OPTIONS":
        return None
    allowed = _allowed_methods()
    if not allowed:
        return error(404, f"no Open311 resource at {request.path}", _fmt())
    response = Response(status=200)
    response.headers["Allow"] = ", ".join(
        [*allowed, "HEAD", "OPTIONS"] if "GET" in allowed else [*allowed, "OPTIONS"]
    )
    return response


@bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def _unknown(unknown: str) -> Response:
    allowed = _allowed_methods()
    if allowed:
        response = error(
            405, f"{request.method} is not allowed here; use {' or '.join(allowed)}", _fmt()
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error(
        404,
        f"no Open311 resource {unknown!r}; see {url_for('open311.discovery', fmt='json')}",
        _fmt(),
    )


# ---------------------------------------------------------------- discovery and services


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """This API's OpenAPI 3 description (``web.open311.openapi``), with the served codes."""
    listed = _catalogue().listed
    registry = get_ctx().registry
    kinds = {
        kind
        for s in listed
        for kind in registry.get(s.programme.workflow_name, s.programme.workflow_version).kinds
    }
    codes = [s.code for s in listed]
    return render(
        openapi.document(bp.url_prefix or "", codes, sorted(kinds)), "json", root="openapi"
    )


@_route("/discovery", endpoint="discovery")
def discovery(fmt: str) -> Response:
    base = request.url_root.rstrip("/") + bp.url_prefix
    return render(
        {
            "changeset": w3c(now()),
            "contact": "the campaign office (see the public pages)",
            "key_service": "ask an administrator for an API key: `rectiflow tokens create USERNAME`",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": base,
                    "changeset": w3c(now()),
                    "type": "production",
                    "formats": ["application/json", "text/xml"],
                }
            ],
        },
        fmt,
        root="discovery",
    )


@_route("/services", endpoint="services")
def services(fmt: str) -> Response:
    return render(queries.services(_catalogue(), locale_code(), _general()), fmt, root="services")


@_route("/services/<code>", endpoint="service_definition")
def service_definition(code: str, fmt: str) -> Response:
    service = _catalogue().resolve(code)
    programme = service.programme
    kinds = get_ctx().workflow(programme.workflow_name, programme.workflow_version).kinds
    attributes = [
        {
            "variable": True,
            "code": "kind",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "pick one",
            "order": 1,
            "description": "What kind of opinion is it?",
            "values": [{"key": k, "name": k.replace("_", " ").capitalize()} for k in kinds],
        },
        {
            "variable": True,
            "code": "area",
            "datatype": "string",
            "required": False,
            "datatype_description": "a town or area name",
            "order": 2,
            "description": "Which town or area it concerns (helps send it to the right station)",
        },
    ]
    return render(
        {"service_code": service.code, "attributes": attributes}, fmt, root="service_definition"
    )


# ---------------------------------------------------------------- requests


def _public_note(row: Any) -> str:
    """The state's title from the ticket's workflow ("Assigned to an officer", "Fed back to
    the citizen"): says where the request stands and nothing about anyone."""
    try:
        spec = get_ctx().registry.get(row.workflow_name, row.workflow_version).states.get(row.state)
    except NotFound:
        spec = None
    return spec.title if spec is not None else row.state.replace("_", " ").capitalize()


def _request_dict(row: Any, cat: queries.Catalogue, viewer: Actor | None) -> dict[str, Any]:
    """The request as GeoReport v2 shows it. Without an api_key (the public) only what
    identifies nobody: status, a public status note, the service, the agency and the times.
    The person's words, address and coordinates and the feedback text (which may name them)
    only to staff whose key may see the ticket (as on the JSON API)."""
    code = cat.code_of(row.campaign_code, row.category)
    service = cat.every.get(code)
    full = viewer is not None and can_see(viewer, row)
    text = row.text if len(row.text) <= DESCRIPTION_MAX else row.text[: DESCRIPTION_MAX - 1] + "…"
    return {
        "service_request_id": row.number,
        "status": "closed" if row.closed_at is not None else "open",
        "status_notes": (row.feedback_text or _public_note(row)) if full else _public_note(row),
        "service_name": service.name(locale_code(), _general()) if service else code,
        "service_code": code,
        "description": text if full else None,
        "agency_responsible": row.unit_name,
        "service_notice": None,
        "requested_datetime": w3c(row.received_at),
        "updated_datetime": w3c(row.updated_at),
        "expected_datetime": w3c(row.due_at),
        "address": row.address if full else None,
        "address_id": None,
        "zipcode": None,
        "lat": row.lat if full else None,
        "long": row.long if full else None,
        "media_url": None,
    }


def _viewer() -> Actor | None:
    """The staff member behind an optional ``api_key`` on a GET; 403 for a bad key."""
    api_key = (request.args.get("api_key") or "").strip()
    if not api_key:
        return None
    try:
        return authenticate(get_session(), api_key, now=now())
    except NotPermitted as exc:
        raise NotPermitted(f"api_key is not valid: {exc.message}") from None


def _list_arg(name: str) -> list[str]:
    raw = ",".join(request.args.getlist(name))
    return [part.strip() for part in raw.split(",") if part.strip()]


def _instant(name: str) -> datetime | None:
    try:
        return params.instant(name)
    except params.BadParameter as exc:
        raise ValidationError(exc.description or name, fields={name: exc.problem}) from None


def list_requests(fmt: str) -> Response:
    session = get_session()
    cat = _catalogue()
    numbers = _list_arg("service_request_id")
    statuses = _list_arg("status")
    wrong = [s for s in statuses if s not in STATUSES]
    if wrong:
        raise ValidationError(
            f"status {', '.join(wrong)!s} is not open or closed",
            fields={"status": "open or closed"},
        )
    start, end = _instant("start_date"), _instant("end_date")
    if not numbers:
        if start is None and end is None:
            end = now()
        if start is None:
            start = end - MAX_SPAN  # type: ignore[operator]
        elif end is None:
            end = start + MAX_SPAN
        if end < start:  # type: ignore[operator]
            raise ValidationError(
                "end_date is before start_date",
                fields={"end_date": "must not be before start_date"},
            )
        if end - start > MAX_SPAN:  # type: ignore[operator]
            raise ValidationError(
                "start_date to end_date may span at most 90 days",
                fields={"end_date": "at most 90 days after start_date"},
            )
    rows = queries.find_requests(
        session,
        cat,
        numbers=numbers,
        service_codes=_list_arg("service_code"),
        start=start,
        end=end,
        statuses=statuses,
    )
    viewer = _viewer()
    body = [_request_dict(r, cat, viewer) for r in rows]
    get_uow().commit()  # the key's time of use, if one was given
    return render(body, fmt, root="service_requests")


def _field(name: str, limit: int) -> str | None:
    """The form field ``name``, stripped; over ``limit`` characters as sent (the document's
    ``maxLength``, spaces around it included) it is refused."""
    raw = request.form.get(name) or ""
    if len(raw) > limit:
        raise ValidationError(
            f"{name} is too long ({len(raw)} characters; at most {limit})",
            fields={name: f"at most {limit} characters"},
        )
    return raw.strip() or None


def _coordinate(name: str) -> float | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(
            f"{name} {raw!r} is not a number", fields={name: "a decimal degree, e.g. 30.5"}
        ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError(f"{name} must be a finite number", fields={name: "a finite number"})
    return value


def _location_required() -> bool:
    """GeoReport v2 asks every request for a location; ``open311_location_required = false``
    is the documented setting for a jurisdiction that takes opinions without one."""
    return bool(current_app.config["RECTIFLOW"].get("open311_location_required", True))


def create_request(fmt: str) -> Response:
    session = get_session()
    api_key = (request.form.get("api_key") or request.args.get("api_key") or "").strip()
    if not api_key:
        raise NotPermitted("api_key is required to submit a request; ask an administrator for one")
    try:
        actor = authenticate(session, api_key, now=now())
    except NotPermitted as exc:
        raise NotPermitted(f"api_key is not valid: {exc.message}") from None
    get_ctx().policy.require(actor, "ticket.create")
    problems: dict[str, str] = {}
    code = (request.form.get("service_code") or "").strip()
    service: queries.Service | None = None
    if not code:
        problems["service_code"] = "is required; see services.json"
    else:
        try:
            service = _catalogue().resolve(code)
        except NotFound as exc:
            problems["service_code"] = exc.message
    description = _field("description", 10_000)
    if not description:
        problems["description"] = "is required: what is the opinion or problem?"
    lat, long = _coordinate("lat"), _coordinate("long")
    address_string = _field("address_string", 300)
    address_id = _field("address_id", 100)
    if (lat is None) != (long is None):
        problems["lat" if lat is None else "long"] = "give both lat and long, or neither"
    elif lat is None and not (address_string or address_id) and _location_required():
        problems["location"] = (
            "is required: give lat and long, address_string or address_id (GeoReport v2)"
        )
    if problems or service is None:
        raise ValidationError(
            "the request cannot be accepted: "
            + "; ".join(f"{k}: {v}" for k, v in problems.items()),
            fields=problems,
        )
    name = " ".join(p for p in (_field("first_name", 100), _field("last_name", 100)) if p)
    contact = "; ".join(p for p in (_field("email", 200), _field("phone", 50)) if p)
    kind = (request.form.get("attribute[kind]") or "").strip() or None
    at = now()
    programme = service.programme
    try:
        # The ticket goes to the service's programme: its workflow, its numbering.
        created = create_ticket(
            get_uow(),
            campaign=programme.code,
            text=description or "",
            kind=kind,
            citizen_name=name or None,
            citizen_contact=contact or None,
            area=_field("attribute[area]", 100),
            address=address_string or (f"address id {address_id}" if address_id else None),
            lat=lat,
            long=long,
            source="open311",
            actor=actor,
            now=at,
        )
        workflow = get_ctx().workflow(programme.workflow_name, programme.workflow_version)
        categorize = workflow.use("categorize")
        if service.category is not None and categorize is not None:
            # The service the client chose is the category: set through the workflow's own
            # categorize trigger ([uses] categorize), as the system, so it is checked and
            # logged like any other.
            data: dict[str, Any] = {"category": service.category}
            spec = workflow.transition_for(categorize, workflow.initial)
            if spec is not None and "kind" in spec.requires:
                data["kind"] = kind or workflow.default_kind
            fire(
                get_uow(),
                created.number,
                categorize,
                actor=SYSTEM_ACTOR,
                data=data,
                reason=f"service {service.code!r} chosen by the Open311 client",
                now=at,
            )
        get_uow().commit()
    except DBAPIError as exc:
        get_uow().rollback()
        raise Conflict("the request could not be stored just now; send it again") from exc
    notice = (
        f"Received as {created.number}. Receipt code {created.secret}: with the number and this "
        "code the person can follow the opinion and answer the feedback on the public pages."
    )
    return render(
        [{"service_request_id": created.number, "service_notice": notice, "account_id": None}],
        fmt,
        root="service_requests",
        status=201,
    )


@_route("/requests", endpoint="requests", methods=["GET", "POST"])
def requests_(fmt: str) -> Response:
    if request.method == "POST":
        return create_request(fmt)
    return list_requests(fmt)


@_route("/requests/<number>", endpoint="request")
def one_request(number: str, fmt: str) -> Response:
    session = get_session()
    row = queries.find_request(session, number)
    body = [_request_dict(row, _catalogue(), _viewer())]
    get_uow().commit()  # the key's time of use, if one was given
    return render(body, fmt, root="service_requests")


@_route("/tokens/<token>", endpoint="token")
def token(token: str, fmt: str) -> Response:
    """Requests get their id at once, so a token is that id; answered for clients that ask."""
    row = queries.find_request(get_session(), token)
    return render(
        [{"service_request_id": row.number, "token": token}], fmt, root="service_requests"
    )
