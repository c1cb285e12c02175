"""``rectiflow workflow validate|list|migrate``.

One ``workflow`` group for processes and their administration. ``rectiflow workflows
list`` (the administration's former group) stays a hidden alias of ``workflow list``
for one release and says so on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.context import AppContext, _, fail, pass_app
from cli.main import main
from engine.errors import EngineError
from engine.policy import load_policy_file
from engine.settings import project_path
from engine.workflow import WorkflowRegistry


@main.group()
def workflow() -> None:
    """Workflow files and versions: validate a file, list versions, migrate tickets."""


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_app
def validate(app: AppContext, files: tuple[Path, ...]) -> None:
    """Check workflow FILES against the policy; exit 0 when all are sound, 1 listing every
    problem by file and item."""
    from engine.versions import validate_workflow_file

    policy = load_policy_file(project_path(app.settings.get("policy", "config/policy.toml")))
    try:
        registry: WorkflowRegistry | None = WorkflowRegistry.from_directory(
            project_path(app.settings.get("workflows_dir", "workflows"))
        )
    except EngineError:
        registry = None  # the installed directory is broken: still check the files given
    bad = 0
    for path in files:
        found, problems = validate_workflow_file(path, policy, registry)
        if problems:
            bad += 1
            click.echo(_("%(file)s: %(count)s problem(s)", file=path, count=len(problems)))
            for problem in problems:
                click.echo(f"  {problem}")
        else:
            assert found is not None
            click.echo(
                _(
                    "%(file)s: %(key)s is valid (%(states)s states, %(triggers)s triggers, "
                    "%(queues)s queues)",
                    file=path,
                    key=found.key,
                    states=len(found.states),
                    triggers=len(found.triggers),
                    queues=len(found.queues),
                )
            )
    raise SystemExit(1 if bad else 0)


@workflow.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_app
def list_(app: AppContext, fmt: str) -> None:
    """Every workflow version installed: its title, the campaigns and programmes that run
    on it, how many tickets (open ones too)."""
    from engine.versions import list_versions

    try:
        with app.unit_of_work() as uow:
            versions = list_versions(uow)
    except EngineError as exc:
        fail(exc)
    if fmt == "json":
        click.echo(json.dumps([v.__dict__ for v in versions], indent=2, ensure_ascii=False))
        return
    r = app.reader
    for v in versions:
        click.echo(
            f"{v.name} v{v.version}  "
            + _(
                "%(states)s states, %(triggers)s triggers, %(tickets)s tickets (%(open)s open)",
                states=v.states,
                triggers=v.triggers,
                tickets=v.tickets,
                open=v.open_tickets,
            )
            + f"  {r.title(v.titles, v.title)}  "
            + _("campaigns: %(codes)s", codes=", ".join(v.campaigns) or _("none"))
            + f"  [{v.source}]"
        )


@main.group("workflows", hidden=True)
def workflows_alias() -> None:
    """Former name of ``workflow`` (``workflows list``); kept for one release."""
    click.echo(
        _(
            "note: `rectiflow workflows` is now `rectiflow workflow`; the old name goes next release"
        ),
        err=True,
    )


workflows_alias.add_command(list_, "list")


@workflow.command("migrate")
@click.argument("name")
@click.option("--to", "to_version", type=int, required=True, help="The version to move to.")
@click.option(
    "--plan", "plan_path", type=click.Path(path_type=Path), required=True, help="Plan (TOML)."
)
@click.option("--dry-run", is_flag=True, help="Print what would happen; write nothing.")
@click.option("--only", "only", help="campaign=C,state=S,unit=U,number=N (any of them).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_app
def migrate(
    app: AppContext,
    name: str,
    to_version: int,
    plan_path: Path,
    dry_run: bool,
    only: str | None,
    fmt: str,
) -> None:
    """Move NAME's running tickets to version --to by a plan; each ticket in its own
    transaction with a `migrate` log row. Re-running finishes what a crash left."""
    from engine.versions import apply_migration, load_plan, plan_migration

    try:
        plan = load_plan(app.ctx.registry, plan_path, name=name, to_version=to_version)
        if dry_run:
            result = plan_migration(app.ctx, plan, only=only)
        else:
            result = apply_migration(
                app.ctx, plan, only=only, now=app.now() if app.now_text else None
            )
    except EngineError as exc:
        problems = exc.details.get("problems")
        if problems:
            click.echo(
                _(
                    "error: %(file)s: the plan is refused",
                    file=exc.details.get("file", plan_path),
                ),
                err=True,
            )
            for p in problems:
                click.echo(f"  {p['item']}: {p['problem']}", err=True)
            raise SystemExit(2) from None
        fail(exc)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(render_result(result), nl=False)


def render_result(result: Any) -> str:
    """The dry run (or what was done) as text in the reader's language; states are the codes
    the plan names, times ISO with their offset (as the plan's author compares them)."""
    plan = result.plan
    head = (
        _("dry run: nothing was written")
        if result.dry_run
        else _("%(count)s migrated", count=result.migrated)
    )
    lines = [
        f"{plan.workflow} v{plan.from_version} -> v{plan.to_version} "
        + _("(plan %(digest)s)", digest=plan.digest[:12])
        + f": {head}",
        _("moving %(count)s ticket(s):", count=result.moving),
    ]
    for (a, b), n in sorted(result.moves.items()):
        lines.append(f"  {a} -> {b}: {n}")
    lines.append(_("timers recalculated: %(count)s", count=len(result.retimed)))
    for d in result.retimed:
        old = d.old_due.isoformat(timespec="minutes") if d.old_due else _("none")
        new = d.new_due.isoformat(timespec="minutes") if d.new_due else _("none (no limit)")
        lines.append(
            f"  {d.number} ({d.to_state}): " + _("due %(old)s -> %(new)s", old=old, new=new)
        )
    lines.append(_("cannot move: %(count)s", count=len(result.refused)))
    for d in result.refused:
        lines.append(f"  {d.number} ({d.from_state}): {d.reason}")
    return "\n".join(lines) + "\n"
