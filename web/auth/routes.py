from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.signin import sign_in
from web import sessions
from web.auth import bp
from web.auth.forms import SignInForm, SignOutForm
from web.context import current_user, home_for, now
from web.database import get_uow


def signin_message(result: Any) -> str:
    """The sign-in refusal in the reader's language (the engine says it in English)."""
    if result.retry_after:
        return _(
            "Too many failed sign-ins for this account. Wait %(seconds)s seconds and try again.",
            seconds=result.retry_after,
        )
    return _("Wrong username or password.")


def _safe_next(target: str | None) -> str | None:
    # Only local paths: never redirect to another site after sign-in.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    form = SignInForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200
    if form.validate_on_submit():
        result = sign_in(
            get_uow(),
            username=form.username.data or "",
            password=form.password.data or "",
            now=now(),
            remote_addr=request.remote_addr,
        )
        uow = get_uow()
        if result.actor is not None:
            sessions.begin(uow, result.actor.id)
        uow.commit()  # the new session, or the failure (it slows the next attempt down)
        if result.actor is not None:
            g.pop("current_user", None)
            flash(_("Signed in as %(user)s.", user=result.actor.username), "success")
            return redirect(_safe_next(form.next.data) or home_for(current_user()))
        form.password.errors = [*form.password.errors, signin_message(result)]
        status = 429 if result.retry_after else 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/signin.html", form=form), status


@bp.route("/signout", methods=["GET", "POST"])
def signout() -> Any:
    """POST with the form's CSRF token ends the session on the server. A GET (a link, an
    image on another site) changes nothing: it shows the sign-out button."""
    form = SignOutForm()
    if request.method == "GET":
        return render_template("auth/signout.html", form=form), 405, {"Allow": "POST"}
    if form.validate_on_submit():
        uow = get_uow()
        sessions.end(uow)
        uow.commit()
        g.pop("current_user", None)
        flash(_("You are signed out."), "success")
    return redirect(url_for("public.index"))
