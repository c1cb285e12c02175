from __future__ import annotations

import io
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for

from engine.read import reference
from engine.report import FORMATS, campaign_report, write_report
from web import params
from web.context import login_required, now
from web.database import get_session, get_uow
from web.reports import bp
from web.reports.charts import CHARTS, render_chart

MIMETYPES = {
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXTENSIONS = {"text": "txt", "json": "json", "csv": "csv", "xlsx": "xlsx"}


def _report(code: str) -> dict[str, Any]:
    as_of = params.day_or_instant("as_of")
    return campaign_report(get_uow(), code, as_of=as_of, now=now())


@bp.get("/reports")
@login_required("report.view")
def index() -> Any:
    codes = reference.campaign_codes(get_session(), newest_first=True)
    if len(codes) == 1:
        return redirect(url_for("reports.campaign", code=codes[0]))
    return render_template("reports/index.html", codes=codes)


@bp.get("/reports/<code>")
@login_required("report.view")
def campaign(code: str) -> Any:
    report = _report(code)
    as_of = request.args.get("as_of") or ""
    return render_template(
        "reports/report.html",
        report=report,
        code=code,
        as_of=as_of,
        charts=CHARTS,
        formats=FORMATS,
    )


@bp.get("/reports/<code>/chart/<name>.svg")
@login_required("report.view")
def chart(code: str, name: str) -> Any:
    if name not in CHARTS:
        abort(404)
    svg = render_chart(name, _report(code))
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.get("/reports/<code>/report.<fmt>")
@login_required("report.view")
def download(code: str, fmt: str) -> Any:
    fmt = {ext: f for f, ext in EXTENSIONS.items()}.get(fmt, fmt)
    if fmt not in FORMATS:
        abort(404)
    report = _report(code)
    buffer = io.BytesIO()
    write_report(report, fmt, buffer)
    stamp = report["as_of"][:10]
    name = f"report-{code}-{stamp}.{EXTENSIONS[fmt]}"
    return Response(
        buffer.getvalue(),
        mimetype=MIMETYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
