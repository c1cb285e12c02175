"""Importing opinions from the spreadsheets clerks keep: CSV (UTF-8 or GBK/GB18030) and XLSX.

One pass over the file, streamed, checks every row once (required columns,
text, kind, dates in the forms Chinese offices write them, lengths,
category) and computes a stable key per row; the good rows go to a
temporary file (``_Spill``), so a 50 MB file costs the memory of one batch,
not of the file. If any row is bad nothing is written and every bad row is
listed with its line, column and reason — unless the caller asks to import
the good rows, and then the bad ones go to a rejects file. The write pass
reads the checked rows back and creates the tickets through
``engine.bulk.create_tickets`` (what ``create_ticket`` writes, a batch at a
time; then the workflow's ``[uses] categorize`` trigger for rows whose sheet carries a
category), committing every ``batch_size`` rows. A row whose key
is already in the campaign is skipped, so importing the same file again
creates nothing and an import cut short is finished by running it again.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import marshal
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.audit import safe_cell
from engine.bulk import NewTicket, create_tickets
from engine.clock import ensure_utc
from engine.context import EngineContext, UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.models import Campaign, Category, Ticket
from engine.rawsql import PreparedInQuery
from engine.tickets import TEXT_MAX, fire, get_actor
from engine.workflow import WorkflowRegistry

log = logging.getLogger(__name__)

# Field → the header names accepted for it (compared case- and space-insensitively).
# The first name is the one the template uses.
DEFAULT_HEADERS: dict[str, tuple[str, ...]] = {
    "text": ("text", "opinion", "content", "意见内容", "意见", "内容", "意见建议"),
    "kind": ("kind", "type", "类型", "性质"),
    "category": ("category", "类别", "分类"),
    "received_at": ("received_at", "received", "date", "收到日期", "日期", "时间"),
    "citizen_name": ("citizen_name", "name", "姓名", "反映人"),
    "citizen_contact": ("citizen_contact", "contact", "phone", "联系方式", "电话"),
    "area": ("area", "town", "乡镇", "地区", "区域"),
    "address": ("address", "地址"),
    "themes": ("themes", "tags", "主题", "标签"),
    "external_key": ("external_key", "key", "reference", "编号", "序号"),
}
REQUIRED = ("text",)
LIMITS = {"citizen_name": 200, "citizen_contact": 200, "area": 100, "address": 300}
THEME_SPLIT = re.compile(r"[,;，；、|]+")
EXAMPLE_ROW = {
    "text": "The 110 desk answers slowly at night.",
    "kind": "criticism",
    "category": "team_building",
    "received_at": "2005-02-28",
    "citizen_name": "Wang Minglan",
    "citizen_contact": "0514-1234567",
    "area": "Luohe",
    "address": "",
    "themes": "slow_police_response",
    "external_key": "",
}
MAX_LISTED_ERRORS = 1000
SNIFF_BYTES = 256 * 1024


@dataclass(frozen=True)
class RowError:
    """One reason a row cannot be imported: its line in the file, the column, why."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.reason}"


@dataclass(frozen=True)
class Progress:
    """Reported to the progress callback: the pass, rows seen, and how far through the file."""

    phase: str  # check | import
    rows: int
    done: int  # check: bytes (CSV) or rows (XLSX) read so far; import: rows written so far
    total: int  # check: the file's bytes (CSV) or rows (XLSX); import: the rows to write


class ImportRejected(ValidationError):
    """The file has bad rows (or no usable header); nothing was imported."""

    code = "import_rejected"

    def __init__(self, message: str, *, errors: list[RowError], bad_rows: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = errors
        self.bad_rows = bad_rows
        self.details["errors"] = [e.__dict__ for e in errors]
        self.details["bad_rows"] = bad_rows


@dataclass
class ImportResult:
    rows: int = 0  # data rows in the file (empty rows not counted)
    created: int = 0
    already_imported: int = 0
    duplicates_in_file: int = 0
    empty_rows: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    encoding: str | None = None
    numbers: list[str] = field(default_factory=list)  # first few created, for the receipt

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["errors"] = [e.__dict__ for e in self.errors]
        return out


@dataclass
class ColumnMapping:
    """Which header names mean which field. ``overrides`` maps a field to its header(s)."""

    headers: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_HEADERS))

    @classmethod
    def with_overrides(
        cls, overrides: Mapping[str, str | list[str] | tuple[str, ...]] | None
    ) -> ColumnMapping:
        mapping = cls()
        for name, headers in (overrides or {}).items():
            if name not in DEFAULT_HEADERS:
                raise ValidationError(
                    f"mapping names an unknown field {name!r}; fields are "
                    f"{', '.join(DEFAULT_HEADERS)}",
                    fields={"mapping": f"unknown field {name!r}"},
                )
            names = (headers,) if isinstance(headers, str) else tuple(headers)
            mapping.headers[name] = names + mapping.headers[name]
        return mapping

    def resolve(self, header: list[str]) -> dict[str, int]:
        """Field → column index for this header row; raises if a required column is missing."""
        normalised = [_norm_header(h) for h in header]
        found: dict[str, int] = {}
        for name, names in self.headers.items():
            for candidate in names:
                key = _norm_header(candidate)
                if key in normalised:
                    found[name] = normalised.index(key)
                    break
        missing = [name for name in REQUIRED if name not in found]
        if missing:
            wanted = "; ".join(
                f"{name} (one of: {', '.join(self.headers[name])})" for name in missing
            )
            shown = ", ".join(repr(h) for h in header if str(h).strip()) or "none"
            raise ImportRejected(
                f"the file lacks required column(s): {wanted}. Its header row has: {shown}. "
                "Rename the column or give a mapping (e.g. --mapping text=意见内容)",
                errors=[RowError(1, name, "required column is missing") for name in missing],
                bad_rows=0,
                fields={name: "required column is missing" for name in missing},
            )
        return found


def _norm_header(value: Any) -> str:
    return re.sub(r"[\s_\-]+", "", str(value or "").replace("\ufeff", "")).lower()


# --- reading ------------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from a binary stream, for progress on a text reader over it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def detect_encoding(path: Path) -> str:
    """``utf-8-sig``/``utf-16`` by BOM; ``utf-8`` when the whole file decodes as UTF-8;
    otherwise the best guess of charset-normalizer on a sample (GBK and GB2312 are read
    as GB18030, their superset). Raises ``ValidationError`` when nothing fits."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
        handle.seek(0)
        sample = handle.read(SNIFF_BYTES)
    from charset_normalizer import from_bytes

    best = from_bytes(sample, cp_isolation=["gb18030", "big5", "utf_16", "cp1252"]).best()
    if best is None:
        raise ValidationError(
            "cannot tell the file's encoding; save it as UTF-8 (or give --encoding gb18030)",
            fields={"encoding": "unknown; give it explicitly"},
        )
    name = best.encoding.lower().replace("-", "_")
    if name in ("gbk", "gb2312", "gb18030", "cp936", "hz"):
        return "gb18030"
    return best.encoding


@dataclass
class _Source:
    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    position: Callable[[], int]
    total: int
    close: Callable[[], None]


def _open_csv(path: Path, encoding: str) -> _Source:
    raw = path.open("rb")
    counter = _CountingReader(raw)
    text = io.TextIOWrapper(
        io.BufferedReader(counter, 1 << 16), encoding=encoding, errors="strict", newline=""
    )
    reader = csv.reader(text)
    try:
        header = next(reader, [])
    except UnicodeDecodeError as exc:
        raw.close()
        raise _encoding_error(encoding, 1, exc) from None
    total = path.stat().st_size

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError as exc:
            raise _encoding_error(encoding, reader.line_num + 1, exc) from None

    return _Source(header, rows(), lambda: counter.count, total, raw.close)


def _encoding_error(encoding: str, line: int, exc: UnicodeDecodeError) -> ImportRejected:
    return ImportRejected(
        f"the file is not valid {encoding} near line {line} ({exc.reason}); "
        "save it as UTF-8, or give the right encoding (GBK files: --encoding gb18030)",
        errors=[RowError(line, "*", f"not valid {encoding}")],
        bad_rows=1,
        fields={"encoding": f"not {encoding}"},
    )


def _open_xlsx(path: Path) -> _Source:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a readable workbook"
        raise ValidationError(
            f"{path.name} is not a readable XLSX workbook ({exc}); save it as .xlsx or CSV",
            fields={"file": "not a readable workbook"},
        ) from None
    sheet = book.worksheets[0]
    total = sheet.max_row or 0
    iterator = sheet.iter_rows(values_only=True)
    first = next(iterator, ())
    header = ["" if v is None else str(v) for v in first]
    seen = [1]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for line, row in enumerate(iterator, start=2):
            seen[0] = line
            yield line, list(row)

    return _Source(header, rows(), lambda: seen[0], total, book.close)


def open_source(path: Path, *, encoding: str | None = None) -> tuple[_Source, str | None]:
    """The header and a row iterator for a CSV or XLSX file (by its name)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path), None
    if suffix not in (".csv", ".txt", ""):
        raise ValidationError(
            f"{path.name}: only .csv and .xlsx files can be imported",
            fields={"file": "use .csv or .xlsx"},
        )
    chosen = encoding or detect_encoding(path)
    try:
        codecs.lookup(chosen)
    except LookupError:
        raise ValidationError(
            f"unknown encoding {chosen!r}; use utf-8 or gb18030", fields={"encoding": chosen}
        ) from None
    return _open_csv(path, chosen), chosen


# --- checking -----------------------------------------------------------------------------

_YMD = re.compile(
    r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})[:时点](\d{1,2})(?:[:分](\d{1,2})?)?(?:\.\d+)?秒?)?\s*$"
)
_DMY = re.compile(r"^\s*(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\s*$")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")


def parse_when(value: Any, zone: ZoneInfo) -> datetime:
    """A received time from the forms clerks write: 2005-03-01, 2005/3/1, 2005.3.1,
    2005年3月1日, 20050301, with an optional time; an Excel date cell; 1/3/2005 only when
    the day is plain (over 12). Naive values are campaign time. Raises ``ValueError``."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    text = str(value).strip()
    if m := _YMD.match(text):
        y, mo, d, hh, mm, ss = m.groups()
        moment = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        return moment.replace(tzinfo=zone).astimezone(UTC)
    if m := _COMPACT.match(text):
        y, mo, d = (int(g) for g in m.groups())
        return datetime(y, mo, d, tzinfo=zone).astimezone(UTC)
    if m := _DMY.match(text):
        a, b, y = (int(g) for g in m.groups())
        if a > 12 >= b:
            return datetime(y, b, a, tzinfo=zone).astimezone(UTC)
        if b > 12 >= a:
            return datetime(y, a, b, tzinfo=zone).astimezone(UTC)
        raise ValueError(f"{text!r} is ambiguous (day/month or month/day?); write YYYY-MM-DD")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


@dataclass(frozen=True)
class CheckedRow:
    line: int
    key: str
    values: dict[str, Any]


def _cell(row: list[Any], columns: Mapping[str, int], name: str) -> Any:
    index = columns.get(name)
    if index is None or index >= len(row):
        return None
    value = row[index]
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def row_key(values: Mapping[str, Any]) -> str:
    """A stable key for a row without one: a hash of what the person said, who, where, when."""
    return _key_of([str(values.get(name) or "") for name in _KEY_FIELDS])


_KEY_FIELDS = ("text", "citizen_name", "citizen_contact", "area", "received_at")


def _key_of(parts: list[str]) -> str:
    """``row_key`` of the ``_KEY_FIELDS`` values as text ("" for none)."""
    # " ".join(x.split()) is re.sub(r"\s+", " ", x).strip(): both split on str.isspace()
    normalised = "\x1f".join([" ".join(part.split()).lower() for part in parts])
    return "sha1:" + hashlib.sha1(normalised.encode("utf-8")).hexdigest()


def check_row(
    line: int,
    row: list[Any],
    columns: Mapping[str, int],
    *,
    zone: ZoneInfo,
    now: datetime,
    categories: Mapping[str, str],
    kinds: Mapping[str, str],
) -> tuple[CheckedRow | None, list[RowError]]:
    """Check one row; return it ready to import, or the reasons it cannot be."""
    # Runs for every row of a file: the cells are read in one loop and the common case
    # (no error) allocates nothing else.
    cells: dict[str, Any] = {}
    width = len(row)
    for name, index in columns.items():
        if index < width:
            value = row[index]
            if isinstance(value, str):
                value = value.strip()
                if value:
                    cells[name] = value
            elif value is not None:
                cells[name] = value
    errors: list[RowError] = []
    values: dict[str, Any] = {}
    text = cells.get("text")
    if text is None:
        errors.append(RowError(line, "text", "is empty: what did the person say?"))
    else:
        text = str(text)
        if len(text) > TEXT_MAX:
            errors.append(RowError(line, "text", f"is too long ({len(text)} > {TEXT_MAX})"))
        values["text"] = text
    kind = cells.get("kind")
    if kind is not None:
        word = str(kind).lower()
        if word not in kinds:
            named = sorted(set(kinds.values()))
            others = sorted(w for w in kinds if w not in named)
            errors.append(
                RowError(
                    line,
                    "kind",
                    f"{kind!r} is not one of {', '.join(named) or 'no kinds'}"
                    + (f" (or {'/'.join(others)})" if others else ""),
                )
            )
        else:
            values["kind"] = kinds[word]
    category = cells.get("category")
    if category is not None:
        code = categories.get(str(category).lower())
        if code is None:
            errors.append(
                RowError(
                    line,
                    "category",
                    f"{category!r} is not a category of this campaign; use one of "
                    f"{', '.join(sorted(set(categories.values())))}",
                )
            )
        elif "kind" not in values and kind is None:
            errors.append(RowError(line, "kind", "is needed to categorize the row"))
        else:
            values["category"] = code
    when = cells.get("received_at")
    if when is not None:
        try:
            received = (
                _parse_text_when(when, zone) if isinstance(when, str) else parse_when(when, zone)
            )
        except (ValueError, OverflowError) as exc:
            errors.append(RowError(line, "received_at", str(exc)))
        else:
            if received > now + _FUTURE_SLACK:
                errors.append(RowError(line, "received_at", f"{when!s} is in the future"))
            values["received_at"] = received
    for name, limit in LIMITS.items():
        value = cells.get(name)
        if value is None:
            continue
        value = str(value)
        if len(value) > limit:
            errors.append(RowError(line, name, f"is too long ({len(value)} > {limit})"))
        values[name] = value
    themes = cells.get("themes")
    if themes is not None:
        values["themes"] = tuple(t.strip() for t in THEME_SPLIT.split(str(themes)) if t.strip())
    key = cells.get("external_key")
    if key is not None:
        key = str(key)
        if len(key) > 128:
            errors.append(RowError(line, "external_key", "is longer than 128 characters"))
    if errors:
        return None, errors
    if key is None:
        stamp = values.get("received_at")
        key = _key_of(
            [
                text or "",
                values.get("citizen_name") or "",
                values.get("citizen_contact") or "",
                values.get("area") or "",
                stamp.isoformat() if stamp else "",
            ]
        )
    return CheckedRow(line, key, values), []


_FUTURE_SLACK = timedelta(minutes=5)


@lru_cache(maxsize=8192)
def _parse_text_when(text: str, zone: ZoneInfo) -> datetime:
    """``parse_when`` of a cell's text, remembered: a sheet repeats its dates row after row."""
    return parse_when(text, zone)


def _is_empty(row: list[Any]) -> bool:
    try:  # a CSV row: text cells only, blank together only when each is
        return not "".join(row).strip()
    except TypeError:  # a sheet's row: numbers, dates, None
        return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


# --- the import ---------------------------------------------------------------------------


def _campaign(session: Session, code: str) -> Campaign:
    campaign = session.scalars(select(Campaign).where(Campaign.code == code)).first()
    if campaign is None:
        known = ", ".join(session.scalars(select(Campaign.code).order_by(Campaign.code)))
        raise NotFound(f"no campaign {code!r}; known campaigns: {known or 'none'}")
    return campaign


def _category_lookup(session: Session, campaign_id: int) -> dict[str, str]:
    rows = session.execute(
        select(Category.code, Category.name).where(Category.campaign_id == campaign_id)
    ).all()
    out: dict[str, str] = {}
    for code, name in rows:
        out[code.lower()] = code
        out[name.lower()] = code
    return out


def check_file(
    session: Session,
    path: Path | str,
    *,
    registry: WorkflowRegistry,
    campaign: str,
    now: datetime,
    mapping: ColumnMapping | None = None,
    encoding: str | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[ImportResult, set[int]]:
    """The first pass: check every row; return the counts, the errors and the bad lines.

    Reads the campaign and its categories with ``session``, then checks the file
    without touching the database.
    """
    camp = _campaign(session, campaign)
    workflow = registry.get(camp.workflow_name, camp.workflow_version)
    return _check_rows(
        Path(path),
        zone=ZoneInfo(camp.timezone),
        categories=_category_lookup(session, camp.id),
        kinds=workflow.kind_words(),
        now=ensure_utc(now),
        mapping=mapping,
        encoding=encoding,
        progress=progress,
    )


class _Spill:
    """The good rows of the check pass, kept on disk until the write pass reads them back.

    A file is all-or-nothing while its batches commit one by one, so nothing can be
    written before every row is checked; keeping the checked rows in memory would make
    memory grow with the file, and checking them again (as a second pass over the file
    did) costs as much as the rest of an import. Rows go to a temporary file as marshal
    records of a few hundred rows (each value a str, int, tuple or None), so each row
    is checked once and memory stays that of one record.
    """

    RECORD_ROWS = 256

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file  # a temporary file the caller closes (which deletes it)
        self.rows = 0
        self._pending: list[tuple[Any, ...]] = []

    def add(self, checked: CheckedRow) -> None:
        v = checked.values
        received = v.get("received_at")
        self._pending.append(
            (
                checked.line,
                checked.key,
                v["text"],
                v.get("kind"),
                v.get("category"),
                None if received is None else (received - _EPOCH) // _MICROSECOND,
                v.get("citizen_name"),
                v.get("citizen_contact"),
                v.get("area"),
                v.get("address"),
                v.get("themes", ()),
            )
        )
        self.rows += 1
        if len(self._pending) >= self.RECORD_ROWS:
            self._write()

    def _write(self) -> None:
        if self._pending:
            record = marshal.dumps(self._pending)
            self.file.write(len(record).to_bytes(8, "little"))
            self.file.write(record)
            self._pending = []

    def batches(self, size: int) -> Iterator[list[_GoodRow]]:
        """The rows in the order they were added, ``size`` at a time."""
        self._write()
        self.file.seek(0)
        batch: list[_GoodRow] = []
        times: dict[int, datetime] = {}  # a sheet repeats its dates row after row
        while head := self.file.read(8):
            for values in marshal.loads(self.file.read(int.from_bytes(head, "little"))):
                line, key, text, kind, category, micros, name, contact, area, address, themes = (
                    values
                )
                when = None
                if micros is not None:
                    when = times.get(micros)
                    if when is None:
                        if len(times) > 4096:
                            times.clear()
                        when = times[micros] = _EPOCH + timedelta(microseconds=micros)
                batch.append(
                    _GoodRow(
                        line, key, text, kind, category, when, name, contact, area, address, themes
                    )
                )
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch


class _GoodRow(NamedTuple):
    """A checked row as the write pass reads it back (``received_at``: a UTC datetime)."""

    line: int
    key: str
    text: str
    kind: str | None
    category: str | None
    received_at: datetime | None
    citizen_name: str | None
    citizen_contact: str | None
    area: str | None
    address: str | None
    themes: tuple[str, ...]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _check_rows(
    path: Path,
    *,
    zone: ZoneInfo,
    categories: Mapping[str, str],
    kinds: Mapping[str, str],
    now: datetime,
    mapping: ColumnMapping | None,
    encoding: str | None,
    progress: Callable[[Progress], None] | None,
    spill: _Spill | None = None,
    whole: bool = True,
    rejects: IO[str] | None = None,
) -> tuple[ImportResult, set[int]]:
    """Check every row; return the counts and errors, and the bad lines.

    With ``spill``, the good rows go to it, each key once (a row whose key an earlier
    good row of the file has is counted in ``duplicates_in_file``); when the file is
    imported ``whole`` or not at all, nothing more is spilled once a row is bad. With ``rejects``,
    each bad row is written there (CSV, formula-safe) with its line and reasons.
    """
    source, chosen = open_source(path, encoding=encoding)
    result = ImportResult(encoding=chosen)
    bad: set[int] = set()
    seen: set[bytes] = set()  # 16-byte digests: one per distinct key of the file
    writer = csv.writer(rejects) if rejects is not None else None
    try:
        columns = (mapping or ColumnMapping()).resolve(source.header)
        for line, row in source.rows:
            if _is_empty(row):
                result.empty_rows += 1
                continue
            result.rows += 1
            checked, errors = check_row(
                line, row, columns, zone=zone, now=now, categories=categories, kinds=kinds
            )
            if errors:
                bad.add(line)
                if len(result.errors) < MAX_LISTED_ERRORS:
                    result.errors.extend(errors)
                if writer is not None:
                    if len(bad) == 1:
                        writer.writerow([*source.header, "line", "column", "reason"])
                    writer.writerow(
                        [safe_cell(v) for v in row]
                        + [line, errors[0].column, "; ".join(e.reason for e in errors)]
                    )
            elif checked is not None:
                digest = hashlib.blake2b(checked.key.encode(), digest_size=16).digest()
                if digest in seen:
                    result.duplicates_in_file += 1
                else:
                    seen.add(digest)
                    if spill is not None and not (whole and bad):
                        spill.add(checked)
            if progress and result.rows % 1000 == 0:
                progress(Progress("check", result.rows, source.position(), source.total))
    finally:
        source.close()
    if progress:
        progress(Progress("check", result.rows, source.total, source.total))
    result.rejected = len(bad)
    return result, bad


def import_file(
    ctx: EngineContext,
    path: Path | str,
    *,
    campaign: str,
    username: str,
    now: datetime | None = None,
    mapping: ColumnMapping | None = None,
    encoding: str | None = None,
    accept_good_rows: bool = False,
    rejects: IO[str] | None = None,
    batch_size: int = 2000,
    progress: Callable[[Progress], None] | None = None,
) -> ImportResult:
    """Check ``path`` and import its rows into ``campaign`` as ``username``; return the counts.

    Owns its transactions (like the timer sweep): the check pass writes
    nothing; a file with bad rows raises ``ImportRejected`` listing each
    (line, column, reason) unless ``accept_good_rows``, in which case the bad
    rows are written to ``rejects`` (CSV, formula-safe) and the good ones
    imported. Rows are committed every ``batch_size``; a row whose key the
    campaign already has is counted in ``already_imported`` and skipped.
    """
    path = Path(path)
    now = ensure_utc(now) if now is not None else ctx.now()
    # Read what the checks need, then end the transaction: on SQLite it would hold the
    # write lock for as long as a large file takes to check.
    with ctx.sessions() as session:
        actor = get_actor(session, username)
        camp = _campaign(session, campaign)
        camp_id, camp_zone = camp.id, ZoneInfo(camp.timezone)
        workflow = ctx.registry.get(camp.workflow_name, camp.workflow_version)
        # A sheet's category column categorizes through the trigger the workflow names for it.
        categorize = workflow.use("categorize")
        categories = _category_lookup(session, camp_id) if categorize else {}
        kinds = workflow.kind_words()
        session.rollback()
    with tempfile.TemporaryFile(prefix="rectiflow-import-") as spilled:
        spill = _Spill(spilled)
        result, bad = _check_rows(
            path,
            zone=camp_zone,
            categories=categories,
            kinds=kinds,
            now=now,
            mapping=mapping,
            encoding=encoding,
            progress=progress,
            spill=spill,
            whole=not accept_good_rows,
            rejects=rejects if accept_good_rows else None,
        )
        if bad and not accept_good_rows:
            listed = "; ".join(str(e) for e in result.errors[:20])
            more = f" (and {len(result.errors) - 20} more)" if len(result.errors) > 20 else ""
            raise ImportRejected(
                f"{len(bad)} of {result.rows} rows cannot be imported, so nothing was: "
                f"{listed}{more}. Fix them and import again, or import only the good rows "
                "(--accept-good-rows)",
                errors=result.errors,
                bad_rows=len(bad),
            )
        done = 0
        for batch in spill.batches(batch_size):
            with ctx.unit_of_work() as uow:
                existing = _imported_keys(uow, camp_id, [row.key for row in batch])
                fresh = [row for row in batch if row.key not in existing]
                result.already_imported += len(batch) - len(fresh)
                _create_batch(uow, campaign, actor, fresh, now, result, categorize)
            done += len(batch)
            if progress:
                progress(Progress("import", done, done, spill.rows))
    log.info(
        "import of %s into %s: %d created, %d already there, %d rejected",
        path.name,
        campaign,
        result.created,
        result.already_imported,
        result.rejected,
    )
    return result


def _imported_keys(uow: UnitOfWork, campaign_id: int, keys: list[str]) -> set[str]:
    """Which of ``keys`` the campaign's tickets already carry (an earlier import's rows)."""
    rows = _IMPORTED_KEYS.all(uow.conn, {"campaign_id": campaign_id, "keys": keys})
    return {row.external_key for row in rows}


# Through the driver, rendered once per batch length (engine.rawsql): SQLAlchemy's
# expanding IN renders a batch's two thousand parameters anew on every call.
_IMPORTED_KEYS = PreparedInQuery(
    select(Ticket.external_key).where(
        Ticket.campaign_id == bindparam("campaign_id"),
        Ticket.external_key.in_(bindparam("keys", expanding=True)),
    )
)


def _create_batch(
    uow: UnitOfWork,
    campaign: str,
    actor: Any,
    rows: list[_GoodRow],
    now: datetime,
    result: ImportResult,
    categorize: str | None,
) -> None:
    """Create the batch's tickets through the bulk path; categorize those the sheet says."""
    created = create_tickets(
        uow,
        campaign=campaign,
        tickets=[
            NewTicket(
                text=row.text,
                kind=row.kind,
                citizen_name=row.citizen_name,
                citizen_contact=row.citizen_contact,
                area=row.area,
                address=row.address,
                received_at=row.received_at,
                source="import",
                external_key=row.key,
                themes=row.themes,
            )
            for row in rows
        ],
        actor=actor,
        now=now,
    )
    for row, ticket in zip(rows, created, strict=True):
        if row.category and categorize:
            fire(
                uow,
                ticket.number,
                categorize,
                actor=actor,
                data={"category": row.category, "kind": row.kind},
                expected_version=ticket.version,
                now=now,
            )
        if len(result.numbers) < 20:
            result.numbers.append(ticket.number)
    result.created += len(created)


# --- the template -------------------------------------------------------------------------


def template(fmt: str, mapping: ColumnMapping | None = None) -> bytes:
    """A file to fill in: the header row (each field's first name) and one example row."""
    headers = (mapping or ColumnMapping()).headers
    names = [headers[name][0] for name in DEFAULT_HEADERS]
    example = [EXAMPLE_ROW[name] for name in DEFAULT_HEADERS]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(names)
        writer.writerow(example)
        return buffer.getvalue().encode("utf-8-sig")
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "opinions"
        sheet.append(names)
        sheet.append(example)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    raise ValidationError(f"unknown template format {fmt!r}; use csv or xlsx")
