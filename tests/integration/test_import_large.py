"""A 50 MB file: checked in bounded memory; one bad row at the very end and nothing is imported."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import db
from engine.context import build_context
from engine.importing import ImportRejected, import_file
from engine.models import Ticket

NOW = datetime(2005, 4, 1, tzinfo=UTC)


@pytest.mark.slow
def test_fifty_megabytes_bounded_memory_and_all_or_nothing(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    body = "派出所出警太慢，晚上打110没人管。" * 280  # ~5 KB of UTF-8 per row
    with path.open("w", encoding="utf-8") as handle:
        handle.write("text,kind,received_at\n")
        row = 0
        while handle.tell() < 50 * 1024 * 1024:
            row += 1
            handle.write(f"{body} {row},criticism,2005-03-01\n")
        handle.write(",criticism,not a date\n")  # the last row is bad
    size = path.stat().st_size
    assert size > 50 * 1024 * 1024

    engine = db.make_engine(sqlite_url)
    seen: list[int] = []
    tracemalloc.start()
    try:
        with pytest.raises(ImportRejected) as caught:
            import_file(
                build_context(engine=engine),
                path,
                campaign="consultation-2005",
                username="clerk",
                now=NOW,
                progress=lambda p: seen.append(p.done),
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024, (
        f"peak {peak / 1e6:.1f} MB while checking a {size / 1e6:.0f} MB file"
    )
    assert {(e.line, e.column) for e in caught.value.errors} == {
        (row + 2, "text"),
        (row + 2, "received_at"),
    }
    assert seen and seen[-1] == size and seen == sorted(seen)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Ticket)) == 0
    engine.dispose()
