"""Import jobs run in a thread beside the request, so a long file shows its progress.

Jobs live in this process's memory (a restart forgets them; the import itself
is safe to run again: its row keys make a second run create only what is
missing). Files and rejects are kept under ``instance/imports``.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.context import EngineContext
from engine.errors import EngineError
from engine.importing import ImportRejected, ImportResult, Progress, import_file


@dataclass
class ImportJob:
    id: str
    filename: str
    campaign: str
    username: str
    state: str = "queued"  # queued | running | done | rejected | failed
    phase: str = ""
    rows: int = 0
    percent: int = 0
    result: ImportResult | None = None
    message: str = ""
    errors: list[Any] = field(default_factory=list)
    rejects_path: Path | None = None
    thread: threading.Thread | None = None


_JOBS: dict[str, ImportJob] = {}
_LOCK = threading.Lock()


def get_job(job_id: str) -> ImportJob | None:
    with _LOCK:
        return _JOBS.get(job_id)


def start_job(
    ctx: EngineContext,
    path: Path,
    *,
    filename: str,
    campaign: str,
    username: str,
    now: datetime,
    accept_good_rows: bool,
    run_inline: bool = False,
) -> ImportJob:
    """Start importing ``path``; return the job (finished already when ``run_inline``)."""
    job = ImportJob(
        id=secrets.token_urlsafe(12), filename=filename, campaign=campaign, username=username
    )
    job.rejects_path = path.with_name(path.name + ".rejects.csv")
    with _LOCK:
        _JOBS[job.id] = job

    def progress(p: Progress) -> None:
        job.phase, job.rows = p.phase, p.rows
        job.percent = 100 * p.done // p.total if p.total else 100

    def run() -> None:
        job.state = "running"
        try:
            assert job.rejects_path is not None
            with open(job.rejects_path, "w", encoding="utf-8-sig", newline="") as rejects:
                job.result = import_file(
                    ctx,
                    path,
                    campaign=campaign,
                    username=username,
                    now=now,
                    accept_good_rows=accept_good_rows,
                    rejects=rejects,
                    progress=progress,
                )
            if not job.result.rejected:
                job.rejects_path.unlink(missing_ok=True)
                job.rejects_path = None
            job.state = "done"
        except ImportRejected as exc:
            job.state, job.message, job.errors = "rejected", exc.message, exc.errors
        except EngineError as exc:
            job.state, job.message = "failed", exc.message
        except Exception as exc:  # noqa: BLE001 - shown to the clerk; the log has the trace
            import logging

            logging.getLogger(__name__).exception("import job %s failed", job.id)
            job.state, job.message = "failed", f"the import stopped: {exc}"
        finally:
            path.unlink(missing_ok=True)

    if run_inline:
        run()
    else:
        job.thread = threading.Thread(target=run, name=f"import-{job.id}", daemon=True)
        job.thread.start()
    return job
