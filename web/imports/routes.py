from __future__ import annotations

import secrets
from typing import Any

from flask import Response, abort, current_app, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from werkzeug.utils import secure_filename
from wtforms import BooleanField, SelectField

from engine import jobs
from engine.importing import DEFAULT_HEADERS, REQUIRED, template
from engine.jobs import enqueue_import
from engine.read import reference
from engine.settings import project_path
from web.choices import options
from web.context import login_required, require_user
from web.database import get_ctx, get_session, get_uow
from web.i18n import names
from web.imports import bp


class UploadForm(FlaskForm):
    campaign = SelectField(_l("Campaign"))
    file = FileField(
        _l("Spreadsheet (.csv or .xlsx)"),
        validators=[
            FileRequired(_l("Choose the file to import.")),
            FileAllowed(["csv", "xlsx"], _l("Only .csv and .xlsx files can be imported.")),
        ],
    )
    accept_good_rows = BooleanField(_l("Import the good rows even if some rows are bad"))


def _upload_dir() -> Any:
    path = project_path(current_app.config.get("IMPORT_DIR") or "instance/imports")
    path.mkdir(parents=True, exist_ok=True)
    return path


@bp.route("/imports", methods=["GET", "POST"])
@login_required("import.run")
def upload() -> Any:
    form = UploadForm()
    form.campaign.choices = options(
        ((c, names().campaign(c)) for c in reference.campaign_codes(get_session())), blank=None
    )
    if form.validate_on_submit():
        user = require_user()
        storage = form.file.data
        suffix = ".xlsx" if storage.filename.lower().endswith(".xlsx") else ".csv"
        path = _upload_dir() / f"{secrets.token_hex(8)}{suffix}"
        storage.save(path)
        uow = get_uow()
        job_id = enqueue_import(
            uow,
            path=path,
            filename=storage.filename,
            campaign=form.campaign.data,
            actor=user.actor,
            accept_good_rows=form.accept_good_rows.data,
        )
        uow.commit()
        if current_app.config.get("IMPORTS_INLINE"):
            # Tests and single-process drills: run it now instead of on the worker's next turn.
            claimed = jobs.claim_next(get_ctx())
            if claimed is not None:
                jobs.run_job(get_ctx(), claimed)
        return redirect(url_for("imports.job", job_id=job_id))
    fields = [(name, names, name in REQUIRED) for name, names in DEFAULT_HEADERS.items()]
    return render_template("imports/upload.html", form=form, fields=fields)


@bp.get("/imports/<int(max=2147483647):job_id>")
@login_required("import.run")
def job(job_id: int) -> Any:
    found = jobs.get_job(get_uow(), job_id, actor=require_user().actor)
    return render_template("imports/job.html", job=found)


@bp.get("/imports/<int(max=2147483647):job_id>/rejects.csv")
@login_required("import.run")
def rejects(job_id: int) -> Any:
    found = jobs.get_job(get_uow(), job_id, actor=require_user().actor)
    if found.rejects_path is None or not found.rejects_path.exists():
        abort(404)
    stem = secure_filename(found.filename.rsplit(".", 1)[0]) or "import"
    name = f"rejects-{stem}.csv"
    return Response(
        found.rejects_path.read_bytes(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/imports/template.<fmt>")
@login_required("import.run")
def template_file(fmt: str) -> Any:
    if fmt not in ("csv", "xlsx"):
        abort(404)
    mimetype = (
        "text/csv"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        template(fmt),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="opinions-template.{fmt}"'},
    )
