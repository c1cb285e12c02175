from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.validators import InputRequired

from engine.errors import ValidationError
from engine.read import pages as queries
from engine.routing import suggest_unit
from engine.tickets import create_ticket
from web import params
from web.choices import SelectField, options
from web.context import login_required, now, require_user
from web.database import get_ctx, get_session, get_uow
from web.desk import bp
from web.i18n import names
from web.opinion_form import OpinionForm, apply_errors, fit_to_workflow, opinion_kwargs

SOURCES = [
    ("visit", _l("visit to a household or unit")),
    ("meeting", _l("symposium or meeting")),
    ("phone", _l("telephone")),
    ("letter", _l("letter or mailbox")),
    ("web", _l("web form")),
]


class IntakeForm(OpinionForm):
    source = SelectField(
        _l("How it was received"),
        choices=options(SOURCES, blank=None),
        validators=[InputRequired(_l("Choose the source."))],
    )


@bp.route("/desk/intake", methods=["GET", "POST"])
@login_required("queue.intake")
def intake() -> Any:
    user = require_user()
    db = get_session()
    campaign = queries.active_campaign(db, now=now(), code=request.args.get("campaign"))
    form = IntakeForm()
    if campaign is not None:
        fit_to_workflow(form, get_ctx().workflow(campaign.workflow_name, campaign.workflow_version))
    form.text.label.text = _("The opinion, as given")
    form.citizen_name.label.text = _("Citizen's name")
    form.citizen_contact.label.text = _("Citizen's phone or e-mail")
    if campaign is not None and form.validate_on_submit():
        try:
            created = create_ticket(
                get_uow(),
                campaign=campaign.code,
                actor=user.actor,
                now=now(),
                source=form.source.data or "visit",
                **opinion_kwargs(form),  # type: ignore[arg-type]
            )
            get_uow().commit()
        except ValidationError as exc:
            db.rollback()
            apply_errors(form, exc.fields, exc.message)
        else:
            # Rendered, not flashed: the secret must not travel in the session cookie.
            return render_template("desk/receipt.html", created=created, campaign=campaign)
    status = 422 if form.errors else 200
    return render_template(
        "desk/intake.html",
        form=form,
        campaign=campaign,
        programmes=queries.programmes(db),
    ), status


@bp.get("/desk/categorize")
@login_required("queue.intake")
def categorize_queue() -> Any:
    db = get_session()
    offset = params.integer("offset", 0, maximum=params.MAX_OFFSET)
    campaign = queries.active_campaign(db, now=now(), code=request.args.get("campaign"))
    # The intake queue is the one the programme's workflow declares for queue.intake.
    queue = None
    if campaign is not None:
        workflow = get_ctx().workflow(campaign.workflow_name, campaign.workflow_version)
        queue = next((q for q in workflow.queues if q.permission == "queue.intake"), None)
    items = queries.state_queue(
        db,
        states=list(queue.states) if queue else [],
        now=now(),
        campaign_id=campaign.id if campaign else None,  # index (campaign_id, state)
        limit=50,
        offset=offset,
    )
    conn = db.connection()
    suggestions = {}
    for t in items:
        if campaign is not None and t.area:
            s = suggest_unit(conn, campaign_id=campaign.id, category=None, area=t.area)
            suggestions[t.number] = names().unit(s.unit_code) if s else ""
    return render_template(
        "desk/categorize.html",
        items=items,
        suggestions=suggestions,
        offset=offset,
        queue=queue,
        campaign=campaign,
        programmes=queries.programmes(db),
    )
