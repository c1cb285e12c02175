from __future__ import annotations

from typing import Any

from flask import render_template
from flask_babel import gettext as _

from engine.read import pages as queries
from web import params
from web.context import login_required, now, require_user
from web.database import get_session
from web.i18n import names
from web.unit import bp


@bp.get("/my/queue")
@login_required("queue.unit")
def my_queue() -> Any:
    user = require_user()
    offset = params.integer("offset", 0, maximum=params.MAX_OFFSET)
    items = queries.officer_queue(
        get_session(), user_id=user.id, now=now(), limit=50, offset=offset
    )
    return render_template(
        "unit/queue.html", title=_("My queue"), items=items, offset=offset, show_assignee=False
    )


@bp.get("/unit/queue")
@login_required("queue.unit")
def unit_queue() -> Any:
    user = require_user()
    assert user.unit_id is not None
    offset = params.integer("offset", 0, maximum=params.MAX_OFFSET)
    items = queries.unit_queue(
        get_session(), unit_id=user.unit_id, now=now(), limit=50, offset=offset
    )
    return render_template(
        "unit/queue.html",
        title=_("Queue of %(unit)s", unit=names().unit(user.unit_code)),
        items=items,
        offset=offset,
        show_assignee=True,
    )
