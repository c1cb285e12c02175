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
with the reason. It is set-based: counts per (state, kind, priority) in SQL, one row read
only for a ticket that cannot move or whose clock restarts, a new due time computed once per
distinct (state, priority, campaign, entered-at). ``apply_migration`` decides with the same
``_Decider`` and moves each ticket in its own transaction (prebuilt statements on one
connection), writing a ``migrate`` log row (from version, to version, plan digest) into the
ticket's hash chain; a ticket already on the new version is not selected again, so a re-run
after a crash finishes the rest and migrates each ticket once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, literal, or_, select

from engine import audit, deadlines
from engine.actors import SYSTEM_ACTOR, Actor
from engine.context import EngineContext, UnitOfWork, workflow_policy_problems
from engine.errors import Conflict, NotFound, ValidationError, WorkflowDefinitionError
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

# What a move reads of each ticket: what the chained write needs (``ledger.write_change``:
# the version, the chain's head, the columns the log row's head records) and what deciding
# and re-arming need.
_MOVE_COLUMNS = tuple(
    tickets_t.c[name]
    for name in dict.fromkeys(
        (
            "id",
            "number",
            "campaign_id",
            "state",
            "version",
            "priority",
            "last_hash",
            "updated_at",
            "due_at",
            *audit.HEAD_COLUMNS,
        )
    )
)


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


def _selection(plan: Plan, only: dict[str, str]) -> list[Any]:
    """The WHERE conditions that pick the plan's tickets (``--only`` narrowing them)."""
    from engine.models import Unit

    where: list[Any] = [
        tickets_t.c.workflow_name == plan.workflow,
        tickets_t.c.workflow_version == plan.from_version,
    ]
    if "state" in only:
        where.append(tickets_t.c.state == only["state"])
    if "number" in only:
        where.append(tickets_t.c.number == only["number"])
    if "campaign" in only:
        where.append(
            tickets_t.c.campaign_id
            == select(Campaign.id).where(Campaign.code == only["campaign"]).scalar_subquery()
        )
    if "unit" in only:
        where.append(
            tickets_t.c.unit_id
            == select(Unit.id).where(Unit.code == only["unit"]).scalar_subquery()
        )
    return where


def _entered_at_column() -> Any:
    """When the ticket entered its current state: its last state-changing log row (a
    correlated subquery on the log's (ticket_id, seq) key)."""
    return (
        select(log_t.c.at)
        .where(
            log_t.c.ticket_id == tickets_t.c.id,
            log_t.c.trigger != "migrate",
            func.coalesce(log_t.c.from_state, "") != log_t.c.to_state,
        )
        .order_by(log_t.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )


def _entered_at(uow: UnitOfWork, ticket_id: int) -> datetime:
    """When one ticket entered its current state (see ``_entered_at_column``)."""
    at: datetime = uow.conn.execute(
        select(_entered_at_column()).select_from(tickets_t).where(tickets_t.c.id == ticket_id)
    ).scalar_one()
    return at


Group = tuple[str, str | None, str | None]  # (state, kind, priority)


def _group_is(group: Group) -> Any:
    state, kind, priority = group
    return and_(
        tickets_t.c.state == state,
        tickets_t.c.kind.is_(None) if kind is None else tickets_t.c.kind == kind,
        tickets_t.c.priority.is_(None) if priority is None else tickets_t.c.priority == priority,
    )


class _Decider:
    """The plan's decisions, made once per (state, kind, priority) group and, for a
    retimed ticket, once per (state, priority, campaign, entered-at): the dry run and the
    migration ask the same object, so what one shows is what the other does."""

    def __init__(self, plan: Plan, old: Workflow, new: Workflow) -> None:
        self.plan, self.old, self.new = plan, old, new
        self._dues: dict[tuple[str, str | None, int, datetime], deadlines.Due] = {}

    def refusal(self, group: Group) -> str | None:
        """Why tickets of this group cannot move (None: they move)."""
        state, kind, priority = group
        if state in self.plan.stay:
            return f"the plan keeps tickets in {state!r} on version {self.plan.from_version}"
        reasons = []
        if kind is not None and kind not in self.new.kinds:
            reasons.append(f"its kind {kind!r} is not a kind of {self.new.key}")
        if priority is not None and priority not in self.new.priorities:
            reasons.append(f"its priority {priority!r} is not a priority of {self.new.key}")
        return "; ".join(reasons) or None

    def clock_change(self, state: str, priority: str | None) -> str:
        """``same`` (the clock stands), ``stop`` (the new state has no limit) or ``restart``
        (the new state's limit runs from the time the ticket entered its state)."""
        old_spec, new_spec = self.old.states[state], self.new.states[self.plan.states[state]]
        if new_spec.final or (
            old_spec.limit_for(priority) == new_spec.limit_for(priority)
            and old_spec.campaign_cap == new_spec.campaign_cap
            and old_spec.final == new_spec.final
        ):
            return "same"
        return "stop" if new_spec.limit_for(priority) is None else "restart"

    def decide(
        self,
        ticket: Any,
        entered_at: datetime | None,
        clock: Callable[[int], deadlines.CampaignClock],
    ) -> Decision:
        """What the plan does to ``ticket`` (a row with number, state, kind, priority,
        campaign_id, due_at); ``entered_at`` is needed only when its clock restarts."""
        state, priority = ticket.state, ticket.priority
        reason = self.refusal((state, ticket.kind, priority))
        if reason is not None:
            return Decision(ticket.number, state, None, reason)
        target = self.plan.states[state]
        change = self.clock_change(state, priority)
        if change == "same":
            return Decision(
                ticket.number, state, target, old_due=ticket.due_at, new_due=ticket.due_at
            )
        if change == "stop":
            return Decision(
                ticket.number,
                state,
                target,
                old_due=ticket.due_at,
                new_due=None,
                retimed=ticket.due_at is not None,
            )
        assert entered_at is not None
        key = (target, priority, ticket.campaign_id, entered_at)
        due = self._dues.get(key)
        if due is None:
            found = deadlines.state_due(
                self.new.states[target], clock(ticket.campaign_id), entered_at, priority
            )
            assert found is not None
            due = self._dues[key] = found
        return Decision(
            ticket.number,
            state,
            target,
            old_due=ticket.due_at,
            new_due=due.at,
            new_rule=due.rule,
            retimed=due.at != ticket.due_at,
        )


def _clocks(uow: UnitOfWork) -> Callable[[int], deadlines.CampaignClock]:
    return lambda campaign_id: deadlines.campaign_clock(uow, campaign_id)


def _workflows(registry: WorkflowRegistry, plan: Plan) -> tuple[Workflow, Workflow]:
    return registry.get(plan.workflow, plan.from_version), registry.get(
        plan.workflow, plan.to_version
    )


def plan_migration(
    target: EngineContext | UnitOfWork, plan: Plan, *, only: str | None = None
) -> MigrationResult:
    """The dry run: what ``apply_migration`` would do now, writing nothing. Given a unit of
    work (a web request's), it reads in that transaction; given the context, in its own.

    Set-based: the moves are counted per (state, kind, priority) in SQL; only the tickets
    that cannot move and those whose clock restarts are read one row each, and a new due
    time is computed once per distinct (state, priority, campaign, entered-at)."""
    if isinstance(target, UnitOfWork):
        return _dry_run(target, plan, parse_only(only))
    with target.unit_of_work() as uow:
        result = _dry_run(uow, plan, parse_only(only))
        uow.rollback()
    return result


def _dry_run(uow: UnitOfWork, plan: Plan, only: dict[str, str]) -> MigrationResult:
    decider = _Decider(plan, *_workflows(uow.registry, plan))
    result = MigrationResult(plan=plan, dry_run=True)
    where = _selection(plan, only)
    groups = uow.conn.execute(
        select(tickets_t.c.state, tickets_t.c.kind, tickets_t.c.priority, func.count())
        .where(*where)
        .group_by(tickets_t.c.state, tickets_t.c.kind, tickets_t.c.priority)
    ).all()
    refused: list[Group] = []
    retimed: list[Group] = []
    for state, kind, priority, count in groups:
        group = (state, kind, priority)
        if decider.refusal(group) is not None:
            refused.append(group)
            continue
        result.moves[(state, plan.states[state])] += int(count)
        if decider.clock_change(state, priority) != "same":
            retimed.append(group)
    if refused:
        for row in uow.conn.execute(
            select(tickets_t.c.number, tickets_t.c.state, tickets_t.c.kind, tickets_t.c.priority)
            .where(*where, or_(*(_group_is(g) for g in refused)))
            .order_by(tickets_t.c.id)
        ):
            reason = decider.refusal((row.state, row.kind, row.priority))
            result.refused.append(Decision(row.number, row.state, None, reason))
    if retimed:
        clock = _clocks(uow)
        rows = uow.conn.execute(
            select(
                tickets_t.c.number,
                tickets_t.c.state,
                tickets_t.c.kind,
                tickets_t.c.priority,
                tickets_t.c.campaign_id,
                tickets_t.c.due_at,
                _entered_at_column().label("entered_at"),
            )
            .where(*where, or_(*(_group_is(g) for g in retimed)))
            .order_by(tickets_t.c.id)
        )
        for ticket in rows:
            decision = decider.decide(ticket, ticket.entered_at, clock)
            if decision.retimed:
                result.retimed.append(decision)
    return result


def apply_migration(
    ctx: EngineContext,
    plan: Plan,
    *,
    only: str | None = None,
    actor: Actor = SYSTEM_ACTOR,
    now: datetime | None = None,
    after_each: Callable[[Decision], None] | None = None,
    batch: int = 1000,
) -> MigrationResult:
    """Move each selected ticket in its own transaction (see the module's docstring).

    The tickets are read a batch at a time (their rows and, where the clock restarts, the
    time they entered their state) and decided in that read; each move is then written in
    its own transaction by prebuilt statements, the ticket's UPDATE checking the version
    read, so a ticket changed in between is read and decided again on its own."""
    filters = parse_only(only)
    decider = _Decider(plan, *_workflows(ctx.registry, plan))
    result = MigrationResult(plan=plan, dry_run=False)
    restart_states = [
        s
        for s in plan.states
        if any(decider.clock_change(s, p) == "restart" for p in (None, *decider.old.priorities))
    ]
    entered = (
        case((tickets_t.c.state.in_(restart_states), _entered_at_column()), else_=None)
        if restart_states
        else literal(None)
    )
    query = (
        select(*_MOVE_COLUMNS, entered.label("entered_at"))
        .where(*_selection(plan, filters), tickets_t.c.id > bindparam("after"))
        .order_by(tickets_t.c.id)
        .limit(batch)
    )
    after = 0
    # The moves are written on one connection, a transaction each: no session per ticket.
    with ctx.engine.connect() as conn:
        while True:
            with ctx.unit_of_work() as uow:
                rows = uow.conn.execute(query, {"after": after}).all()
                clock = _clocks(uow)
                decided = [(row, decider.decide(row, row.entered_at, clock)) for row in rows]
                clocks = {
                    t.campaign_id: clock(t.campaign_id)
                    for t, d in decided
                    if d.retimed and d.new_due is not None
                }
                moment = uow.now(now)
            if not rows:
                return result
            after = rows[-1].id
            for ticket, decision in decided:
                if decision.to_state is None:
                    result.refused.append(decision)
                    continue
                try:
                    with conn.begin():  # each ticket its own transaction
                        _write(
                            conn,
                            ctx.audit_key,
                            plan,
                            ticket,
                            decision,
                            decider.new,
                            actor,
                            moment,
                            clocks,
                        )
                except Conflict:
                    # Changed since the batch was read: read and decide it again, on its own.
                    with ctx.unit_of_work() as uow:
                        fresh = load_ticket_row(uow.conn, ticket.number)
                        if fresh.workflow_version != plan.from_version:
                            continue  # moved meanwhile (another run): never twice
                        need = decider.clock_change(fresh.state, fresh.priority) == "restart"
                        decision = decider.decide(
                            fresh, _entered_at(uow, fresh.id) if need else None, _clocks(uow)
                        )
                        if decision.to_state is None:
                            result.refused.append(decision)
                            continue
                        _write(
                            uow.conn,
                            ctx.audit_key,
                            plan,
                            fresh,
                            decision,
                            decider.new,
                            actor,
                            uow.now(now),
                            {fresh.campaign_id: deadlines.campaign_clock(uow, fresh.campaign_id)},
                        )
                assert decision.to_state is not None
                result.moves[(decision.from_state, decision.to_state)] += 1
                if decision.retimed:
                    result.retimed.append(decision)
                result.migrated += 1
                if after_each is not None:
                    after_each(decision)


def _write(
    conn: Connection,
    audit_key: bytes | None,
    plan: Plan,
    ticket: Any,
    decision: Decision,
    new: Workflow,
    actor: Actor,
    now: datetime,
    clocks: dict[int, deadlines.CampaignClock],
) -> None:
    """One move in the caller's transaction: the ticket's UPDATE (version check) and its
    chained ``migrate`` log row, and for a retimed ticket its timers cancelled and re-armed."""
    assert decision.to_state is not None
    values: dict[str, Any] = {"workflow_version": plan.to_version}
    if decision.retimed:
        values["due_at"] = decision.new_due
        values["due_rule"] = decision.new_rule
    write_change(
        conn,
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
        audit_key=audit_key,
    )
    if decision.retimed:
        deadlines.cancel_pending(conn, ticket.id, now)
        if decision.new_due is not None:
            deadlines.arm_timers(
                conn,
                ticket_id=ticket.id,
                due_at=decision.new_due,
                ladder=new.ladder,
                clock=clocks[ticket.campaign_id],
                now=now,
                from_level=ticket.escalation_level,
                priority=ticket.priority,
            )


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
    "validate_workflow_file",
]
