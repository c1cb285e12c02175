"""Peer: the same persisted 4-step workflow in SpiffWorkflow and in rectiflow, in one run.

    python -m bench.spiff_peer --instances 300

The workflow is the consultation path: categorize → assign → rectify → feed back,
four human steps after the opinion is recorded. Both sides persist to a SQLite
file (WAL, synchronous=FULL) after every step, one transaction each:

* SpiffWorkflow 3 (``pip install spiffworkflow``): a BPMN process with four user
  tasks parsed once by ``SpiffBpmnParser``; an instance is created and
  serialised with ``BpmnWorkflowSerializer`` into a row; each step loads the row,
  deserialises, completes the ready user task with its data, runs the engine
  steps and writes the serialised instance back — what its applications
  (spiff-arena) do with their process-instance tables. Spiff keeps no audit
  trail or per-step checks of its own here, so this is its floor.
* rectiflow: ``create_ticket`` then four ``fire`` calls through the service API
  (role, unit, data and guard checks, optimistic version check, hash-chained
  log row, timers), a session and a commit per step.

Reported: instances per second and per-step latency (median, p95) on each side,
and the ratio rectiflow / Spiff (above 1 means rectiflow is faster).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.engine_context import as_uow

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="consultation_defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="consultation" isExecutable="true">
    <bpmn:startEvent id="received"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="received" targetRef="categorize" />
    <bpmn:userTask id="categorize" name="Categorize">
      <bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f1" sourceRef="categorize" targetRef="assign" />
    <bpmn:userTask id="assign" name="Assign">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="assign" targetRef="rectify" />
    <bpmn:userTask id="rectify" name="Rectify">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="rectify" targetRef="feed_back" />
    <bpmn:userTask id="feed_back" name="Feed back">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f4" sourceRef="feed_back" targetRef="fed_back" />
    <bpmn:endEvent id="fed_back"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

STEPS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("categorize", "clerk", {"category": "public_security_management", "kind": "criticism"}),
    ("assign", "supervisor", {"unit": "security-brigade", "officer": "security.officer"}),
    ("rectify", "security.officer", {"measures": "Night patrols near the market."}),
    (
        "feed_back",
        "security.officer",
        {"method": "visit", "text": "Explained the patrols at the door.", "date": "2005-02-28"},
    ),
)
START = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)


def _sqlite(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class SpiffSide:
    """SpiffWorkflow instances stored as serialised JSON rows, reloaded for every step."""

    def __init__(self, path: Path, synchronous: str) -> None:
        from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
        from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
        from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

        parser = SpiffBpmnParser()
        parser.add_bpmn_str(BPMN.encode("utf-8"))
        self.spec = parser.get_spec("consultation")
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.db = _sqlite(path, synchronous)
        self.db.execute(
            "CREATE TABLE process_instance (id INTEGER PRIMARY KEY, status TEXT, "
            "updated_at TEXT, serialization TEXT)"
        )

    def create(self, now: datetime) -> int:
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

        workflow = BpmnWorkflow(self.spec)
        workflow.do_engine_steps()
        blob = self.serializer.serialize_json(workflow)
        self.db.execute("BEGIN IMMEDIATE")
        cur = self.db.execute(
            "INSERT INTO process_instance (status, updated_at, serialization) VALUES (?, ?, ?)",
            ("running", now.isoformat(), blob),
        )
        self.db.execute("COMMIT")
        return int(cur.lastrowid or 0)

    def step(
        self, instance: int, name: str, actor: str, data: dict[str, Any], now: datetime
    ) -> None:
        from SpiffWorkflow.util.task import TaskState

        self.db.execute("BEGIN IMMEDIATE")
        (blob,) = self.db.execute(
            "SELECT serialization FROM process_instance WHERE id = ?", (instance,)
        ).fetchone()
        workflow = self.serializer.deserialize_json(blob)
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if len(ready) != 1 or ready[0].task_spec.name != name:
            raise RuntimeError(f"spiff instance {instance}: expected {name}, ready: {ready}")
        task = ready[0]
        task.data.update(data, completed_by=actor)
        task.run()
        workflow.do_engine_steps()
        status = "complete" if workflow.is_completed() else "running"
        self.db.execute(
            "UPDATE process_instance SET status = ?, updated_at = ?, serialization = ? "
            "WHERE id = ?",
            (status, now.isoformat(), self.serializer.serialize_json(workflow), instance),
        )
        self.db.execute("COMMIT")


class RectiflowSide:
    """The engine's service API on a seeded SQLite database, one session and commit per step."""

    def __init__(self, path: Path, synchronous: str) -> None:
        from sqlalchemy.orm import Session

        from engine import db
        from engine.organisation import load_campaign_file, load_organisation_file
        from engine.settings import PROJECT_ROOT
        from engine.tickets import get_actor

        self.engine = db.make_engine(f"sqlite:///{path}", sqlite_synchronous=synchronous)
        db.upgrade(self.engine)
        self.sessions = db.session_factory(self.engine)
        with Session(self.engine) as session:
            load_organisation_file(as_uow(session), PROJECT_ROOT / "config" / "organisation.toml")
            load_campaign_file(
                as_uow(session), PROJECT_ROOT / "config" / "campaigns" / "consultation-2005.toml"
            )
            session.commit()
            self.actors = {
                u: get_actor(session, u) for u in ("clerk", "supervisor", "security.officer")
            }

    def create(self, now: datetime) -> str:
        from engine.tickets import create_ticket

        with self.sessions() as session:
            created = create_ticket(
                as_uow(session),
                campaign="consultation-2005",
                text="Theft of electric bikes near the market is frequent.",
                kind="criticism",
                area="Luohe",
                actor=self.actors["clerk"],
                now=now,
            )
            session.commit()
        return created.number

    def step(self, number: str, name: str, actor: str, data: dict[str, Any], now: datetime) -> None:
        from engine.tickets import fire

        with self.sessions() as session:
            fire(as_uow(session), number, name, actor=self.actors[actor], data=data, now=now)
            session.commit()


def run_side(side: Any, instances: int) -> dict[str, Any]:
    step_times: list[float] = []
    started = time.perf_counter()
    for i in range(instances):
        now = START + timedelta(minutes=i)
        ref = side.create(now)
        for k, (name, actor, data) in enumerate(STEPS, start=1):
            t0 = time.perf_counter()
            side.step(ref, name, actor, data, now + timedelta(hours=k))
            step_times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    step_times.sort()
    return {
        "instances_per_s": instances / elapsed,
        "step_median_ms": statistics.median(step_times) * 1000,
        "step_p95_ms": step_times[int(len(step_times) * 0.95)] * 1000,
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.spiff_peer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the sides this many times")
    parser.add_argument(
        "--synchronous",
        default="FULL,NORMAL",
        help="SQLite durability modes to run, comma-separated (FULL: an fsync per commit)",
    )
    args = parser.parse_args(argv)
    from importlib.metadata import version

    import SpiffWorkflow  # noqa: F401 - fail early with a clear message if it is missing

    print(
        f"SpiffWorkflow {version('SpiffWorkflow')} vs rectiflow, {args.instances} instances x "
        f"(create + 4 persisted steps), best of {args.rounds} alternating rounds, "
        f"SQLite {sqlite3.sqlite_version} WAL"
    )
    tmp = Path(tempfile.mkdtemp(prefix="rectiflow-spiff-"))
    try:
        for mode in [m.strip().upper() for m in args.synchronous.split(",") if m.strip()]:
            results: dict[str, list[dict[str, Any]]] = {"spiff": [], "rectiflow": []}
            for r in range(args.rounds):
                # Alternate the order so neither side always runs on a warmer machine.
                order = ("spiff", "rectiflow") if r % 2 == 0 else ("rectiflow", "spiff")
                for name in order:
                    path = tmp / f"{name}-{mode}-{r}.db"
                    side: Any = (
                        SpiffSide(path, mode) if name == "spiff" else RectiflowSide(path, mode)
                    )
                    results[name].append(run_side(side, args.instances))
            print(f"synchronous={mode}")
            best = {}
            for name, runs in results.items():
                b = max(runs, key=lambda x: x["instances_per_s"])
                best[name] = b
                print(
                    f"  {name:<10} {b['instances_per_s']:8.1f} instances/s   step median "
                    f"{b['step_median_ms']:6.2f} ms   p95 {b['step_p95_ms']:6.2f} ms"
                )
            ratio = best["rectiflow"]["instances_per_s"] / best["spiff"]["instances_per_s"]
            step_ratio = best["spiff"]["step_median_ms"] / best["rectiflow"]["step_median_ms"]
            print(
                f"  ratio rectiflow / spiff: {ratio:.2f} (instances per second), "
                f"{step_ratio:.2f} (step median speed)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
