"""What every benchmark shares: the machine it ran on, interleaved sides, medians and spreads.

A benchmark measures its floor (the fastest honest version of the same writes:
statements prebuilt, the same durability, the same tables) or its peer in the
same run, its sides interleaved in small blocks over several rounds, so both
see the same noise on a shared machine; the ratio to the same-run floor is the
figure. Results are plain dicts that ``bench.run`` writes as dated JSON and
``bench.report`` turns into BENCHMARKS.md's generated sections.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

PG_ADMIN = os.environ.get(
    "RECTIFLOW_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def machine() -> dict[str, Any]:
    """The machine and software a result was measured on, and how busy it was."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            kib = int(handle.readline().split()[1])
        info["memory_gib"] = round(kib / 1024 / 1024)
    except OSError:  # pragma: no cover - not Linux
        pass
    if os.environ.get("RECTIFLOW_BENCH_COMMIT"):  # a run from a copy of the tree at that commit
        info["commit"] = os.environ["RECTIFLOW_BENCH_COMMIT"]
        return info
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        info["commit"] = commit
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover - not a checkout
        pass
    return info


def postgres_version() -> str | None:
    """The PostgreSQL server's version, or None when none answers at ``PG_ADMIN``."""
    from sqlalchemy import create_engine

    engine = create_engine(PG_ADMIN)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("show server_version").scalar()).split()[0]
    except Exception:  # noqa: BLE001 - any failure means "no server here"
        return None
    finally:
        engine.dispose()


def require_postgres() -> str:
    """The server's version; a clear error naming the URL when none answers."""
    version = postgres_version()
    if version is None:
        raise SystemExit(
            f"PostgreSQL does not answer at {PG_ADMIN} (set RECTIFLOW_BENCH_PG_URL, or leave "
            "the PostgreSQL benchmarks out)"
        )
    return version


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max (rounded): what a table shows of several rounds."""
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def interleave(
    sides: dict[str, Callable[[int], tuple[int, float]]], blocks: int
) -> dict[str, tuple[int, float]]:
    """Run each side's block ``i`` in turn for ``i`` in range(blocks), alternating which
    side goes first (ABBA), and sum what each did: {side: (operations, seconds)}."""
    names = list(sides)
    done = {name: (0, 0.0) for name in names}
    for i in range(blocks):
        order = names if i % 2 == 0 else list(reversed(names))
        for name in order:
            n, seconds = sides[name](i)
            ops, total = done[name]
            done[name] = (ops + n, total + seconds)
    return done


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    """(what ``fn`` returned, the seconds it took)."""
    started = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - started


def result(
    name: str,
    *,
    command: str,
    params: dict[str, Any],
    rounds: list[dict[str, Any]],
    summary: dict[str, Any],
    notes: str = "",
) -> dict[str, Any]:
    """One benchmark's result, as ``bench.run`` stores it."""
    return {
        "name": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "params": params,
        "rounds": rounds,
        "summary": summary,
        "notes": notes,
    }
