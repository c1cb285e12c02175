"""Memory of the web and worker processes at 10k and at 1M tickets: it must stay flat.

    python -m bench.memory --url sqlite:////tmp/bench/province-10k.db \
        --url sqlite:////tmp/bench/province-1m.db

For each database (built by ``bench.generate``) it works on a scratch copy
(a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL) so the
original stays untouched, then:

* web: starts gunicorn (one sync worker) serving ``web:create_app()`` and sends
  ``--requests`` API calls with a supervisor token — ticket lists, ticket pages,
  histories, the overdue-sorted queue — then the active campaign's report; reads
  the worker process's resident set (VmRSS) and peak (VmHWM) from /proc;
* worker: starts ``rectiflow worker`` on the system clock (so every pending
  timer of the generated province is long due and it sweeps a real backlog in
  batches) for ``--worker-seconds`` seconds, sampling its RSS; reports the
  peak and the timers it fired.

Flat means the 1M figures are within a few MiB of the 10k ones: nothing loads
the ticket table into memory, whatever its size.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.generate import ACTIVE_CAMPAIGN
from bench.loadtest import free_port, make_tokens, wait_until_up
from engine import db
from engine.models import Ticket, Timer
from engine.settings import PROJECT_ROOT


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                fields[name] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                out.extend(int(c) for c in handle.read().split())
        except FileNotFoundError:
            continue
    return out


def scratch_copy(url: str) -> tuple[str, Any]:
    url = db.normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        src = Path(parsed.database or "")
        dst = src.with_name(f"{src.stem}-memory-{uuid.uuid4().hex[:6]}.db")
        import sqlite3

        # Fold the WAL into the file first (outside a transaction), so one file is the copy.
        raw = sqlite3.connect(src, isolation_level=None)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
        shutil.copyfile(src, dst)

        def drop_file() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{dst}{suffix}").unlink(missing_ok=True)

        return f"sqlite:///{dst}", drop_file
    name = f"{parsed.database}_memory_{uuid.uuid4().hex[:6]}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"'))

    def drop_db() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return parsed.set(database=name).render_as_string(hide_password=False), drop_db


def _get(conn: http.client.HTTPConnection, path: str, token: str) -> Any:
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return json.loads(body)


def measure_web(url: str, requests: int, numbers: list[str], token: str) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ, RECTIFLOW_DATABASE_URL=url, PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--timeout",
        "300",
        "web:create_app()",
    ]
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base)
        (worker_pid,) = children(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        rng = random.Random(7)
        start_rss = rss_kib(worker_pid)[0]
        for i in range(requests):
            number = rng.choice(numbers)
            kind = i % 4
            if kind == 0:
                _get(conn, f"/api/v1/tickets?page={rng.randint(1, 50)}", token)
            elif kind == 1:
                _get(conn, f"/api/v1/tickets/{number}", token)
            elif kind == 2:
                _get(conn, f"/api/v1/tickets/{number}/history", token)
            else:
                _get(conn, "/api/v1/tickets?state=assigned", token)
        pages_rss, pages_hwm = rss_kib(worker_pid)
        started = time.perf_counter()
        _get(conn, f"/api/v1/campaigns/{ACTIVE_CAMPAIGN}/report", token)
        report_s = time.perf_counter() - started
        report_rss, report_hwm = rss_kib(worker_pid)
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return {
        "start": start_rss,
        "after_pages": pages_rss,
        "peak_pages": pages_hwm,
        "after_report": report_rss,
        "peak_report": report_hwm,
        "report_s": report_s,
    }


def measure_worker(url: str, seconds: float) -> dict[str, Any]:
    env = dict(os.environ, RECTIFLOW_DATABASE_URL=url, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-c", "from cli import main; main()", "worker", "--sweep-seconds", "1"]
    engine = db.make_engine(url)
    with Session(engine) as session:
        fired_before = session.scalar(
            select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None))
        )
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    samples = []
    try:
        deadline = time.monotonic() + seconds
        time.sleep(2)
        first = rss_kib(proc.pid)[0]
        while time.monotonic() < deadline and proc.poll() is None:
            samples.append(rss_kib(proc.pid)[0])
            time.sleep(0.5)
        last, peak = rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with Session(engine) as session:
        fired_after = session.scalar(
            select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None))
        )
    engine.dispose()
    return {
        "first": first,
        "last": last,
        "peak": peak,
        "fired": int(fired_after or 0) - int(fired_before or 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", action="append", required=True, help="one per database size")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--worker-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    print(f"{'database':<44}{'tickets':>10}  process  figures (MiB)")
    for original in args.url:
        url, drop = scratch_copy(original)
        try:
            engine = db.make_engine(url)
            with Session(engine) as session:
                tickets = int(session.scalar(select(func.count()).select_from(Ticket)) or 0)
                ids = random.Random(7).sample(range(1, tickets + 1), min(200, tickets))
                numbers = list(session.scalars(select(Ticket.number).where(Ticket.id.in_(ids))))
                (token,) = make_tokens(session, "supervisor", 1)
                session.commit()
            engine.dispose()
            web = measure_web(url, args.requests, numbers, token)
            worker = measure_worker(url, args.worker_seconds)
        finally:
            drop()
        name = make_url(db.normalise_url(original)).database or original
        mib = 1024.0
        print(
            f"{Path(name).name:<44}{tickets:>10,}  web      start {web['start'] / mib:.1f}, "
            f"after {args.requests} page calls {web['after_pages'] / mib:.1f} "
            f"(peak {web['peak_pages'] / mib:.1f}), after the report "
            f"{web['after_report'] / mib:.1f} (peak {web['peak_report'] / mib:.1f}, "
            f"report {web['report_s']:.2f} s)"
        )
        print(
            f"{'':<44}{'':>10}  worker   {worker['first'] / mib:.1f} at 2 s, "
            f"{worker['last'] / mib:.1f} at {args.worker_seconds:.0f} s, peak "
            f"{worker['peak'] / mib:.1f}; fired {worker['fired']:,} timers meanwhile"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
