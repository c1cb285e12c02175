from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

from engine import audit
from engine.read import pages as queries
from web import params
from web.context import DEFAULT_TZ, login_required, now
from web.database import get_read_session, get_session, get_uow, read_sessions
from web.inspector import bp

CSV_FIELDS = (
    "id",
    "ticket",
    "seq",
    "trigger",
    "from_state",
    "to_state",
    "actor",
    "role",
    "at",
    "reason",
    "data",
    "hash",
)


class VerifyForm(FlaskForm):
    ticket = StringField(
        _l("Only ticket (blank: the whole log)"),
        validators=[Optional(), Length(max=40)],
        render_kw={"maxlength": 40},
    )


def _filters() -> tuple[dict[str, Any], list[str]]:
    """Log filters from the query string; dates are whole days in the campaign's timezone."""
    args = request.args
    errors: list[str] = []
    tz = ZoneInfo(DEFAULT_TZ)
    out: dict[str, Any] = {
        "ticket": (args.get("ticket") or "").strip()[:40] or None,
        "actor": (args.get("actor") or "").strip()[:64] or None,
        "trigger": (args.get("trigger") or "").strip()[:64] or None,
    }
    for key, name in (("since", _("From")), ("until", _("To"))):
        try:
            day = params.day(key)
        except params.BadParameter:
            raw = (args.get(key) or "").strip()
            errors.append(
                _(
                    "%(which)s date %(value)s is not a date between %(first)s and %(last)s; "
                    "use YYYY-MM-DD.",
                    which=name,
                    value=raw[:40],
                    first=params.FIRST_DAY,
                    last=params.LAST_DAY,
                )
            )
            continue
        if day is None:
            continue
        start = datetime.combine(day, time(0), tzinfo=tz)
        out[key] = start if key == "since" else start + timedelta(days=1)
    if out.get("since") and out.get("until") and out["since"] >= out["until"]:
        errors.append(_("The From date must not be after the To date."))
    return out, errors


@bp.get("/inspector/log")
@login_required("log.view")
def log_search() -> Any:
    filters, errors = _filters()
    before_id = params.integer("before", minimum=1)
    rows = (
        []
        if errors
        else queries.search_log(get_read_session(), **filters, before_id=before_id, limit=100)
    )
    return render_template(
        "inspector/log.html",
        rows=rows,
        errors=errors,
        args=request.args,
        verify_form=VerifyForm(formdata=None),
        next_before=rows[-1].id if len(rows) == 100 else None,
    ), 422 if errors else 200


@bp.get("/inspector/log.csv")
@login_required("log.view")
def log_csv() -> Any:
    filters, errors = _filters()
    if errors:
        return Response("\n".join(errors) + "\n", status=422, mimetype="text/plain")
    # Stream with a session of its own, closed when the last row is out: the request's
    # session (and on SQLite its write lock) must not stay open while the client reads.
    get_session().rollback()
    session = read_sessions()()

    def generate() -> Iterator[str]:
        try:
            yield from _rows(session, filters)
        finally:
            session.close()

    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    return Response(
        generate(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="transition-log-{stamp}.csv"'},
    )


def _rows(session: Any, filters: dict[str, Any]) -> Iterator[str]:
    """The CSV text of every matching log row, newest first, 500 rows per query (keyset)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    before: int | None = None
    while True:
        page = queries.search_log(session, **filters, before_id=before, limit=500)
        session.rollback()  # hold no lock while the client reads this page
        for r in page:
            writer.writerow(
                audit.safe_cell(v)
                for v in (
                    r.id,
                    r.ticket_number,
                    r.seq,
                    r.trigger,
                    r.from_state,
                    r.to_state,
                    r.actor,
                    r.role,
                    audit.format_instant(r.at),
                    r.reason,
                    r.data,
                    r.hash,
                )
            )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if len(page) < 500:
            break
        before = page[-1].id


@bp.post("/inspector/verify")
@login_required("log.verify")
def verify() -> Any:
    form = VerifyForm()
    problems = None
    if form.validate_on_submit():
        uow = get_uow()
        problems = audit.verify(uow.session, ticket=form.ticket.data or None, key=uow.audit_key)
    return render_template(
        "inspector/verify.html", form=form, problems=problems, scope=form.ticket.data or None
    ), 200 if problems is not None else 422


@bp.get("/inspector/sample")
@login_required("log.sample")
def sample() -> Any:
    size = params.integer("size", 20, minimum=1, maximum=200)
    seed = params.integer("seed", maximum=10**9)
    if seed is None:
        seed = secrets.randbelow(10**6)
    items = queries.sample_closed(get_session(), size=size, seed=seed)
    return render_template("inspector/sample.html", items=items, size=size, seed=seed)
