"""The administration pages. Each asks the policy for its ``admin.*`` permission, calls one
engine service, commits once, and shows a refusal on the same page (422) with nothing written."""

from __future__ import annotations

import tomllib
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import admin as services
from engine import adminlog
from engine.admin import UNIT_KINDS
from engine.errors import EngineError, ValidationError
from engine.policy import SYSTEM_ROLE
from engine.read import admin as queries
from engine.read import pages as page_queries
from engine.tokens import list_tokens
from engine.versions import list_versions
from web.admin import bp
from web.context import can, login_required, require_user
from web.database import get_ctx, get_session, get_uow

# The admin pages, the permission each needs, and their titles (the index lists those a
# user may open; tests walk this table for the policy matrix).
SECTIONS: tuple[tuple[str, str, Any], ...] = (
    ("admin.users", "admin.users", _l("Users")),
    ("admin.units", "admin.units", _l("Units")),
    ("admin.campaigns", "admin.campaigns", _l("Campaigns")),
    ("admin.routing", "admin.routing", _l("Routing rules")),
    ("admin.tokens", "admin.tokens", _l("API tokens")),
    ("admin.workflows", "admin.workflows", _l("Workflow versions")),
    ("admin.log", "log.view", _l("Administration log")),
)

# Refusals the engine names, in the user's language (the engine's sentence otherwise).
MESSAGES: dict[str, Any] = {
    "admin.username_taken": _l("The username %(username)s is taken; choose another."),
    "admin.bad_username": _l(
        "A username is 2 to 64 lower-case letters, digits, dots, dashes or underscores."
    ),
    "admin.weak_password": _l(
        "This password is too weak: use at least %(minimum)s characters, letters with digits "
        "or symbols, not a common password and not the username."
    ),
    "admin.wrong_password": _l("The current password is not right."),
    "admin.same_password": _l("The new password must differ from the current one."),
    "admin.no_role": _l("There is no role %(role)s."),
    "admin.no_unit": _l("There is no unit %(unit)s."),
    "admin.no_user": _l("There is no user %(username)s."),
    "admin.deactivate_self": _l("You cannot deactivate your own account."),
    "admin.unit_loop": _l(
        "%(unit)s cannot move under %(parent)s: that is the unit itself or one of its own "
        "sub-units."
    ),
    "admin.unit_taken": _l("The unit code %(code)s is taken."),
    "admin.bad_unit_code": _l("A unit code is lower-case letters, digits, dashes or underscores."),
    "admin.bad_unit_kind": _l("Choose one of the listed kinds of unit."),
    "admin.unit_name": _l("The unit needs a name in English and in Chinese."),
    "admin.deadline_before_start": _l(
        "The rectification deadline %(deadline)s is before the campaign starts (%(starts_on)s)."
    ),
    "admin.bad_deadline": _l("The rectification deadline is not a date like 2026-04-15."),
    "admin.rule_empty": _l("A routing rule needs a category, an area or both."),
    "admin.no_campaign": _l("There is no campaign %(campaign)s."),
}


def message_of(exc: EngineError) -> str:
    """The refusal in the user's language when the engine named it, else its own sentence."""
    template = MESSAGES.get(exc.message_id or "")
    if template is None:
        return exc.message
    params = {k: v for k, v in exc.params.items() if isinstance(v, (str, int))}
    try:
        return str(template) % params if params else str(template)
    except (KeyError, ValueError):
        return exc.message


def _refused(exc: EngineError) -> None:
    get_uow().rollback()
    flash(message_of(exc), "error")


def _done(message: str, endpoint: str, **values: Any) -> Any:
    get_uow().commit()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def _form(name: str) -> str:
    return (request.form.get(name) or "").strip()


@bp.get("/admin")
@login_required()
def index() -> Any:
    """The sections the signed-in user may open; refused (403) when none."""
    sections = [(ep, title) for ep, permission, title in SECTIONS if can(permission)]
    if not sections:
        get_ctx().policy.require(require_user().actor, "admin.users")
    return render_template("admin/index.html", sections=sections)


# -- users ----------------------------------------------------------------------


def _roles() -> list[tuple[str, str]]:
    policy = get_ctx().policy
    return [(r, policy.title(r)) for r in sorted(policy.role_names() - {SYSTEM_ROLE})]


@bp.route("/admin/users", methods=["GET", "POST"])
@login_required("admin.users")
def users() -> Any:
    status = 200
    if request.method == "POST":
        try:
            info = services.create_user(
                get_uow(),
                require_user().actor,
                username=_form("username"),
                display_name=_form("display_name"),
                role=_form("role"),
                unit=_form("unit") or None,
                email=_form("email") or None,
                password=request.form.get("password") or "",
            )
        except ValidationError as exc:
            _refused(exc)
            status = 422
        else:
            return _done(
                _("User %(username)s created; they must change the password at first sign-in.",
                  username=info.username),
                "admin.users",
            )  # fmt: skip
    db = get_session()
    return render_template(
        "admin/users.html",
        users=queries.users(db),
        roles=_roles(),
        units=page_queries.unit_choices(db),
        posted=request.form if status != 200 else {},
    ), status


@bp.post("/admin/users/<username>")
@login_required("admin.users")
def user_action(username: str) -> Any:
    action = request.form.get("action")
    actor = require_user().actor
    try:
        if action == "deactivate":
            services.set_active(get_uow(), actor, username, False)
            message = _("%(username)s can no longer sign in.", username=username)
        elif action == "activate":
            services.set_active(get_uow(), actor, username, True)
            message = _("%(username)s can sign in again.", username=username)
        elif action == "reset":
            services.reset_password(get_uow(), actor, username, request.form.get("password") or "")
            message = _(
                "Password of %(username)s reset; they must change it at their next sign-in.",
                username=username,
            )
        elif action == "update":
            services.update_user(
                get_uow(),
                actor,
                username,
                role=_form("role") or None,
                unit=request.form.get("unit"),
            )
            message = _("%(username)s updated.", username=username)
        else:
            abort(400)
    except ValidationError as exc:
        _refused(exc)
        return users_page(422)
    return _done(message, "admin.users")


def users_page(status: int) -> Any:
    db = get_session()
    return render_template(
        "admin/users.html",
        users=queries.users(db),
        roles=_roles(),
        units=page_queries.unit_choices(db),
        posted={},
    ), status


@bp.route("/account/password", methods=["GET", "POST"])
@login_required()
def own_password() -> Any:
    status = 200
    if request.method == "POST":
        new = request.form.get("new_password") or ""
        if new != (request.form.get("confirm_password") or ""):
            flash(_("The two new passwords differ; type the same one twice."), "error")
            status = 422
        else:
            try:
                services.change_own_password(
                    get_uow(),
                    require_user().actor,
                    current_password=request.form.get("current_password") or "",
                    new_password=new,
                )
            except ValidationError as exc:
                _refused(exc)
                status = 422
            else:
                # The new password ends every session made with the old one, this one too:
                # sign the user in again on a fresh session in the same transaction.
                from web.sessions import begin

                begin(get_uow(), require_user().id)
                get_uow().commit()
                flash(_("Your password is changed."), "success")
                from web.context import home_for

                return redirect(home_for(require_user()))
    return render_template("admin/password.html"), status


# -- units ------------------------------------------------------------------------


@bp.route("/admin/units", methods=["GET", "POST"])
@login_required("admin.units")
def units() -> Any:
    status = 200
    if request.method == "POST":
        actor = require_user().actor
        code = _form("code")
        try:
            if request.form.get("action") == "update":
                services.update_unit(
                    get_uow(),
                    actor,
                    code,
                    name=_form("name") or None,
                    name_zh=_form("name_zh") or None,
                    kind=_form("kind") or None,
                    parent=request.form.get("parent"),
                )
                message = _("Unit %(code)s updated.", code=code)
            else:
                services.create_unit(
                    get_uow(),
                    actor,
                    code=code,
                    name=_form("name"),
                    name_zh=_form("name_zh"),
                    kind=_form("kind"),
                    parent=_form("parent") or None,
                )
                message = _("Unit %(code)s created.", code=code)
        except ValidationError as exc:
            _refused(exc)
            status = 422
        else:
            return _done(message, "admin.units")
    return render_template(
        "admin/units.html", tree=queries.unit_tree(get_session()), kinds=UNIT_KINDS
    ), status


# -- campaigns ----------------------------------------------------------------------


def _campaign_data() -> dict[str, Any]:
    data: dict[str, Any] = {
        key: _form(key)
        for key in (
            "code",
            "timezone",
            "starts_on",
            "ends_on",
            "rectification_deadline",
            "number_prefix",
            "workflow",
            "calendar",
        )
        if _form(key)
    }
    data["name"] = {"zh_CN": _form("name_zh"), "en": _form("name")}
    categories = []
    for line in (request.form.get("categories") or "").splitlines():
        code, _sep, names = line.partition("=")
        zh, _bar, en = names.partition("|")
        if code.strip():
            categories.append(
                {"code": code.strip(), "name": {"zh_CN": zh.strip(), "en": en.strip()}}
            )
    if categories:
        data["categories"] = categories
    return data


@bp.route("/admin/campaigns", methods=["GET", "POST"])
@login_required("admin.campaigns")
def campaigns() -> Any:
    status = 200
    if request.method == "POST":
        actor = require_user().actor
        try:
            upload = request.files.get("file")
            if upload is not None and upload.filename:
                try:
                    data = tomllib.loads(upload.read().decode("utf-8"))
                except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                    raise ValidationError(
                        f"{upload.filename}: not a UTF-8 TOML campaign file ({exc})",
                        fields={"file": "not TOML"},
                    ) from None
                campaign = services.save_campaign(get_uow(), actor, data, source=upload.filename)
            else:
                campaign = services.save_campaign(get_uow(), actor, _campaign_data())
            code = campaign.code
        except ValidationError as exc:
            _refused(exc)
            status = 422
        else:
            return _done(_("Campaign %(code)s saved.", code=code), "admin.campaigns")
    db = get_session()
    edit = queries.campaign(db, request.args.get("edit", "")) if request.args.get("edit") else None
    return render_template(
        "admin/campaigns.html",
        campaigns=queries.campaigns(db),
        edit=edit,
        workflows=get_ctx().registry.all(),
        posted=request.form if status != 200 else {},
    ), status


@bp.post("/admin/campaigns/<code>/intake")
@login_required("admin.campaigns")
def campaign_intake(code: str) -> Any:
    reopen = request.form.get("action") == "reopen"
    try:
        services.close_intake(get_uow(), require_user().actor, code, reopen=reopen)
    except EngineError as exc:
        _refused(exc)
        return redirect(url_for("admin.campaigns"))
    return _done(
        _("Intake of %(code)s is open again.", code=code)
        if reopen
        else _("Intake of %(code)s is closed: no new opinion is recorded.", code=code),
        "admin.campaigns",
    )


# -- routing ---------------------------------------------------------------------


@bp.route("/admin/routing", methods=["GET", "POST"])
@login_required("admin.routing")
def routing() -> Any:
    status = 200
    if request.method == "POST":
        actor = require_user().actor
        try:
            if request.form.get("action") == "delete":
                rule_id = request.form.get("rule", type=int)
                if rule_id is None:
                    abort(400)
                services.delete_routing_rule(get_uow(), actor, rule_id)
                message = _("Routing rule %(id)s deleted.", id=rule_id)
            else:
                rule = services.add_routing_rule(
                    get_uow(),
                    actor,
                    unit=_form("unit"),
                    category=_form("category") or None,
                    area=_form("area") or None,
                    campaign=_form("campaign") or None,
                )
                message = _("Routing rule %(id)s added.", id=rule.id)
        except EngineError as exc:
            _refused(exc)
            status = 422
        else:
            return _done(message, "admin.routing")
    db = get_session()
    return render_template(
        "admin/routing.html",
        rules=queries.routing_rules(db),
        units=page_queries.unit_choices(db),
        campaigns=queries.campaigns(db),
    ), status


# -- API tokens ------------------------------------------------------------------------


@bp.route("/admin/tokens", methods=["GET", "POST"])
@login_required("admin.tokens")
def tokens() -> Any:
    status = 200
    issued = None
    if request.method == "POST":
        actor = require_user().actor
        try:
            if request.form.get("action") == "revoke":
                token_id = request.form.get("token", type=int)
                if token_id is None:
                    abort(400)
                services.revoke_token(get_uow(), actor, token_id)
                return _done(_("Token %(id)s revoked.", id=token_id), "admin.tokens")
            issued = services.issue_token(get_uow(), actor, _form("username"), name=_form("name"))
            get_uow().commit()
        except EngineError as exc:
            _refused(exc)
            status = 422
    db = get_session()
    return render_template(
        "admin/tokens.html",
        tokens=list_tokens(db),
        users=[u for u in queries.users(db) if u.active],
        issued=issued,
    ), status


# -- workflows and the log ---------------------------------------------------------------


@bp.get("/admin/workflows")
@login_required("admin.workflows")
def workflows() -> Any:
    return render_template(
        "admin/workflows.html",
        workflows=get_ctx().registry.all(),
        used=queries.workflow_use(get_session()),
        # tickets per version and the migration dry run (engine.versions, issue 11)
        versions=list_versions(get_uow()),
    )


@bp.get("/admin/log")
@login_required("log.view")
def log() -> Any:
    db = get_session()
    problems = adminlog.verify(db, key=get_ctx().audit_key)
    return render_template("admin/log.html", entries=queries.admin_log(db), problems=problems)
