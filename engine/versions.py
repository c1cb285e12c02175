"""Workflow files and versions: validating a file, listing versions, and moving running
tickets to a new version with a plan and a dry run.

A new version of a workflow is a new file. A **plan** (TOML) says what becomes of the
tickets of the old version::

    workflow = "consultation"
    from_version = 1
    to_version = 2
    stay = ["escalated"]          # tickets in these states stay on the old version

    [states]                      # old state = new state
    rectified = "verified"

A state that exists in both versions moves to its namesake unless the plan maps it; a state
the new version removes must be mapped (or listed under ``stay``). A plan mapping a state to
nothing, to an unknown state, or an open state to a final one is refused, naming the file and
the item, before any ticket is read.

``plan_migration`` is the dry run: per old state how many tickets would move where, each
timer that would be recalculated (old and new due time), and every ticket that cannot move
with the reason. ``apply_migration`` decides with the same function and moves each ticket in
its own transaction, writing a ``migrate`` log row (from version, to version, plan digest)
into the ticket's hash chain; a ticket already on the new version is not selected again, so a
re-run after a crash finishes the rest and migrates each ticket once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select

from engine import audit, deadlines
from engine.actors import SYSTEM_ACTOR, Actor
from engine.context import EngineContext, UnitOfWork, workflow_policy_problems
from engine.errors import NotFound, ValidationError, WorkflowDefinitionError
from engine.ledger import declare_event, load_ticket_row, log_t, tickets_t, write_change
from engine.models import Campaign
from engine.policy import Policy
from engine.workflow import (
    MAX_FILE_BYTES,
    Workflow,
    WorkflowRegistry,
    parse_workflow,
    read_toml_file,
)

declare_event("migrate", "workflow_version", "due_at", "due_rule")

ONLY_KEYS = ("campaign", "state", "number", "unit")


# --- validating a file ----------------------------------------------------------------------


def validate_workflow_file(
    path: Path, policy: Policy, registry: WorkflowRegistry | None = None
) -> tuple[Workflow | None, list[str]]:
    """The workflow in ``path`` and every problem found in it (file and item named): its own
    definition, the roles, ladder recipients and queue permissions the policy must know, and
    a clash with a version the registry already holds from another file."""
    try:
        workflow = parse_workflow(read_toml_file(path), str(path))
    except WorkflowDefinitionError as exc:
        listed = exc.details.get("problems")
        if listed:
            return None, [p["message"] for p in listed]
        return None, [exc.message]
    problems = workflow_policy_problems(workflow, policy)
    if registry is not None:
        try:
            other = registry.get(workflow.name, workflow.version)
        except NotFound:
            other = None
        if other is not None and Path(other.source).resolve() != path.resolve():
            problems.append(
                f"{path}: workflow: {workflow.key} is already defined in {other.source}; "
                "a new version needs a new version number"
            )
    return workflow, problems


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    title: str
    source: str
    states: int
    triggers: int
    tickets: int
    open_tickets: int
    # {zh_CN, en}; ``title`` is the English one.
    titles: dict[str, str] = field(default_factory=dict)
    # The campaigns and programmes that take new tickets on this version, by code.
    campaigns: tuple[str, ...] = ()


def list_versions(uow: UnitOfWork) -> list[VersionInfo]:
    """Every workflow version the registry holds, with how many tickets run on it and the
    campaigns and programmes that run on it."""
    from engine.read.admin import workflow_use

    rows = uow.session.execute(
        select(
            tickets_t.c.workflow_name,
            tickets_t.c.workflow_version,
            func.count(),
            func.count(tickets_t.c.id).filter(tickets_t.c.closed_at.is_(None)),
        ).group_by(tickets_t.c.workflow_name, tickets_t.c.workflow_version)
    ).all()
    counts = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
    used = workflow_use(uow.session)
    return [
        VersionInfo(
            name=wf.name,
            version=wf.version,
            title=wf.title,
            source=wf.source,
            states=len(wf.states),
            triggers=len(wf.triggers),
            tickets=counts.get((wf.name, wf.version), (0, 0))[0],
            open_tickets=counts.get((wf.name, wf.version), (0, 0))[1],
            titles=dict(wf.titles),
            campaigns=tuple(used.get((wf.name, wf.version), [])),
        )
        for wf in uow.registry.all()
    ]


# --- plans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    workflow: str
    from_version: int
    to_version: int
    states: dict[str, str]  # every old state that moves -> its new state
    stay: frozenset[str]
    digest: str
    source: str


def _plan_fail(source: str, problems: list[tuple[str, str]]) -> ValidationError:
    return ValidationError(
        f"{source}: the plan is refused, nothing was migrated: "
        + "; ".join(f"{item}: {problem}" for item, problem in problems),
        details={
            "file": source,
            "problems": [{"item": i, "problem": p} for i, p in problems],
        },
    )


def load_plan(
    registry: WorkflowRegistry,
    path: Path,
    *,
    name: str | None = None,
    to_version: int | None = None,
) -> Plan:
    """Read and check the plan in ``path`` against both versions (every problem named)."""
    data = read_toml_file(path, ValidationError)
    return parse_plan(registry, data, path.read_bytes(), str(path), name, to_version)


def parse_plan(
    registry: WorkflowRegistry,
    data: dict[str, Any],
    raw: bytes,
    source: str,
    name: str | None = None,
    to_version: int | None = None,
) -> Plan:
    if len(raw) > MAX_FILE_BYTES:
        raise _plan_fail(source, [("file", f"is larger than {MAX_FILE_BYTES} bytes")])
    problems: list[tuple[str, str]] = []
    wf_name = data.get("workflow", name)
    if not isinstance(wf_name, str) or not wf_name:
        raise _plan_fail(source, [("workflow", 'name the workflow (workflow = "...")')])
    if name is not None and wf_name != name:
        problems.append(("workflow", f"the plan is for {wf_name!r}, not {name!r}"))
    target = data.get("to_version", to_version)
    if to_version is not None and target != to_version:
        problems.append(("to_version", f"the plan moves to version {target}, not {to_version}"))
    if not isinstance(target, int) or isinstance(target, bool):
        raise _plan_fail(source, [*problems, ("to_version", "give the version to move to")])
    origin = data.get("from_version", target - 1)
    if not isinstance(origin, int) or isinstance(origin, bool) or origin == target:
        problems.append(("from_version", f"must be a version other than {target}"))
        raise _plan_fail(source, problems)
    try:
        old = registry.get(wf_name, origin)
    except NotFound as exc:
        problems.append(("from_version", exc.message))
    try:
        new = registry.get(wf_name, target)
    except NotFound as exc:
        known = sorted(w.version for w in registry.all() if w.name == wf_name)
        problems.append(("to_version", f"{exc.message}; known versions: {known or 'none'}"))
    if problems:
        raise _plan_fail(source, problems)
    raw_states = data.get("states", {})
    if not isinstance(raw_states, dict):
        raise _plan_fail(source, [("states", "must be a table of old state = new state")])
    stay_list = data.get("stay", [])
    if not isinstance(stay_list, list) or not all(isinstance(s, str) for s in stay_list):
        raise _plan_fail(source, [("stay", "must be a list of old states")])
    unknown_keys = set(data) - {"workflow", "from_version", "to_version", "states", "stay"}
    for key in sorted(unknown_keys):
        problems.append(
            (key, "is not a plan setting (workflow, from_version, to_version, states, stay)")
        )
    mapping: dict[str, str] = {}
    for old_state, new_state in raw_states.items():
        item = f"states.{old_state}"
        if old_state not in old.states:
            problems.append((item, f"{old_state!r} is not a state of {old.key}"))
        elif not isinstance(new_state, str) or not new_state.strip():
            problems.append((item, f"maps {old_state!r} to nothing; name a state of {new.key}"))
        elif new_state not in new.states:
            problems.append(
                (item, f"{new_state!r} is not a state of {new.key} ({', '.join(new.states)})")
            )
        elif new.states[new_state].final and not old.states[old_state].final:
            problems.append(
                (
                    item,
                    f"would close open tickets ({new_state!r} is final); close them by a "
                    "trigger instead",
                )
            )
        else:
            mapping[old_state] = new_state
    for state in stay_list:
        if state not in old.states:
            problems.append((f"stay.{state}", f"{state!r} is not a state of {old.key}"))
        elif state in raw_states:
            problems.append((f"stay.{state}", "is also mapped under [states]; choose one"))
    for state in old.states:
        if state in mapping or state in stay_list:
            continue
        if state in new.states:
            mapping[state] = state
        else:
            problems.append(
                (
                    f"states.{state}",
                    f"{state!r} is removed in {new.key}: map it to a new state "
                    "or list it under stay",
                )
            )
    if problems:
        raise _plan_fail(source, problems)
    return Plan(
        workflow=wf_name,
        from_version=origin,
        to_version=target,
        states=mapping,
        stay=frozenset(stay_list),
        digest=hashlib.sha256(raw).hexdigest(),
        source=source,
    )


# --- deciding, per ticket -------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    number: str
    from_state: str
    to_state: str | None  # None: the ticket cannot move
    reason: str | None = None
    old_due: datetime | None = None
    new_due: datetime | None = None
    new_rule: str | None = None
    retimed: bool = False


@dataclass
class MigrationResult:
    plan: Plan
    dry_run: bool
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    retimed: list[Decision] = field(default_factory=list)
    refused: list[Decision] = field(default_factory=list)
    migrated: int = 0

    @property
    def moving(self) -> int:
        return sum(self.moves.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.plan.workflow,
            "from_version": self.plan.from_version,
            "to_version": self.plan.to_version,
            "plan_digest": self.plan.digest,
            "dry_run": self.dry_run,
            "moves": [
                {"from_state": a, "to_state": b, "tickets": n}
                for (a, b), n in sorted(self.moves.items())
            ],
            "retimed": [
                {
                    "number": d.number,
                    "state": d.to_state,
                    "old_due": d.old_due.isoformat() if d.old_due else None,
                    "new_due": d.new_due.isoformat() if d.new_due else None,
                }
                for d in self.retimed
            ],
            "refused": [
                {"number": d.number, "state": d.from_state, "reason": d.reason}
                for d in self.refused
            ],
            "migrated": self.migrated,
        }


def parse_only(query: str | None) -> dict[str, str]:
    """``--only campaign=C,state=S`` as a dict; unknown keys refused."""
    out: dict[str, str] = {}
    for part in (query or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ONLY_KEYS or not value.strip():
            raise ValidationError(
                f"--only {query!r}: {part!r} is not KEY=VALUE with KEY one of "
                f"{', '.join(ONLY_KEYS)}",
                fields={"only": "KEY=VALUE[,KEY=VALUE]"},
            )
        out[key] = value.strip()
    return out


def _selected(uow: UnitOfWork, plan: Plan, only: dict[str, str], after_id: int, limit: int) -> Any:
    from engine.models import Unit

    query = select(tickets_t.c.id, tickets_t.c.number).where(
        tickets_t.c.workflow_name == plan.workflow,
        tickets_t.c.workflow_version == plan.from_version,
        tickets_t.c.id > after_id,
    )
    if "state" in only:
        query = query.where(tickets_t.c.state == only["state"])
    if "number" in only:
        query = query.where(tickets_t.c.number == only["number"])
    if "campaign" in only:
        query = query.where(
            tickets_t.c.campaign_id
            == select(Campaign.id).where(Campaign.code == only["campaign"]).scalar_subquery()
        )
    if "unit" in only:
        query = query.where(
            tickets_t.c.unit_id
            == select(Unit.id).where(Unit.code == only["unit"]).scalar_subquery()
        )
    return uow.session.execute(query.order_by(tickets_t.c.id).limit(limit)).all()


def _batches(
    ctx: EngineContext, plan: Plan, only: dict[str, str], batch: int = 1000
) -> Iterator[list[str]]:
    """The selected tickets' numbers, by id, in batches (each read its own short transaction)."""
    after = 0
    while True:
        with ctx.unit_of_work() as uow:
            rows = _selected(uow, plan, only, after, batch)
        if not rows:
            return
        yield [row.number for row in rows]
        after = rows[-1].id


def _entered_at(uow: UnitOfWork, ticket_id: int) -> datetime:
    """When the ticket entered its current state (its last state-changing log row)."""
    row = uow.conn.execute(
        select(log_t.c.at)
        .where(
            log_t.c.ticket_id == ticket_id,
            and_(
                log_t.c.trigger != "migrate",
                func.coalesce(log_t.c.from_state, "") != log_t.c.to_state,
            ),
        )
        .order_by(log_t.c.seq.desc())
        .limit(1)
    ).first()
    assert row is not None
    at: datetime = row[0]
    return at


def decide(
    uow: UnitOfWork,
    plan: Plan,
    ticket: Any,
    old: Workflow,
    new: Workflow,
    clocks: dict[int, deadlines.CampaignClock] | None = None,
) -> Decision:
    """What the plan does to ``ticket`` (a ledger row): its new state and due time, or why not."""
    state = ticket.state
    if state in plan.stay:
        return Decision(
            ticket.number,
            state,
            None,
            f"the plan keeps tickets in {state!r} on version {plan.from_version}",
        )
    target = plan.states[state]
    reasons = []
    if ticket.kind is not None and ticket.kind not in new.kinds:
        reasons.append(f"its kind {ticket.kind!r} is not a kind of {new.key}")
    if ticket.priority is not None and ticket.priority not in new.priorities:
        reasons.append(f"its priority {ticket.priority!r} is not a priority of {new.key}")
    if reasons:
        return Decision(ticket.number, state, None, "; ".join(reasons))
    old_spec, new_spec = old.states[state], new.states[target]
    same_clock = (
        old_spec.limit_for(ticket.priority) == new_spec.limit_for(ticket.priority)
        and old_spec.campaign_cap == new_spec.campaign_cap
        and old_spec.final == new_spec.final
    )
    if same_clock or new_spec.final:
        return Decision(ticket.number, state, target, old_due=ticket.due_at, new_due=ticket.due_at)
    if new_spec.limit_for(ticket.priority) is None:
        return Decision(
            ticket.number,
            state,
            target,
            old_due=ticket.due_at,
            new_due=None,
            retimed=ticket.due_at is not None,
        )
    clocks = {} if clocks is None else clocks
    if ticket.campaign_id not in clocks:
        clocks[ticket.campaign_id] = deadlines.campaign_clock(uow, ticket.campaign_id)
    clock = clocks[ticket.campaign_id]
    due = deadlines.state_due(new_spec, clock, _entered_at(uow, ticket.id), ticket.priority)
    assert due is not None
    return Decision(
        ticket.number,
        state,
        target,
        old_due=ticket.due_at,
        new_due=due.at,
        new_rule=due.rule,
        retimed=due.at != ticket.due_at,
    )


def _workflows(registry: WorkflowRegistry, plan: Plan) -> tuple[Workflow, Workflow]:
    return registry.get(plan.workflow, plan.from_version), registry.get(
        plan.workflow, plan.to_version
    )


def plan_migration(
    target: EngineContext | UnitOfWork, plan: Plan, *, only: str | None = None
) -> MigrationResult:
    """The dry run: what ``apply_migration`` would do now, writing nothing. Given a unit of
    work (a web request's), it reads in that transaction; given the context, in its own."""
    if isinstance(target, UnitOfWork):
        return _run(target.ctx, plan, only=only, apply=False, reader=target)
    with target.unit_of_work() as uow:
        result = _run(target, plan, only=only, apply=False, reader=uow)
        uow.rollback()
    return result


def apply_migration(
    ctx: EngineContext,
    plan: Plan,
    *,
    only: str | None = None,
    actor: Actor = SYSTEM_ACTOR,
    now: datetime | None = None,
    after_each: Callable[[Decision], None] | None = None,
) -> MigrationResult:
    """Move each selected ticket in its own transaction (see the module's docstring)."""
    return _run(ctx, plan, only=only, apply=True, actor=actor, now=now, after_each=after_each)


def _run(
    ctx: EngineContext,
    plan: Plan,
    *,
    only: str | None,
    apply: bool,
    actor: Actor = SYSTEM_ACTOR,
    now: datetime | None = None,
    after_each: Callable[[Decision], None] | None = None,
    reader: UnitOfWork | None = None,
) -> MigrationResult:
    filters = parse_only(only)
    old, new = _workflows(ctx.registry, plan)
    result = MigrationResult(plan=plan, dry_run=not apply)
    clocks: dict[int, deadlines.CampaignClock] = {}

    def one(uow: UnitOfWork, number: str) -> Decision | None:
        ticket = load_ticket_row(uow.conn, number)
        if ticket.workflow_version != plan.from_version:
            return None  # moved meanwhile (another run): never twice
        decision = decide(uow, plan, ticket, old, new, clocks)
        if decision.to_state is None:
            result.refused.append(decision)
            return None
        result.moves[(decision.from_state, decision.to_state)] += 1
        if decision.retimed:
            result.retimed.append(decision)
        if apply:
            _write(uow, plan, ticket, decision, new, actor, uow.now(now))
            result.migrated += 1
        return decision

    if reader is not None:
        # The dry run: every read in the reader's transaction, nothing written.
        after = 0
        while rows := _selected(reader, plan, filters, after, 1000):
            for row in rows:
                one(reader, row.number)
            after = rows[-1].id
        return result
    for numbers in _batches(ctx, plan, filters):
        for number in numbers:
            with ctx.unit_of_work() as uow:  # each ticket its own transaction
                decision = one(uow, number)
            if decision is not None and after_each is not None:
                after_each(decision)
    return result


def _write(
    uow: UnitOfWork,
    plan: Plan,
    ticket: Any,
    decision: Decision,
    new: Workflow,
    actor: Actor,
    now: datetime,
) -> None:
    assert decision.to_state is not None
    values: dict[str, Any] = {"workflow_version": plan.to_version}
    if decision.retimed:
        values["due_at"] = decision.new_due
        values["due_rule"] = decision.new_rule
    write_change(
        uow.conn,
        ticket,
        trigger="migrate",
        dest=decision.to_state,
        actor=actor,
        logged={
            "from_version": plan.from_version,
            "to_version": plan.to_version,
            "plan": plan.digest,
            **(
                {"due_at": audit.format_instant(decision.new_due)}
                if decision.retimed and decision.new_due is not None
                else {}
            ),
        },
        reason=None,
        values=values,
        now=now,
        workflow_version=plan.to_version,
        audit_key=uow.audit_key,
    )
    if decision.retimed:
        if decision.new_due is None:
            deadlines.cancel_pending(uow.conn, ticket.id, now)
        else:
            deadlines.rearm(
                uow,
                workflow=new,
                ticket_id=ticket.id,
                campaign_id=ticket.campaign_id,
                due_at=decision.new_due,
                now=now,
                from_level=ticket.escalation_level,
            )


def render_result(result: MigrationResult) -> str:
    """The dry run (or what was done) as text, for the terminal."""
    plan = result.plan
    head = "dry run: nothing was written" if result.dry_run else f"{result.migrated} migrated"
    lines = [
        f"{plan.workflow} v{plan.from_version} -> v{plan.to_version} (plan {plan.digest[:12]}): "
        f"{head}",
        f"moving {result.moving} ticket(s):",
    ]
    for (a, b), n in sorted(result.moves.items()):
        lines.append(f"  {a} -> {b}: {n}")
    lines.append(f"timers recalculated: {len(result.retimed)}")
    for d in result.retimed:
        old = d.old_due.isoformat(timespec="minutes") if d.old_due else "none"
        new = d.new_due.isoformat(timespec="minutes") if d.new_due else "none (no limit)"
        lines.append(f"  {d.number} ({d.to_state}): due {old} -> {new}")
    lines.append(f"cannot move: {len(result.refused)}")
    for d in result.refused:
        lines.append(f"  {d.number} ({d.from_state}): {d.reason}")
    return "\n".join(lines) + "\n"


__all__ = [
    "Decision",
    "MigrationResult",
    "Plan",
    "VersionInfo",
    "apply_migration",
    "list_versions",
    "load_plan",
    "parse_plan",
    "plan_migration",
    "render_result",
    "validate_workflow_file",
]
