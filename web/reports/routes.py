from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for

from engine import messages
from engine.draft import LANGUAGES, write_draft
from engine.forecast import unit_forecast
from engine.read import reference
from engine.report import FORMATS, ReportText, campaign_report, write_report
from engine.service_report import figure_name, item_name, service_report, unit_name
from web import params
from web.context import login_required, now
from web.database import get_ctx, get_read_uow, get_session, get_uow
from web.i18n import local_datetime, report_item
from web.messages import reader
from web.reports import bp
from web.reports.charts import CHARTS, chart_titles, render_chart

MIMETYPES = {
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXTENSIONS = {"text": "txt", "json": "json", "csv": "csv", "xlsx": "xlsx"}


def report_text() -> ReportText:
    """The downloads' headings and names in the reader's language."""
    return messages.report_text(reader(), item=report_item)


def _report(code: str) -> dict[str, Any]:
    as_of = params.day_or_instant("as_of")
    # A report tolerates a few seconds of lag: the standby, when one is close enough.
    return campaign_report(get_read_uow(), code, as_of=as_of, now=now())


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
    found = reference.campaign_workflow(get_session(), code)
    if found is not None and get_ctx().workflow(*found).report.on_time:
        # A service whose workflow names on-time figures (a hotline): the service report.
        service = service_report(get_uow(), code, as_of=request.args.get("as_of") or None)
        r = reader()

        def item(report: dict[str, Any], section: str, key: str) -> str:
            if section == "on_time":
                return figure_name(report, key, r)
            return item_name(report, section, key, r)

        return render_template(
            "reports/service.html",
            report=service,
            code=code,
            service_item=item,
            service_unit=lambda report, unit: unit_name(report, unit, r),
            service_as_of=lambda report: r.when(
                datetime.fromisoformat(report["as_of"]), report["programme"]["timezone"]
            ),
        )
    report = _report(code)
    as_of = request.args.get("as_of") or ""
    tz = report["campaign"]["timezone"]
    titles = chart_titles()
    forecast = unit_forecast(get_read_uow(), code, as_of=as_of or None, now=now())
    return render_template(
        "reports/report.html",
        report=report,
        forecast=forecast,
        code=code,
        as_of=as_of,
        report_as_of=local_datetime(datetime.fromisoformat(report["as_of"]), tz),
        deadline=local_datetime(
            datetime.fromisoformat(report["campaign"]["rectification_deadline"]), tz
        ),
        charts=[(name, titles[name]) for name in CHARTS],
        formats=FORMATS,
        languages=LANGUAGES,
    )


@bp.get("/reports/<code>/chart/<name>.svg")
@login_required("report.view")
def chart(code: str, name: str) -> Any:
    if name not in CHARTS:
        abort(404)
    svg = render_chart(name, _report(code), report_item)
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.get("/reports/<code>/report.<fmt>")
@login_required("report.view")
def download(code: str, fmt: str) -> Any:
    fmt = {ext: f for f, ext in EXTENSIONS.items()}.get(fmt, fmt)
    if fmt not in FORMATS:
        abort(404)
    report = _report(code)
    buffer = io.BytesIO()
    write_report(report, fmt, buffer, report_text())
    stamp = report["as_of_day"]
    name = f"report-{code}-{stamp}.{EXTENSIONS[fmt]}"
    return Response(
        buffer.getvalue(),
        mimetype=MIMETYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/reports/<code>/situation-report.docx")
@login_required("report.view")
def draft(code: str) -> Any:
    """The situation report drafted from the data (Word), in ``lang`` (zh_CN by default)."""
    lang = request.args.get("lang") or "zh_CN"
    as_of = request.args.get("as_of") or None
    buffer = io.BytesIO()
    write_draft(get_read_uow(), code, buffer, as_of=as_of, now=now(), lang=lang)
    stamp = _report(code)["as_of_day"]
    name = f"situation-report-{code}-{stamp}-{lang}.docx"
    return Response(
        buffer.getvalue(),
        mimetype=DOCX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
