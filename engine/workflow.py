"""Workflow definitions as data, validated on load and compiled once.

A definition file (TOML, in ``workflows/``) names states, triggers, who may fire
them, the data they require, guards and per-state time limits. Loading checks
the file and names the file and item of every mistake. Each (name, version)
compiles once into a shared ``transitions`` machine with no model attached;
tickets are driven through it by firing ``machine.events[name].trigger(token)``
on a light object, so memory does not grow with the number of tickets.
"""

from __future__ import annotations

import tomllib
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from transitions import Machine, MachineError

from engine.effects import check_effect
from engine.errors import InvalidTransition, NotFound, WorkflowDefinitionError
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


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: str
    final: bool = False
    time_limit_working_days: int | None = None
    time_limit_hours: int | None = None
    # False: the campaign's rectification deadline does not cap this state's limit.
    campaign_cap: bool = True
    titles: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title)


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
    titles: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title or self.name)


@dataclass(frozen=True)
class LadderStep:
    level: int
    after_working_days: int
    notify: tuple[str, ...]


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
    machine: Machine = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    _by_source: dict[tuple[str, str], TriggerSpec] = field(default_factory=dict, repr=False)
    titles: dict[str, str] = field(default_factory=dict, compare=False)

    def title_in(self, locale: str) -> str:
        return pick(self.titles, locale, self.title)

    def state_title(self, state: str | None, locale: str) -> str:
        """A state's title in ``locale``; an unknown state shows as it is."""
        spec = self.states.get(state or "")
        return spec.title_in(locale) if spec else (state or "")

    def trigger_title(self, trigger: str, locale: str) -> str:
        """The title of the first spec named ``trigger`` (sources share a meaning)."""
        for spec in self.triggers:
            if spec.name == trigger:
                return spec.title_in(locale)
        return trigger

    @property
    def key(self) -> str:
        return f"{self.name}/v{self.version}"

    @property
    def final_states(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states.values() if s.final)

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
                        "after_working_days": s.after_working_days,
                        "notify": list(s.notify),
                    }
                    for s in self.ladder.steps
                ],
            },
        }


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

    states: dict[str, StateSpec] = {}
    for sname, sdata in raw_states.items():
        item = f"state {sname!r}"
        if not isinstance(sdata, dict):
            raise _fail(source, item, "must be a table")
        limit = sdata.get("time_limit") or {}
        if not isinstance(limit, dict) or set(limit) - {"working_days", "hours"}:
            raise _fail(source, item, "time_limit takes working_days or hours")
        for k, v in limit.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise _fail(source, item, f"time_limit.{k} must be a whole number >= 0")
        titles = _titles(sdata, source, item)
        states[sname] = StateSpec(
            name=sname,
            title=titles["en"],
            titles=titles,
            final=bool(sdata.get("final", False)),
            time_limit_working_days=limit.get("working_days"),
            time_limit_hours=limit.get("hours"),
            campaign_cap=_flag(sdata, "campaign_cap", True, source, item),
        )
    if initial not in states:
        raise _fail(
            source, "workflow", f"initial state {initial!r} is not a state ({', '.join(states)})"
        )

    fields: dict[str, FieldSpec] = {}
    for fname, fdata in (data.get("fields") or {}).items():
        item = f"field {fname!r}"
        if not isinstance(fdata, dict):
            raise _fail(source, item, "must be a table")
        ftype = _require(fdata, "type", str, source, item)
        if ftype not in FIELD_TYPES:
            raise _fail(
                source, item, f"unknown type {ftype!r}; use one of {', '.join(sorted(FIELD_TYPES))}"
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
            if state not in states:
                raise _fail(
                    source, item, f"unknown state {state!r}; states are {', '.join(states)}"
                )
        if not roles:
            raise _fail(source, item, "roles is empty; name the roles that may fire it")
        titles = _titles(tdata, source, item)
        requires = _str_list(tdata.get("requires", []), source, item, "requires")
        optional = _str_list(tdata.get("optional", []), source, item, "optional")
        for fname in (*requires, *optional):
            if fname not in fields:
                raise _fail(source, item, f"unknown field {fname!r}; define it under [fields]")
        guards = _str_list(tdata.get("guards", []), source, item, "guards")
        for guard in guards:
            if guard not in GUARDS:
                raise _fail(
                    source, item, f"unknown guard {guard!r}; guards are {', '.join(sorted(GUARDS))}"
                )
        effects = _str_list(tdata.get("effects", []), source, item, "effects")
        for effect_name in effects:
            problem = check_effect(effect_name, (*requires, *optional))
            if problem:
                raise _fail(source, item, problem)
        spec = TriggerSpec(
            name=tname,
            sources=sources,
            dest=dest,
            roles=frozenset(roles),
            requires=requires,
            optional=optional,
            guards=guards,
            effects=effects,
            title=titles["en"],
            titles=titles,
        )
        for src in sources:
            if (tname, src) in by_source:
                raise _fail(source, item, f"duplicate trigger {tname!r} from state {src!r}")
            by_source[(tname, src)] = spec
        triggers.append(spec)

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
        if sname not in seen:
            raise _fail(
                source, f"state {sname!r}", f"unreachable from the initial state {initial!r}"
            )
        if not states[sname].final and not (edges[sname] - {sname}):
            raise _fail(source, f"state {sname!r}", "is not final and has no trigger leading out")
    if not any(s.final for s in states.values()):
        raise _fail(source, "states", "no state is marked final = true")

    ladder = _parse_ladder(data.get("ladder") or {}, source)
    titles = _titles(data, source, "workflow")
    workflow = Workflow(
        name=name,
        version=version,
        title=titles["en"],
        titles=titles,
        initial=initial,
        states=states,
        triggers=triggers,
        fields=fields,
        ladder=ladder,
        source=source,
        _by_source=by_source,
    )
    workflow.machine = _compile(workflow)
    return workflow


def _parse_ladder(data: dict[str, Any], source: str) -> Ladder:
    if not isinstance(data, dict):
        raise _fail(source, "ladder", "must be a table")
    warning = data.get("warning_before_hours", 24)
    if not isinstance(warning, int) or warning < 0:
        raise _fail(source, "ladder", "warning_before_hours must be a whole number >= 0")
    steps: list[LadderStep] = []
    for i, step in enumerate(data.get("steps", []), start=1):
        item = f"ladder step #{i}"
        if not isinstance(step, dict):
            raise _fail(source, item, "must be a table")
        level = _require(step, "level", int, source, item)
        after = _require(step, "after_working_days", int, source, item)
        notify = _str_list(step.get("notify", []), source, item, "notify")
        if level != i:
            raise _fail(source, item, f"levels must count up from 1; expected {i}, got {level}")
        if steps and after < steps[-1].after_working_days:
            raise _fail(source, item, "after_working_days must not decrease along the ladder")
        steps.append(LadderStep(level=level, after_working_days=after, notify=notify))
    return Ladder(warning_before_hours=warning, steps=tuple(steps))


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


def load_workflow_file(path: Path) -> Workflow:
    """Read, validate and compile one definition file."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, "file", f"not valid TOML: {exc}") from exc
    except OSError as exc:
        raise _fail(source, "file", f"cannot be read: {exc.strerror}") from exc
    return parse_workflow(data, source)


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
