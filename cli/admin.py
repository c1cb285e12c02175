"""``rectiflow users|units|campaigns|routing ...`` and ``audit verify-admin``.

Each command acts as ``--as USER`` (refused unless the policy grants that user the
``admin.*`` permission) or, without it, as the operator of the installation (a shell on
the server is the installation's administrator); the admin log records which.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from cli.audit import audit, show_problems
from cli.context import AppContext, _, fail, pass_app, when
from cli.main import main
from cli.users import users
from engine import admin as admin_services
from engine import adminlog
from engine.actors import Actor, get_actor
from engine.admin import UNIT_KINDS
from engine.context import UnitOfWork
from engine.errors import EngineError
from engine.read import admin as admin_read

AS_OPTION = click.option(
    "--as",
    "username",
    help="Act as this user (the policy decides); default: the installation's operator.",
)


def who(uow: UnitOfWork, username: str | None) -> Actor:
    """The acting user: ``--as USER``, or the operator (recorded as ``operator:<login>``)."""
    if username:
        return get_actor(uow.session, username)
    try:
        login = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        login = "unknown"
    return Actor(username=f"operator:{login}"[:64], role="admin")


# -- users --------------------------------------------------------------------


def _password_option(prompt: str) -> click.Option:  # type: ignore[type-arg]
    return click.option(  # type: ignore[return-value]
        "--password",
        prompt=prompt,
        hide_input=True,
        confirmation_prompt=True,
        help="The password (asked for when not given; at least 10 characters, not common).",
    )


@users.command("create")
@click.argument("new_username")
@click.option("--role", required=True, help="A role of the policy (officer, clerk, admin...).")
@click.option("--unit", help="The unit code (see `rectiflow units list`).")
@click.option("--name", "display_name", default="", help="The name shown on pages.")
@click.option("--email")
@_password_option("First password (the user must change it)")
@AS_OPTION
@pass_app
def users_create(
    app: AppContext,
    new_username: str,
    role: str,
    unit: str | None,
    display_name: str,
    email: str | None,
    password: str,
    username: str | None,
) -> None:
    """Create a user who must choose a new password at the first sign-in."""
    try:
        with app.unit_of_work() as uow:
            info = admin_services.create_user(
                uow,
                who(uow, username),
                username=new_username,
                display_name=display_name,
                role=role,
                unit=unit,
                email=email,
                password=password,
            )
    except EngineError as exc:
        fail(exc)
    r = app.reader
    click.echo(
        _(
            "user %(user)s created (%(role)s%(unit)s); they must change the password at their "
            "first sign-in",
            user=info.username,
            role=r.role(info.role),
            unit=_(", ") + r.unit(info.unit) if info.unit else "",
        )
    )


@users.command("update")
@click.argument("target")
@click.option("--role")
@click.option("--unit", help="A unit code; '' takes the user out of any unit.")
@click.option("--name", "display_name")
@click.option("--email")
@AS_OPTION
@pass_app
def users_update(
    app: AppContext,
    target: str,
    role: str | None,
    unit: str | None,
    display_name: str | None,
    email: str | None,
    username: str | None,
) -> None:
    """Change a user's role, unit, name or e-mail."""
    try:
        with app.unit_of_work() as uow:
            info = admin_services.update_user(
                uow,
                who(uow, username),
                target,
                role=role,
                unit=unit,
                display_name=display_name,
                email=email,
            )
    except EngineError as exc:
        fail(exc)
    r = app.reader
    click.echo(
        _(
            "user %(user)s: %(role)s, %(unit)s, %(name)s",
            user=info.username,
            role=r.role(info.role),
            unit=r.unit(info.unit) if info.unit else _("no unit"),
            name=info.display_name,
        )
    )


@users.command("reset-password")
@click.argument("target")
@_password_option("New password (the user must change it)")
@AS_OPTION
@pass_app
def users_reset_password(app: AppContext, target: str, password: str, username: str | None) -> None:
    """Give a user a new password they must change at their next sign-in."""
    try:
        with app.unit_of_work() as uow:
            admin_services.reset_password(uow, who(uow, username), target, password)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _(
            "password of %(user)s reset; they must change it at their next sign-in",
            user=target,
        )
    )


@users.command("passwd")
@click.argument("target")
@click.option("--current", prompt="Current password", hide_input=True)
@click.option(
    "--new", "new_password", prompt="New password", hide_input=True, confirmation_prompt=True
)
@pass_app
def users_passwd(app: AppContext, target: str, current: str, new_password: str) -> None:
    """Change one's own password (the current one is needed)."""
    try:
        with app.unit_of_work() as uow:
            admin_services.change_own_password(
                uow,
                get_actor(uow.session, target),
                current_password=current,
                new_password=new_password,
            )
    except EngineError as exc:
        fail(exc)
    click.echo(_("password of %(user)s changed", user=target))


# -- units --------------------------------------------------------------------


@main.group()
def units() -> None:
    """The unit tree: list, create, rename, move."""


@units.command("list")
@pass_app
def units_list(app: AppContext) -> None:
    """The tree, indented: code, kind, name, active users."""
    with app.unit_of_work() as uow:
        nodes = admin_read.unit_tree(uow.session)
    for n in nodes:
        click.echo(
            f"{'  ' * n.depth}{n.code}\t{unit_kind(n.kind)}\t{app.reader.unit(n.code)}\t"
            + _("%(count)s user(s)", count=n.users)
        )


def unit_kind(kind: str) -> str:
    kinds = {
        "bureau": _("bureau"),
        "department": _("department"),
        "station": _("police station"),
        "brigade": _("brigade"),
        "office": _("office"),
    }
    return kinds.get(kind, kind)


@units.command("create")
@click.argument("code")
@click.option("--name", required=True, help="The name in English.")
@click.option("--name-zh", required=True, help="The name in Chinese.")
@click.option("--kind", type=click.Choice(UNIT_KINDS), default="department", show_default=True)
@click.option("--parent", help="The parent unit's code (none: a root).")
@AS_OPTION
@pass_app
def units_create(
    app: AppContext,
    code: str,
    name: str,
    name_zh: str,
    kind: str,
    parent: str | None,
    username: str | None,
) -> None:
    """Add a unit to the tree."""
    try:
        with app.unit_of_work() as uow:
            admin_services.create_unit(
                uow,
                who(uow, username),
                code=code,
                name=name,
                name_zh=name_zh,
                kind=kind,
                parent=parent,
            )
    except EngineError as exc:
        fail(exc)
    click.echo(
        _("unit %(code)s created under %(parent)s", code=code, parent=parent)
        if parent
        else _("unit %(code)s created", code=code)
    )


@units.command("update")
@click.argument("code")
@click.option("--name")
@click.option("--name-zh")
@click.option("--kind", type=click.Choice(UNIT_KINDS))
@click.option("--parent", help="Move under this unit ('' : to the root).")
@AS_OPTION
@pass_app
def units_update(
    app: AppContext,
    code: str,
    name: str | None,
    name_zh: str | None,
    kind: str | None,
    parent: str | None,
    username: str | None,
) -> None:
    """Rename a unit, change its kind or move it (never under itself or its own sub-units)."""
    try:
        with app.unit_of_work() as uow:
            admin_services.update_unit(
                uow, who(uow, username), code, name=name, name_zh=name_zh, kind=kind, parent=parent
            )
    except EngineError as exc:
        fail(exc)
    click.echo(_("unit %(code)s updated", code=code))


# -- campaigns ----------------------------------------------------------------


@main.group()
def campaign() -> None:
    """Campaigns and continuous programmes: list, load from a file, close intake."""


@main.group("campaigns", hidden=True)
def campaigns() -> None:
    """Former name of ``campaign``; kept for one release."""
    click.echo(
        _(
            "note: `rectiflow campaigns` is now `rectiflow campaign`; the old name goes next release"
        ),
        err=True,
    )


@campaign.command("list")
@pass_app
def campaigns_list(app: AppContext) -> None:
    """One line per campaign: code, dates, deadline, workflow, intake, tickets."""
    with app.unit_of_work() as uow:
        rows = admin_read.campaigns(uow.session)
    r = app.reader
    for c in rows:
        intake = (
            _("intake closed %(day)s", day=r.day(c.intake_closed_at, c.timezone))
            if c.intake_closed_at
            else _("intake open")
        )
        click.echo(
            f"{c.code}\t{r.day(c.starts_on)} – {r.day(c.ends_on)}\t"
            + _("deadline %(when)s", when=when(c.rectification_deadline, c.timezone))
            + f"\t{c.workflow}\t{intake}\t"
            + _("%(count)s ticket(s)", count=c.tickets)
            + f"\t{r.campaign(c.code)}"
        )


@campaign.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@AS_OPTION
@pass_app
def campaigns_load(app: AppContext, path: Path, username: str | None) -> None:
    """Create a campaign or continuous programme (and its categories) from a TOML file like
    config/campaigns/consultation-2005.toml, or update the one with its code; running tickets
    keep their workflow version. Recorded in the administration log."""
    try:
        with app.unit_of_work() as uow:
            found = admin_services.load_campaign_file(uow, who(uow, username), path)
            line = _(
                "%(code)s: %(what)s %(name)s on %(workflow)s v%(version)s, %(count)s categories",
                code=found.code,
                what=_("continuous programme") if found.continuous else _("campaign"),
                name=repr(found.name),
                workflow=found.workflow_name,
                version=found.workflow_version,
                count=len(found.categories),
            )
    except EngineError as exc:
        fail(exc)
    click.echo(line)


@campaign.command("close")
@click.argument("code")
@click.option("--reopen", is_flag=True, help="Accept new opinions again.")
@AS_OPTION
@pass_app
def campaigns_close(app: AppContext, code: str, reopen: bool, username: str | None) -> None:
    """Close a campaign's intake: no new opinion is recorded from now on."""
    try:
        with app.unit_of_work() as uow:
            admin_services.close_intake(uow, who(uow, username), code, reopen=reopen)
    except EngineError as exc:
        fail(exc)
    click.echo(
        _("campaign %(code)s: intake open again", code=code)
        if reopen
        else _("campaign %(code)s: intake closed", code=code)
    )


for _name, _command in list(campaign.commands.items()):
    campaigns.add_command(_command, _name)


# -- routing ------------------------------------------------------------------


@main.group()
def routing() -> None:
    """Routing rules: category and/or area to a unit."""


@routing.command("list")
@pass_app
def routing_list(app: AppContext) -> None:
    with app.unit_of_work() as uow:
        rows = admin_read.routing_rules(uow.session)
    reader = app.reader
    for r in rows:
        click.echo(
            f"{r.id}\t{reader.campaign(r.campaign) if r.campaign else _('all campaigns')}\t"
            + _(
                "category %(category)s", category=reader.category(r.category) if r.category else "*"
            )
            + "\t"
            + _("area %(area)s", area=r.area or "*")
            + f"\t→ {reader.unit(r.unit)}"
        )


@routing.command("add")
@click.option("--unit", required=True)
@click.option("--category")
@click.option("--area")
@click.option("--campaign")
@AS_OPTION
@pass_app
def routing_add(
    app: AppContext,
    unit: str,
    category: str | None,
    area: str | None,
    campaign: str | None,
    username: str | None,
) -> None:
    """Add a rule (the most specific matching rule wins)."""
    try:
        with app.unit_of_work() as uow:
            rule = admin_services.add_routing_rule(
                uow, who(uow, username), unit=unit, category=category, area=area, campaign=campaign
            )
            rule_id = rule.id
    except EngineError as exc:
        fail(exc)
    click.echo(_("routing rule %(id)s added", id=rule_id))


@routing.command("delete")
@click.argument("rule_id", type=int)
@AS_OPTION
@pass_app
def routing_delete(app: AppContext, rule_id: int, username: str | None) -> None:
    try:
        with app.unit_of_work() as uow:
            admin_services.delete_routing_rule(uow, who(uow, username), rule_id)
    except EngineError as exc:
        fail(exc)
    click.echo(_("routing rule %(id)s deleted", id=rule_id))


# -- the admin log --------------------------------------------------------------


@audit.command("verify-admin")
@pass_app
def verify_admin(app: AppContext) -> None:
    """Check the admin log's hash chain; exit 0 when intact, 1 when a row was changed,
    deleted, reordered or inserted."""
    with app.unit_of_work() as uow:
        problems = adminlog.verify(uow.session, key=uow.audit_key)
        rows = admin_read.admin_log_count(uow.session)
    if not problems:
        click.echo(_("admin log intact (%(count)s change(s))", count=rows))
        return
    show_problems(problems)
    click.echo(_("%(count)s problem(s) found", count=len(problems)), err=True)
    raise SystemExit(1)
