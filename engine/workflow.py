"""Workflow definitions as data, validated on load and compiled once.

A definition file (TOML, in ``workflows/``) names states, triggers, who may fire
them, the data they require, guards and per-state time limits. Loading checks
the file and names the file and item of every mistake. Each (name, version)
compiles once into a shared ``transitions`` machine with no model attached;
tickets are driven through it by firing ``machine.events[name].trigger(token)``
on a light object, so memory does not grow with the number of tickets.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from transitions import Machine, MachineError

from engine.effects import check_effect
from engine.errors import EngineError, InvalidTransition, NotFound, WorkflowDefinitionError
from engine.guards import GUARDS
from engine.titles import LANGUAGES, parse_titles, pick

FIELD_TYPES = frozenset({"text", "choice", "date", "unit", "user", "category", "bool"})
DEFAULT_WORKFLOWS_DIR = Path(__file__).resolve().parent.parent / "workflows"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    title: str
    choices: tuple[str, ...] = ()
    max_length: int = 4000
    role: str | None = None
    # {zh_CN: ..., en: ...}; ``title`` is the English one (the API's and the log's language).
    titles: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # choice → {zh_CN: ..., en: ...}
    choice_titles: dict[str, dict[str, str]] = field(
        default_factory=dict, compare=False, hash=False
    )

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title)

    def choice_title(self, choice: str, locale: str) -> str:
        return pick(self.choice_titles.get(choice), locale, choice)


TIME_UNITS = ("working_days", "calendar_days", "hours")
# Largest file a workflow or a migration plan may be (bytes): a definition is a page of TOML.
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class TimeLimit:
    """A state's time limit: ``amount`` of ``unit`` (working days, calendar days or hours)."""

    amount: int
    unit: str

    def describe(self) -> str:
        word = {"working_days": "working day", "calendar_days": "calendar day", "hours": "hour"}
        return f"{self.amount} {word[self.unit]}{'s' if self.amount != 1 else ''}"


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: str
    final: bool = False
    # The limit for tickets without a priority (or whose priority has none of its own).
    time_limit: TimeLimit | None = None
    # Per priority ("urgent" -> 4 hours), where the workflow declares priorities.
    priority_limits: tuple[tuple[str, TimeLimit], ...] = ()
    # False: the campaign's rectification deadline does not cap this state's limit.
    campaign_cap: bool = True
    titles: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title)

    @property
    def clocked(self) -> bool:
        return self.time_limit is not None or bool(self.priority_limits)

    def limit_for(self, priority: str | None) -> TimeLimit | None:
        """The limit that applies to a ticket of ``priority`` entering this state."""
        if priority is not None:
            for name, limit in self.priority_limits:
                if name == priority:
                    return limit
        return self.time_limit

    @property
    def time_limit_working_days(self) -> int | None:
        tl = self.time_limit
        return tl.amount if tl is not None and tl.unit == "working_days" else None

    @property
    def time_limit_hours(self) -> int | None:
        tl = self.time_limit
        return tl.amount if tl is not None and tl.unit == "hours" else None

    def describe_limits(self) -> str:
        parts = [f"{p}: {lim.describe()}" for p, lim in self.priority_limits]
        if self.time_limit is not None:
            parts.append(("otherwise " if parts else "") + self.time_limit.describe())
        return "; ".join(parts)


@dataclass(frozen=True)
class QueueSpec:
    """A list people work from: tickets in ``states``, for holders of ``permission``.

    ``scope = "unit"`` shows the holder's unit's tickets; ``"all"`` every ticket.
    """

    name: str
    title: str
    states: tuple[str, ...]
    permission: str
    scope: str = "all"
    # {zh_CN: ..., en: ...}; ``title`` is the English one.
    titles: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title)


@dataclass(frozen=True)
class ReportSpec:
    """The figures a workflow's report counts, named in the workflow file."""

    closed: tuple[str, ...] = ()
    feedback_effect: str | None = None
    satisfaction_field: str | None = None
    # Figure name -> trigger: "on time" when fired before the due time of the state it left
    # (a hotline's signed_for = "sign_for", handled = "reply").
    on_time: tuple[tuple[str, str], ...] = ()
    # Triggers that count as a ticket returned (sent back, reply returned).
    returned: tuple[str, ...] = ()
    # Figure name -> {zh_CN, en}: what the report calls each on-time figure.
    figure_titles: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)

    def figure_title(self, figure: str, locale: str) -> str:
        return pick(self.figure_titles.get(figure), locale, figure.replace("_", " "))


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[str]
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    title: str = ""
    # Conditions declared as data (no Python guard needed):
    # the given fields must hold one of these values ("rating" in satisfied, ...);
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # it may fire at most this many times on one ticket (a unit sends a ticket back once);
    max_times: int | None = None
    # it may fire only once each of these triggers has fired on the ticket;
    needs_prior: tuple[str, ...] = ()
    # it may fire only before the ticket's due time (send back within the sign-for limit).
    before_due: bool = False
    titles: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title or self.name)


@dataclass(frozen=True)
class LadderStep:
    """One rung: ``after`` the due time (per priority where the workflow has priorities),
    the ticket reaches ``level`` and ``notify`` are told."""

    level: int
    after: TimeLimit | None
    notify: tuple[str, ...]
    priority_after: tuple[tuple[str, TimeLimit], ...] = ()

    def after_for(self, priority: str | None) -> TimeLimit:
        """How long after the due time this step fires for a ticket of ``priority``."""
        if priority is not None:
            for name, limit in self.priority_after:
                if name == priority:
                    return limit
        return self.after if self.after is not None else TimeLimit(0, "hours")

    def describe(self) -> str:
        parts = [f"{p}: {lim.describe()}" for p, lim in self.priority_after]
        if self.after is not None:
            parts.append(("otherwise " if parts else "") + self.after.describe())
        return ", ".join(parts)


@dataclass(frozen=True)
class Ladder:
    warning_before_hours: int = 24
    steps: tuple[LadderStep, ...] = ()


class _Token:
    """What the shared machine moves: only a state, nothing attached."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass
class Workflow:
    name: str
    version: int
    title: str
    initial: str
    states: dict[str, StateSpec]
    triggers: list[TriggerSpec]
    fields: dict[str, FieldSpec]
    ladder: Ladder
    source: str
    kinds: tuple[str, ...] = ()
    # The kind a trigger requiring one gets when the person gave none (an Open311 request).
    default_kind: str | None = None
    # Other words for a kind (an import sheet's 表扬 for praise).
    kind_aliases: dict[str, str] = field(default_factory=dict)
    priorities: tuple[str, ...] = ()
    default_priority: str | None = None
    queues: tuple[QueueSpec, ...] = ()
    # What adapters fire on this workflow, by purpose: {"categorize": ..., "reopen": ...}.
    uses: dict[str, str] = field(default_factory=dict)
    report: ReportSpec = field(default_factory=ReportSpec)
    machine: Machine = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    _by_source: dict[tuple[str, str], TriggerSpec] = field(default_factory=dict, repr=False)
    titles: dict[str, str] = field(default_factory=dict, compare=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title)

    def state_title(self, state: str | None, locale: str) -> str:
        """A state's title in ``locale``; an unknown state shows as it is."""
        spec = self.states.get(state or "")
        return spec.title_in(locale) if spec else (state or "")

    def trigger_title(self, trigger: str, locale: str, source: str | None = None) -> str:
        """The title of the spec named ``trigger`` that leaves ``source`` (one name may mean
        different steps from different states: ``feed_back`` from ``escalated`` is the
        government's answer), else of the first spec with that name."""
        first = None
        for spec in self.triggers:
            if spec.name == trigger:
                if source is None or source in spec.sources:
                    return spec.title_in(locale)
                first = first or spec
        return first.title_in(locale) if first is not None else trigger

    @property
    def key(self) -> str:
        return f"{self.name}/v{self.version}"

    @cached_property
    def final_states(self) -> frozenset[str]:
        # A compiled workflow's states do not change (a new version is a new Workflow).
        return frozenset(s.name for s in self.states.values() if s.final)

    def kind_words(self) -> dict[str, str]:
        """Every word that names a kind (lower case) and the kind it names."""
        words = {k.lower(): k for k in self.kinds}
        words.update({a.lower(): k for a, k in self.kind_aliases.items()})
        return words

    @property
    def closed_states(self) -> frozenset[str]:
        """The states the report counts as closed (the final states unless the file says)."""
        return frozenset(self.report.closed) or self.final_states

    @cached_property
    def state_ranks(self) -> dict[str, int]:
        """Each state's distance from the initial state along the triggers (computed once)."""
        ranks = {self.initial: 0}
        frontier = [self.initial]
        while frontier:
            following = []
            for state in frontier:
                for spec in self.triggers_from(state):
                    if spec.dest not in ranks:
                        ranks[spec.dest] = ranks[state] + 1
                        following.append(spec.dest)
            frontier = following
        return ranks

    def use(self, purpose: str) -> str | None:
        """The trigger the workflow names for ``purpose`` (``categorize``, ``reopen``), if any."""
        return self.uses.get(purpose)

    def queue(self, name: str) -> QueueSpec | None:
        return next((q for q in self.queues if q.name == name), None)

    def transition_for(self, trigger: str, state: str) -> TriggerSpec | None:
        """The trigger spec that applies to ``trigger`` fired from ``state``, if any."""
        return self._by_source.get((trigger, state))

    def triggers_from(self, state: str) -> list[TriggerSpec]:
        """Every trigger the definition allows from ``state`` (whoever may fire it)."""
        return [t for (_, src), t in self._by_source.items() if src == state]

    def trigger_names(self) -> list[str]:
        return sorted({t.name for t in self.triggers})

    def next_state(self, state: str, trigger: str) -> str:
        """Fire ``trigger`` on the compiled machine from ``state``; return the new state."""
        token = _Token(state)
        event = self.machine.events.get(trigger)
        if event is None:
            raise InvalidTransition(
                f"{self.key} has no trigger {trigger!r}; its triggers are "
                f"{', '.join(self.trigger_names())}",
                state=state,
            )
        try:
            event.trigger(token)
        except MachineError as exc:
            allowed = sorted({t.name for t in self.triggers_from(state)})
            raise InvalidTransition(
                f"{trigger!r} is not allowed from state {state!r}; allowed: "
                f"{', '.join(allowed) or 'none (final)'}",
                state=state,
                details={"allowed": allowed},
            ) from exc
        return token.state

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "titles": dict(self.titles),
            "initial": self.initial,
            "states": [
                {
                    "name": s.name,
                    "title": s.title,
                    "titles": dict(s.titles),
                    "final": s.final,
                    "time_limit_working_days": s.time_limit_working_days,
                    "time_limit_hours": s.time_limit_hours,
                    "time_limit": s.describe_limits() or None,
                    "campaign_cap": s.campaign_cap,
                }
                for s in self.states.values()
            ],
            "triggers": [
                {
                    "name": t.name,
                    "title": t.title,
                    "titles": dict(t.titles),
                    "sources": list(t.sources),
                    "dest": t.dest,
                    "roles": sorted(t.roles),
                    "requires": list(t.requires),
                    "optional": list(t.optional),
                    "guards": list(t.guards),
                    "effects": list(t.effects),
                }
                for t in self.triggers
            ],
            "kinds": list(self.kinds),
            "priorities": list(self.priorities),
            "queues": [
                {
                    "name": q.name,
                    "title": q.title,
                    "titles": dict(q.titles),
                    "states": list(q.states),
                    "scope": q.scope,
                }
                for q in self.queues
            ],
            "fields": {
                f.name: {
                    "type": f.type,
                    "title": f.title,
                    "titles": dict(f.titles),
                    "choices": list(f.choices),
                    "choice_titles": {c: dict(t) for c, t in f.choice_titles.items()},
                }
                for f in self.fields.values()
            },
            "ladder": {
                "warning_before_hours": self.ladder.warning_before_hours,
                "steps": [
                    {
                        "level": s.level,
                        "after": _limit_dict(s.after, s.priority_after),
                        "notify": list(s.notify),
                    }
                    for s in self.ladder.steps
                ],
            },
        }


def _limit_dict(
    default: TimeLimit | None, per: tuple[tuple[str, TimeLimit], ...]
) -> dict[str, Any]:
    """A limit as the file spells it: ``{unit: n}``, or per priority with ``default``."""
    if not per:
        return {default.unit: default.amount} if default is not None else {}
    out: dict[str, Any] = {p: {lim.unit: lim.amount} for p, lim in per}
    if default is not None:
        out["default"] = {default.unit: default.amount}
    return out


def _fail(source: str, item: str, problem: str) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(
        f"{source}: {item}: {problem}", details={"file": source, "item": item}
    )


def _require(
    table: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str, item: str
) -> Any:
    if key not in table:
        raise _fail(source, item, f"missing field {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(source, item, f"field {key!r} must be {names}, got {value!r}")
    return value


def _titles(table: dict[str, Any], source: str, item: str) -> dict[str, str]:
    try:
        return parse_titles(table.get("title"))
    except ValueError as exc:
        raise _fail(source, item, str(exc)) from None


def _flag(table: dict[str, Any], key: str, default: bool, source: str, item: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise _fail(source, item, f"field {key!r} must be true or false, got {value!r}")
    return value


def _str_list(value: Any, source: str, item: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, item, f"field {key!r} must be a list of names")
    return tuple(value)


def parse_workflow(data: dict[str, Any], source: str = "<memory>") -> Workflow:
    """Validate a definition already read into a dict and compile it.

    Raises ``WorkflowDefinitionError`` naming ``source`` and the item at fault:
    unknown state, unreachable state, a non-final state with no way out, a
    duplicate trigger from one source, an unknown role, field or guard, a
    missing field.
    """
    name = _require(data, "name", str, source, "workflow")
    version = _require(data, "version", int, source, "workflow")
    if version < 1:
        raise _fail(source, "workflow", f"version must be 1 or more, got {version}")
    initial = _require(data, "initial", str, source, "workflow")
    raw_states = _require(data, "states", dict, source, "workflow")
    raw_triggers = _require(data, "triggers", list, source, "workflow")
    if not raw_states:
        raise _fail(source, "states", "no states are defined")

    problems: list[WorkflowDefinitionError] = []
    kinds = _str_list(data.get("kinds", []), source, "kinds", "kinds")
    default_kind = data.get("default_kind")
    if default_kind is not None and default_kind not in kinds:
        problems.append(_fail(source, "default_kind", f"{default_kind!r} is not one of the kinds"))
        default_kind = None
    kind_aliases = data.get("kind_aliases", {})
    if not isinstance(kind_aliases, dict) or any(
        not isinstance(v, str) or v not in kinds for v in kind_aliases.values()
    ):
        problems.append(
            _fail(source, "kind_aliases", f"each alias must name one of the kinds ({kinds})")
        )
        kind_aliases = {}
    priorities = _str_list(data.get("priorities", []), source, "priorities", "priorities")
    default_priority = data.get("default_priority")
    if default_priority is not None and default_priority not in priorities:
        raise _fail(
            source,
            "default_priority",
            f"{default_priority!r} is not one of the priorities ({', '.join(priorities) or 'none'})",
        )
    states: dict[str, StateSpec] = {}
    for sname, sdata in raw_states.items():
        with _collecting(problems):
            item = f"state {sname!r}"
            if not isinstance(sdata, dict):
                raise _fail(source, item, "must be a table")
            default_limit, per_priority = _parse_limits(
                sdata.get("time_limit"), priorities, source, item
            )
            titles = _titles(sdata, source, item)
            states[sname] = StateSpec(
                name=sname,
                title=titles["en"],
                titles=titles,
                final=bool(sdata.get("final", False)),
                time_limit=default_limit,
                priority_limits=per_priority,
                campaign_cap=_flag(sdata, "campaign_cap", True, source, item),
            )
    if initial not in raw_states:
        raise _fail(
            source, "workflow", f"initial state {initial!r} is not a state ({', '.join(states)})"
        )

    fields: dict[str, FieldSpec] = {}
    for fname, fdata in (data.get("fields") or {}).items():
        with _collecting(problems):
            item = f"field {fname!r}"
            if not isinstance(fdata, dict):
                raise _fail(source, item, "must be a table")
            ftype = _require(fdata, "type", str, source, item)
            if ftype not in FIELD_TYPES:
                raise _fail(
                    source,
                    item,
                    f"unknown type {ftype!r}; use one of {', '.join(sorted(FIELD_TYPES))}",
                )
            choices = _str_list(fdata.get("choices", []), source, item, "choices")
            if ftype == "choice" and not choices:
                raise _fail(source, item, "a choice field needs choices")
            role = fdata.get("role")
            if role is not None and not isinstance(role, str):
                raise _fail(source, item, "role must be a role's name")
            titles = _titles(fdata, source, item)
            raw_choice_titles = fdata.get("choice_titles", {})
            if not isinstance(raw_choice_titles, dict):
                raise _fail(source, item, "choice_titles must be a table: choice = {zh_CN, en}")
            choice_titles: dict[str, dict[str, str]] = {}
            for choice in choices:
                if choice not in raw_choice_titles:
                    raise _fail(
                        source,
                        item,
                        f"choice {choice!r} has no title; add choice_titles.{choice} = "
                        f"{{{', '.join(f'{lang} = ...' for lang in LANGUAGES)}}}",
                    )
                choice_titles[choice] = _titles(
                    {"title": raw_choice_titles[choice]}, source, f"{item} choice {choice!r}"
                )
            extra = sorted(set(raw_choice_titles) - set(choices))
            if extra:
                raise _fail(source, item, f"choice_titles names unknown choices {', '.join(extra)}")
            fields[fname] = FieldSpec(
                name=fname,
                type=ftype,
                title=titles["en"],
                titles=titles,
                choice_titles=choice_titles,
                choices=choices,
                max_length=int(fdata.get("max_length", 4000)),
                role=role,
            )

    triggers: list[TriggerSpec] = []
    by_source: dict[tuple[str, str], TriggerSpec] = {}
    for index, tdata in enumerate(raw_triggers, start=1):
        with _collecting(problems):
            if not isinstance(tdata, dict):
                raise _fail(source, f"trigger #{index}", "must be a table")
            tname = _require(tdata, "name", str, source, f"trigger #{index}")
            item = f"trigger {tname!r} (#{index})"
            sources = _str_list(
                _require(tdata, "source", (str, list), source, item), source, item, "source"
            )
            dest = _require(tdata, "dest", str, source, item)
            roles = _str_list(_require(tdata, "roles", list, source, item), source, item, "roles")
            for state in (*sources, dest):
                if state not in raw_states:
                    raise _fail(
                        source, item, f"unknown state {state!r}; states are {', '.join(states)}"
                    )
            if not roles:
                raise _fail(source, item, "roles is empty; name the roles that may fire it")
            requires = _str_list(tdata.get("requires", []), source, item, "requires")
            optional = _str_list(tdata.get("optional", []), source, item, "optional")
            for fname in (*requires, *optional):
                if fname not in fields:
                    raise _fail(source, item, f"unknown field {fname!r}; define it under [fields]")
            guards = _str_list(tdata.get("guards", []), source, item, "guards")
            for guard in guards:
                if guard not in GUARDS:
                    raise _fail(
                        source,
                        item,
                        f"unknown guard {guard!r}; guards are {', '.join(sorted(GUARDS))}",
                    )
            effects = _str_list(tdata.get("effects", []), source, item, "effects")
            for effect_name in effects:
                problem = check_effect(effect_name, (*requires, *optional))
                if problem:
                    raise _fail(source, item, problem)
            when = tdata.get("when", {})
            if not isinstance(when, dict):
                raise _fail(source, item, "when must be a table of field = [values]")
            when_items: list[tuple[str, tuple[str, ...]]] = []
            for wfield, wvalues in when.items():
                if wfield not in (*requires, *optional):
                    raise _fail(
                        source, item, f"when: {wfield!r} is not a field this trigger carries"
                    )
                values = _str_list(wvalues, source, item, f"when.{wfield}")
                fspec = fields[wfield]
                bad = [v for v in values if fspec.choices and v not in fspec.choices]
                if bad:
                    raise _fail(
                        source, item, f"when.{wfield}: {bad} not among {list(fspec.choices)}"
                    )
                when_items.append((wfield, values))
            max_times = tdata.get("max_times")
            if max_times is not None and (
                not isinstance(max_times, int) or isinstance(max_times, bool) or max_times < 1
            ):
                raise _fail(source, item, "max_times must be a whole number >= 1")
            needs_prior = _str_list(tdata.get("needs_prior", []), source, item, "needs_prior")
            titles = _titles(tdata, source, item)
            spec = TriggerSpec(
                name=tname,
                titles=titles,
                when=tuple(when_items),
                max_times=max_times,
                needs_prior=needs_prior,
                before_due=_flag(tdata, "before_due", False, source, item),
                sources=sources,
                dest=dest,
                roles=frozenset(roles),
                requires=requires,
                optional=optional,
                guards=guards,
                effects=effects,
                title=titles["en"],
            )
            for src in sources:
                if (tname, src) in by_source:
                    raise _fail(source, item, f"duplicate trigger {tname!r} from state {src!r}")
                by_source[(tname, src)] = spec
            triggers.append(spec)

    trigger_names = {t.name for t in triggers}
    for spec in triggers:
        for prior in spec.needs_prior:
            if prior not in trigger_names:
                problems.append(
                    _fail(source, f"trigger {spec.name!r}", f"needs_prior: no trigger {prior!r}")
                )
    wf_titles: dict[str, str] = {}
    with _collecting(problems):
        wf_titles = _titles(data, source, "workflow")
    ladder = Ladder()
    queues: tuple[QueueSpec, ...] = ()
    uses: dict[str, str] = {}
    report = ReportSpec()
    with _collecting(problems):
        ladder = _parse_ladder(data.get("ladder") or {}, priorities, source, problems)
    with _collecting(problems):
        queues = _parse_queues(data.get("queues", []), raw_states, source)
    with _collecting(problems):
        uses = _parse_uses(data.get("uses", {}), by_source, source)
    with _collecting(problems):
        report = _parse_report(data.get("report", {}), states, triggers, fields, source)
    if problems:
        raise _all_problems(source, problems)
    # Reachability from the initial state, and a way out of every non-final state.
    edges: dict[str, set[str]] = {s: set() for s in states}
    for spec in triggers:
        for src in spec.sources:
            edges[src].add(spec.dest)
    seen = {initial}
    queue = deque([initial])
    while queue:
        for nxt in edges[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    for sname in states:
        with _collecting(problems):
            _check_reached(sname, seen, states, edges, initial, source)
    if not any(s.final for s in states.values()):
        problems.append(_fail(source, "states", "no state is marked final = true"))
    if problems:
        raise _all_problems(source, problems)
    workflow = Workflow(
        name=name,
        version=version,
        title=wf_titles["en"],
        titles=wf_titles,
        initial=initial,
        states=states,
        triggers=triggers,
        fields=fields,
        ladder=ladder,
        source=source,
        kinds=kinds,
        kind_aliases=dict(kind_aliases),
        default_kind=default_kind,
        priorities=priorities,
        default_priority=default_priority,
        queues=queues,
        uses=uses,
        report=report,
        _by_source=by_source,
    )
    workflow.machine = _compile(workflow)
    return workflow


def _check_reached(
    sname: str,
    seen: set[str],
    states: dict[str, StateSpec],
    edges: dict[str, set[str]],
    initial: str,
    source: str,
) -> None:
    if sname not in seen:
        raise _fail(source, f"state {sname!r}", f"unreachable from the initial state {initial!r}")
    if not states[sname].final and not (edges[sname] - {sname}):
        raise _fail(source, f"state {sname!r}", "is not final and has no trigger leading out")


@contextlib.contextmanager
def _collecting(problems: list[WorkflowDefinitionError]) -> Iterator[None]:
    """Record a problem of one item and go on to the next, so a file's every problem is named."""
    try:
        yield
    except WorkflowDefinitionError as exc:
        problems.append(exc)


def _all_problems(source: str, problems: list[WorkflowDefinitionError]) -> WorkflowDefinitionError:
    if len(problems) == 1:
        return problems[0]
    return WorkflowDefinitionError(
        f"{source}: {len(problems)} problems:\n" + "\n".join(p.message for p in problems),
        details={
            "file": source,
            "problems": [dict(p.details or {}, message=p.message) for p in problems],
        },
    )


def _one_limit(value: Any, source: str, item: str, where: str) -> TimeLimit:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in TIME_UNITS:
        raise _fail(
            source, item, f"{where} takes exactly one of {', '.join(TIME_UNITS)}, got {value!r}"
        )
    unit, amount = next(iter(value.items()))
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise _fail(source, item, f"{where}.{unit} must be a whole number >= 0")
    return TimeLimit(amount=amount, unit=unit)


def _parse_limits(
    value: Any, priorities: tuple[str, ...], source: str, item: str, where: str = "time_limit"
) -> tuple[TimeLimit | None, tuple[tuple[str, TimeLimit], ...]]:
    """``{ working_days = 2 }``, or per priority ``{ urgent = { hours = 4 }, default = {...} }``
    (a state's ``time_limit``, a ladder step's ``after``: ``where`` names which)."""
    if not value:
        return None, ()
    if not isinstance(value, dict):
        raise _fail(source, item, f"{where} must be a table")
    if set(value) <= set(TIME_UNITS):
        return _one_limit(value, source, item, where), ()
    default: TimeLimit | None = None
    per: list[tuple[str, TimeLimit]] = []
    for key, sub in value.items():
        if key == "default":
            default = _one_limit(sub, source, item, f"{where}.default")
        elif key in priorities:
            per.append((key, _one_limit(sub, source, item, f"{where}.{key}")))
        else:
            raise _fail(
                source,
                item,
                f"{where}: {key!r} is neither a unit ({', '.join(TIME_UNITS)}) nor a "
                f"priority ({', '.join(priorities) or 'the workflow declares none'})",
            )
    return default, tuple(per)


def _parse_queues(raw: Any, states: dict[str, Any], source: str) -> tuple[QueueSpec, ...]:
    if not isinstance(raw, list):
        raise _fail(source, "queues", "must be a list of [[queues]] tables")
    out: list[QueueSpec] = []
    for index, q in enumerate(raw, start=1):
        if not isinstance(q, dict):
            raise _fail(source, f"queue #{index}", "must be a table")
        qname = _require(q, "name", str, source, f"queue #{index}")
        item = f"queue {qname!r}"
        if any(o.name == qname for o in out):
            raise _fail(source, item, "is declared twice")
        qstates = _str_list(_require(q, "states", list, source, item), source, item, "states")
        for st in qstates:
            if st not in states:
                raise _fail(source, item, f"unknown state {st!r}; states are {', '.join(states)}")
        scope = q.get("scope", "all")
        if scope not in ("all", "unit"):
            raise _fail(source, item, f"scope must be 'all' or 'unit', got {scope!r}")
        titles = _titles(q, source, item)
        out.append(
            QueueSpec(
                name=qname,
                title=titles["en"],
                states=qstates,
                permission=_require(q, "permission", str, source, item),
                scope=scope,
                titles=titles,
            )
        )
    return tuple(out)


def _parse_uses(
    raw: Any, by_source: dict[tuple[str, str], TriggerSpec], source: str
) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _fail(source, "uses", "must be a table of purpose = trigger")
    names = {t for t, _ in by_source}
    out: dict[str, str] = {}
    for purpose, trigger in raw.items():
        if not isinstance(trigger, str) or trigger not in names:
            raise _fail(source, f"uses.{purpose}", f"{trigger!r} is not a trigger of this workflow")
        out[purpose] = trigger
    return out


def _parse_report(
    raw: Any,
    states: dict[str, StateSpec],
    triggers: list[TriggerSpec],
    fields: dict[str, FieldSpec],
    source: str,
) -> ReportSpec:
    if not isinstance(raw, dict):
        raise _fail(source, "report", "must be a table")
    closed = _str_list(raw.get("closed", []), source, "report.closed", "closed")
    for st in closed:
        if st not in states:
            raise _fail(source, "report.closed", f"unknown state {st!r}")
    effect = raw.get("feedback_effect")
    if effect is not None and not any(effect in t.effects for t in triggers):
        raise _fail(source, "report.feedback_effect", f"no trigger has the effect {effect!r}")
    sat = raw.get("satisfaction_field")
    if sat is not None and (sat not in fields or fields[sat].type != "choice"):
        raise _fail(source, "report.satisfaction_field", f"{sat!r} is not a choice field")
    names = {t.name for t in triggers}
    on_time: dict[str, str] = {}
    figure_titles: dict[str, dict[str, str]] = {}
    raw_on_time = raw.get("on_time", {})
    if not isinstance(raw_on_time, dict):
        raise _fail(source, "report.on_time", "must be a table of figures")
    for figure, spec in raw_on_time.items():
        item = f"report.on_time.{figure}"
        if not isinstance(spec, dict):
            raise _fail(
                source,
                item,
                'must be a table: trigger = "...", title = { zh_CN = "...", en = "..." }',
            )
        trigger = spec.get("trigger")
        if not isinstance(trigger, str) or trigger not in names:
            raise _fail(source, item, f"trigger {trigger!r} is not a trigger of this workflow")
        on_time[figure] = trigger
        figure_titles[figure] = _titles(spec, source, item)
    returned = _str_list(raw.get("returned", []), source, "report.returned", "returned")
    unknown = [t for t in returned if t not in names]
    if unknown:
        raise _fail(source, "report.returned", f"unknown trigger(s) {', '.join(unknown)}")
    return ReportSpec(
        closed=closed,
        feedback_effect=effect,
        satisfaction_field=sat,
        on_time=tuple(on_time.items()),
        returned=returned,
        figure_titles=figure_titles,
    )


def _parse_ladder(
    data: dict[str, Any],
    priorities: tuple[str, ...],
    source: str,
    problems: list[WorkflowDefinitionError],
) -> Ladder:
    """The ladder; each step's problem is named (``ladder step #N``) and the next is read.

    A step says when it fires after the due time as ``after`` in the shape of a state's
    ``time_limit`` (``{ working_days = N }``, ``{ calendar_days = N }``, ``{ hours = N }``,
    or one per priority with ``default``); ``after_working_days = N`` is the older spelling
    of ``after = { working_days = N }``.
    """
    if not isinstance(data, dict):
        raise _fail(source, "ladder", "must be a table")
    warning = data.get("warning_before_hours", 24)
    if not isinstance(warning, int) or isinstance(warning, bool) or warning < 0:
        problems.append(_fail(source, "ladder", "warning_before_hours must be a whole number >= 0"))
        warning = 24
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list):
        raise _fail(source, "ladder", "steps must be a list of tables")
    steps: list[LadderStep] = []
    for i, step in enumerate(raw_steps, start=1):
        with _collecting(problems):
            steps.append(_parse_ladder_step(step, i, steps, priorities, source))
    return Ladder(warning_before_hours=warning, steps=tuple(steps))


def _parse_ladder_step(
    step: Any, i: int, before: list[LadderStep], priorities: tuple[str, ...], source: str
) -> LadderStep:
    item = f"ladder step #{i}"
    if not isinstance(step, dict):
        raise _fail(source, item, "must be a table")
    level = _require(step, "level", int, source, item)
    if level != i:
        raise _fail(source, item, f"levels must count up from 1; expected {i}, got {level}")
    unknown = sorted(set(step) - {"level", "after", "after_working_days", "notify"})
    if unknown:
        raise _fail(
            source, item, f"{', '.join(unknown)}: not a ladder step setting (level, after, notify)"
        )
    if "after" in step and "after_working_days" in step:
        raise _fail(source, item, "give after or after_working_days, not both")
    if "after_working_days" in step:
        raw: Any = {"working_days": step["after_working_days"]}
        where = "after_working_days"
    elif "after" in step:
        raw, where = step["after"], "after"
    else:
        raise _fail(
            source,
            item,
            "missing after: when the step fires after the due time, e.g. "
            "after = { working_days = 2 }, { calendar_days = 3 } or { hours = 4 }",
        )
    if where == "after_working_days":
        amount = step["after_working_days"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise _fail(source, item, "after_working_days must be a whole number >= 0")
    if raw == {} or raw is None:
        raise _fail(source, item, f"{where} is empty; give one of {', '.join(TIME_UNITS)}")
    default, per = _parse_limits(raw, priorities, source, item, "after")
    if per and default is None:
        missing = [p for p in priorities if p not in dict(per)]
        if missing:
            raise _fail(source, item, f"after: no default for priority {', '.join(missing)}")
    notify = _str_list(step.get("notify", []), source, item, "notify")
    current = LadderStep(level=level, after=default, notify=notify, priority_after=per)
    if before:
        prior = before[-1]
        for priority in (None, *priorities):
            a, b = prior.after_for(priority), current.after_for(priority)
            if a.unit == b.unit and b.amount < a.amount:
                raise _fail(
                    source,
                    item,
                    f"after must not decrease along the ladder ({b.describe()} after "
                    f"step #{prior.level}'s {a.describe()})",
                )
    return current


def _compile(workflow: Workflow) -> Machine:
    machine = Machine(
        model=None,
        states=list(workflow.states),
        initial=workflow.initial,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    for spec in workflow.triggers:
        machine.add_transition(spec.name, list(spec.sources), spec.dest)
    return machine


def read_toml_file(
    path: Path, error: type[EngineError] = WorkflowDefinitionError
) -> dict[str, Any]:
    """A TOML file as a dict; refused (naming the file) when unreadable, too large, not UTF-8."""
    source = str(path)

    def fail(problem: str) -> Exception:
        return error(f"{source}: file: {problem}", details={"file": source, "item": "file"})

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail(f"is {size} bytes; at most {MAX_FILE_BYTES} are accepted")
        raw = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 (byte {exc.start}); save it as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML: {exc}") from exc


def load_workflow_file(path: Path) -> Workflow:
    """Read, validate and compile one definition file."""
    return parse_workflow(read_toml_file(path), str(path))


class WorkflowRegistry:
    """Every definition found in a directory, by name and version."""

    def __init__(self, workflows: list[Workflow]) -> None:
        self._by_key: dict[tuple[str, int], Workflow] = {}
        for wf in workflows:
            key = (wf.name, wf.version)
            if key in self._by_key:
                raise WorkflowDefinitionError(
                    f"{wf.source}: workflow: {wf.key} is also defined in {self._by_key[key].source}"
                )
            self._by_key[key] = wf

    @classmethod
    def from_directory(cls, directory: Path | str = DEFAULT_WORKFLOWS_DIR) -> WorkflowRegistry:
        path = Path(directory)
        return cls([load_workflow_file(p) for p in sorted(path.glob("*.toml"))])

    def get(self, name: str, version: int | None = None) -> Workflow:
        """The definition ``name`` at ``version`` (the latest when ``version`` is None)."""
        if version is None:
            versions = [v for (n, v) in self._by_key if n == name]
            if not versions:
                raise NotFound(
                    f"no workflow named {name!r}; known: {', '.join(self.names()) or 'none'}"
                )
            version = max(versions)
        try:
            return self._by_key[(name, version)]
        except KeyError:
            raise NotFound(f"no workflow {name!r} version {version}") from None

    def names(self) -> list[str]:
        return sorted({n for n, _ in self._by_key})

    def all(self) -> list[Workflow]:
        return [self._by_key[k] for k in sorted(self._by_key)]


@lru_cache(maxsize=8)
def default_registry(directory: str = str(DEFAULT_WORKFLOWS_DIR)) -> WorkflowRegistry:
    """The registry of a directory, built once per process."""
    return WorkflowRegistry.from_directory(directory)


__all__ = [
    "MAX_FILE_BYTES",
    "QueueSpec",
    "ReportSpec",
    "TimeLimit",
    "read_toml_file",
    "FieldSpec",
    "Ladder",
    "LadderStep",
    "StateSpec",
    "TriggerSpec",
    "Workflow",
    "WorkflowRegistry",
    "default_registry",
    "load_workflow_file",
    "parse_workflow",
]
