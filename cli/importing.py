"""``rectiflow import FILE --campaign CODE`` and ``rectiflow import-template``."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import click

from cli.context import AppContext, _, fail, pass_app
from cli.main import main
from engine.errors import EngineError, ValidationError
from engine.importing import ColumnMapping, ImportRejected, Progress, import_file, template
from engine.messages import translate


def _mapping(pairs: tuple[str, ...]) -> ColumnMapping:
    """``--mapping text=意见内容`` pairs, or ``--mapping @file.toml`` ([mapping] field = header)."""
    overrides: dict[str, list[str]] = {}
    for pair in pairs:
        if pair.startswith("@"):
            with open(pair[1:], "rb") as handle:
                data = tomllib.load(handle)
            for name, headers in data.get("mapping", data).items():
                overrides.setdefault(name, []).extend(
                    [headers] if isinstance(headers, str) else list(headers)
                )
            continue
        name, sep, header = pair.partition("=")
        if not sep or not header.strip():
            raise ValidationError(
                _("--mapping %(pair)s: write FIELD=HEADER, e.g. text=意见内容", pair=repr(pair)),
                fields={"mapping": _("write FIELD=HEADER")},
            )
        overrides.setdefault(name.strip(), []).append(header.strip())
    return ColumnMapping.with_overrides(overrides)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", "campaign_code", required=True)
@click.option("--as", "username", default="clerk", show_default=True, help="The recording clerk.")
@click.option(
    "--accept-good-rows",
    is_flag=True,
    help="Import the good rows even if some are bad; the bad ones go to --rejects.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="CSV file for the rejected rows (default: FILE.rejects.csv).",
)
@click.option(
    "--mapping",
    multiple=True,
    metavar="FIELD=HEADER|@FILE.toml",
    help="Which column holds a field, e.g. --mapping text=意见内容 (repeatable).",
)
@click.option("--encoding", help="Force the CSV encoding (utf-8, gb18030...); default: detect.")
@click.option("--batch-size", default=2000, show_default=True, help="Rows per transaction.")
@pass_app
def import_command(
    app: AppContext,
    file: Path,
    campaign_code: str,
    username: str,
    accept_good_rows: bool,
    rejects: Path | None,
    mapping: tuple[str, ...],
    encoding: str | None,
    batch_size: int,
) -> None:
    """Import opinions from a CSV or XLSX file. Every row is checked first; a file with bad
    rows imports nothing (each bad row is listed) unless --accept-good-rows."""
    rejects_path = rejects or file.with_name(file.name + ".rejects.csv")
    shown = {"phase": ""}

    def progress(p: Progress) -> None:
        if p.phase != shown["phase"]:
            if shown["phase"]:
                click.echo("", err=True)
            shown["phase"] = p.phase
        percent = 100 * p.done // p.total if p.total else 100
        click.echo(
            "\r"
            + _(
                "%(phase)s: %(rows)s rows (%(percent)s%%)",
                phase=p.phase,
                rows=p.rows,
                percent=percent,
            ),
            nl=False,
            err=True,
        )

    try:
        column_mapping = _mapping(mapping)
        with open(rejects_path, "w", encoding="utf-8-sig", newline="") as rejects_file:
            result = import_file(
                app.ctx,
                file,
                campaign=campaign_code,
                username=username,
                now=app.now(),
                mapping=column_mapping,
                encoding=encoding,
                accept_good_rows=accept_good_rows,
                rejects=rejects_file,
                batch_size=batch_size,
                progress=progress if sys.stderr.isatty() or app.settings.get("progress") else None,
            )
    except ImportRejected as exc:
        rejects_path.unlink(missing_ok=True)
        r = app.reader
        click.echo(
            _("error: %(message)s", message=translate(exc.message.split(": ", 1)[0], r)),
            err=True,
        )
        for error in exc.errors:
            click.echo(f"  {translate(str(error), r)}", err=True)
        if exc.bad_rows:
            click.echo(
                _("nothing was imported; fix the rows, or run again with --accept-good-rows"),
                err=True,
            )
        raise SystemExit(2) from None
    except EngineError as exc:
        rejects_path.unlink(missing_ok=True)
        fail(exc)
    if shown["phase"]:
        click.echo("", err=True)
    if not result.rejected:
        rejects_path.unlink(missing_ok=True)
    click.echo(
        _(
            "%(created)s opinions imported into %(code)s (%(rows)s rows; %(already)s already "
            "imported; %(repeated)s repeated in the file; %(empty)s empty rows%(encoding)s)",
            created=result.created,
            code=campaign_code,
            rows=result.rows,
            already=result.already_imported,
            repeated=result.duplicates_in_file,
            empty=result.empty_rows,
            encoding=_("; encoding %(name)s", name=result.encoding) if result.encoding else "",
        )
    )
    if result.rejected:
        click.echo(
            _(
                "%(count)s bad rows written to %(file)s",
                count=result.rejected,
                file=rejects_path,
            )
        )


@main.command("import-template")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
def import_template(fmt: str, output: str) -> None:
    """Write the spreadsheet template clerks fill in (header row and one example)."""
    Path(output).write_bytes(template(fmt))
    click.echo(_("template written to %(file)s", file=output))


@main.group()
def duplicates() -> None:
    """Group near-duplicate opinions and act on a group in one audited batch."""


@duplicates.command("find")
@click.option("--campaign", "campaign_code", required=True)
@click.option("--threshold", default=0.8, show_default=True, help="Similarity, 0–1.")
@pass_app
def duplicates_find(app: AppContext, campaign_code: str, threshold: float) -> None:
    """Group the open opinions that say the same thing (stored on the tickets)."""
    from engine.duplicates import find_duplicates

    try:
        with app.unit_of_work() as uow:
            groups = find_duplicates(uow.session, campaign_code, threshold=threshold)
    except EngineError as exc:
        fail(exc)
    for group in groups:
        click.echo(
            _("group %(group)s: %(count)s tickets", group=group.group, count=len(group.numbers))
        )
        for number, text in zip(group.numbers, group.texts, strict=True):
            click.echo(f"  {number}  {text[:70]}")
    click.echo(_("%(count)s groups", count=len(groups)))


@duplicates.command("act")
@click.argument("group", type=int)
@click.argument("trigger")
@click.option("--as", "username", required=True)
@click.option("--data", "pairs", multiple=True, metavar="KEY=VALUE")
@pass_app
def duplicates_act(
    app: AppContext, group: int, trigger: str, username: str, pairs: tuple[str, ...]
) -> None:
    """Fire TRIGGER on every ticket of GROUP (e.g. categorize, feed_back): all or none."""
    from engine.duplicates import act_on_group
    from engine.tickets import get_actor

    data = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    try:
        with app.unit_of_work() as uow:
            fired = act_on_group(
                uow, group, trigger, actor=get_actor(uow.session, username), data=data
            )
    except EngineError as exc:
        fail(exc)
    r = app.reader
    for f in fired:
        click.echo(f"{f.number}: {r.state(f.from_state)} → {r.state(f.to_state)}")
