from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from engine.errors import NotFound
from engine.notifications import inbox, mark_read
from web import params
from web.context import login_required, now, require_user
from web.database import get_session, get_uow
from web.inbox import bp


class MarkReadForm(FlaskForm):
    pass


@bp.get("/inbox")
@login_required()
def index() -> Any:
    user = require_user()
    unread_only = request.args.get("unread") == "1"
    found = inbox(get_uow(), user.id, unread_only=unread_only, limit=100)
    return render_template(
        "inbox/index.html",
        items=found.current,
        older=found.older,
        unread=found.unread,
        unread_only=unread_only,
        form=MarkReadForm(formdata=None),
    )


@bp.post("/inbox/read")
@login_required()
def read() -> Any:
    user = require_user()
    db = get_session()
    form = MarkReadForm()
    if form.validate_on_submit():
        try:
            ids = params.integers("ids", minimum=1, source=request.form) or None
            count = mark_read(db, user.id, now=now(), ids=ids)
            get_uow().commit()
        except (params.BadParameter, NotFound):
            db.rollback()
            flash(_("That notice is not in your inbox; nothing was marked."), "error")
        else:
            flash(_("Marked %(count)s notice(s) read.", count=count), "success")
    return redirect(url_for("inbox.index"))
