"""Jobs as rows: work a person starts (a spreadsheet import) that the worker runs.

A job is queued in the starter's unit of work, claimed by one worker (a lease,
so a worker that dies mid-run gives the job back when the lease runs out),
reports its progress on its row in short transactions of its own, and keeps
its result, message and bad rows there. Any web process shows it; a restart
loses nothing: an import run again creates only what is missing (row keys).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update

from engine.actors import Actor
from engine.context import EngineContext, UnitOfWork
from engine.errors import EngineError, NotFound, ValidationError
from engine.importing import ImportRejected, ImportResult, Progress, RowError, import_file
from engine.models import Job

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 3
IMPORT = "import"


@dataclass
class JobView:
    """What a page shows of a job."""

    id: int
    kind: str
    state: str  # queued | running | done | rejected | failed
    username: str
    filename: str
    campaign: str
    phase: str
    rows: int
    percent: int
    message: str
    result: ImportResult | None = None
    errors: list[RowError] = field(default_factory=list)
    rejects_path: Path | None = None


def enqueue_import(
    uow: UnitOfWork,
    *,
    path: Path,
    filename: str,
    campaign: str,
    actor: Actor,
    accept_good_rows: bool,
) -> int:
    """Queue an import of ``path`` (already saved) into ``campaign`` as ``actor``; its id."""
    uow.policy.require(actor, "import.run")
    if not path.exists():
        raise ValidationError(f"the uploaded file {filename!r} is not there any more; upload again")
    job = Job(
        kind=IMPORT,
        state="queued",
        username=actor.username,
        params=json.dumps(
            {
                "path": str(path),
                "filename": filename,
                "campaign": campaign,
                "accept_good_rows": accept_good_rows,
            }
        ),
        phase="",
        rows=0,
        percent=0,
        message="",
        attempts=0,
        created_at=uow.now(),
    )
    uow.session.add(job)
    uow.session.flush()
    return job.id


def get_job(uow: UnitOfWork, job_id: int, *, actor: Actor) -> JobView:
    """The job, for the person who started it; ``NotFound`` for anyone else."""
    job = uow.session.get(Job, job_id)
    if job is None or job.username != actor.username:
        raise NotFound(f"no import job #{job_id} of yours")
    return _view(job)


def _view(job: Job) -> JobView:
    params = json.loads(job.params)
    result = None
    errors: list[RowError] = []
    rejects = None
    if job.result:
        data = json.loads(job.result)
        rejects = Path(data.pop("rejects_path")) if data.get("rejects_path") else None
        errors = [RowError(**e) for e in data.pop("errors", [])]
        if job.state == "done":
            result = ImportResult(**data, errors=errors)
            errors = []
    return JobView(
        id=job.id,
        kind=job.kind,
        state=job.state,
        username=job.username,
        filename=params["filename"],
        campaign=params["campaign"],
        phase=job.phase,
        rows=job.rows,
        percent=job.percent,
        message=job.message,
        result=result,
        errors=errors,
        rejects_path=rejects,
    )


def claim_next(ctx: EngineContext) -> int | None:
    """Take the oldest queued job (or one whose runner's lease ran out); its id, or None."""
    now = ctx.now()
    with ctx.unit_of_work() as uow:
        candidates = (
            select(Job.id)
            .where(
                or_(
                    Job.state == "queued",
                    (Job.state == "running") & (Job.lease_until < now),
                ),
                Job.attempts < MAX_ATTEMPTS,
            )
            .order_by(Job.id)
            .limit(1)
        )
        if uow.session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        job_id = uow.session.scalar(candidates)
        if job_id is None:
            return None
        uow.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                state="running",
                started_at=now,
                lease_until=now + LEASE,
                attempts=Job.attempts + 1,
            )
        )
    return int(job_id)


def run_job(ctx: EngineContext, job_id: int) -> JobView:
    """Run a claimed job to its end, keeping progress, result and errors on its row."""
    with ctx.unit_of_work() as uow:
        job = uow.session.get(Job, job_id)
        if job is None:
            raise NotFound(f"no job #{job_id}")
        params = json.loads(job.params)
        username = job.username

    def progress(p: Progress) -> None:
        with ctx.unit_of_work() as uow:
            uow.session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    phase=p.phase,
                    rows=p.rows,
                    percent=100 * p.done // p.total if p.total else 100,
                    lease_until=ctx.now() + LEASE,
                )
            )

    path = Path(params["path"])
    rejects_path = path.with_name(path.name + ".rejects.csv")
    values: dict[str, Any]
    try:
        with open(rejects_path, "w", encoding="utf-8-sig", newline="") as rejects:
            result = import_file(
                ctx,
                path,
                campaign=params["campaign"],
                username=username,
                accept_good_rows=bool(params["accept_good_rows"]),
                rejects=rejects,
                progress=progress,
            )
        data = result.to_dict()
        if result.rejected:
            data["rejects_path"] = str(rejects_path)
        else:
            rejects_path.unlink(missing_ok=True)
        values = {"state": "done", "result": json.dumps(data), "percent": 100}
    except ImportRejected as exc:
        rejects_path.unlink(missing_ok=True)
        values = {
            "state": "rejected",
            "message": exc.message,
            "result": json.dumps({"errors": [e.__dict__ for e in exc.errors]}),
        }
    except EngineError as exc:
        rejects_path.unlink(missing_ok=True)
        values = {"state": "failed", "message": exc.message}
    except Exception:  # noqa: BLE001 - kept on the row for the clerk; the log has the trace
        log.exception("job %s failed", job_id)
        rejects_path.unlink(missing_ok=True)
        values = {
            "state": "failed",
            "message": "the import failed unexpectedly; see the server log",
        }
    with ctx.unit_of_work() as uow:
        uow.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(**values, finished_at=ctx.now(), lease_until=None)
        )
    path.unlink(missing_ok=True)
    with ctx.unit_of_work() as uow:
        job = uow.session.get(Job, job_id)
        assert job is not None
        return _view(job)


def run_pending(ctx: EngineContext, *, limit: int = 5) -> list[int]:
    """Claim and run up to ``limit`` jobs (the worker's job); the ids run."""
    done: list[int] = []
    for _ in range(limit):
        job_id = claim_next(ctx)
        if job_id is None:
            break
        run_job(ctx, job_id)
        done.append(job_id)
    return done
