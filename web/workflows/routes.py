from __future__ import annotations

import tomllib
from typing import Any

from flask import render_template, request

from engine.errors import EngineError
from engine.versions import parse_plan, plan_migration
from engine.workflow import MAX_FILE_BYTES
from web.context import login_required
from web.database import get_ctx, get_uow
from web.workflows import bp


@bp.route("/admin/workflows/migrate", methods=["GET", "POST"])
@login_required("admin.workflows")
def migrate() -> Any:
    """The dry run of a migration plan pasted into the form (it is applied from the CLI)."""
    text = request.form.get("plan", "")
    only = request.form.get("only", "").strip() or None
    result, problems, status = None, [], 200
    if request.method == "POST":
        raw = text.encode("utf-8")
        try:
            if len(raw) > MAX_FILE_BYTES:
                problems = [f"plan: is larger than {MAX_FILE_BYTES} bytes"]
            else:
                data = tomllib.loads(text)
                plan = parse_plan(get_ctx().registry, data, raw, "the plan")
                result = plan_migration(get_uow(), plan, only=only)
        except tomllib.TOMLDecodeError as exc:
            problems = [f"the plan: not valid TOML: {exc}"]
        except EngineError as exc:
            listed = exc.details.get("problems")
            problems = [f"{p['item']}: {p['problem']}" for p in listed] if listed else [exc.message]
        if problems:
            status = 422
    return render_template(
        "workflows/migrate.html", plan=text, only=only or "", result=result, problems=problems
    ), status
