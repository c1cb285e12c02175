"""Workflow definitions: the built-in one loads and compiles; every kind of bad file is refused by name."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from engine.context import check_workflow_roles
from engine.errors import ConfigError, InvalidTransition, NotFound, WorkflowDefinitionError
from engine.policy import load_policy_file
from engine.workflow import (
    DEFAULT_WORKFLOWS_DIR,
    WorkflowRegistry,
    default_registry,
    load_workflow_file,
    parse_workflow,
)

BUILTIN = DEFAULT_WORKFLOWS_DIR / "consultation-v1.toml"
T = {"zh_CN": "标题", "en": "Title"}


@pytest.fixture
def definition() -> dict:
    with BUILTIN.open("rb") as handle:
        return tomllib.load(handle)


def test_builtin_consultation_workflow_matches_the_design() -> None:
    wf = load_workflow_file(BUILTIN)
    assert (wf.name, wf.version, wf.initial) == ("consultation", 1, "received")
    assert wf.final_states == {"fed_back"}
    path = [
        ("received", "categorize"),
        ("categorized", "assign"),
        ("assigned", "rectify"),
        ("rectified", "feed_back"),
    ]
    state = "received"
    for expected_from, trigger in path:
        assert state == expected_from
        state = wf.next_state(state, trigger)
    assert state == "fed_back"
    assert wf.next_state("fed_back", "reopen") == "assigned"
    assert wf.next_state("assigned", "reassign") == "assigned"
    assert wf.next_state("categorized", "escalate_to_government") == "escalated"
    assert wf.next_state("assigned", "escalate_to_government") == "escalated"
    assert wf.next_state("escalated", "feed_back") == "fed_back"
    assert wf.next_state("categorized", "feed_back") == "fed_back"


def test_machine_has_no_auto_transitions_and_keeps_no_models() -> None:
    wf = load_workflow_file(BUILTIN)
    assert not any(name.startswith("to_") for name in wf.machine.events)
    for _ in range(1000):
        wf.next_state("received", "categorize")
    assert wf.machine.models == []


def test_trigger_not_allowed_from_state_names_what_is() -> None:
    wf = load_workflow_file(BUILTIN)
    with pytest.raises(InvalidTransition) as err:
        wf.next_state("received", "rectify")
    assert "categorize" in err.value.message
    with pytest.raises(InvalidTransition, match="no trigger 'fly'"):
        wf.next_state("received", "fly")


def test_registry_finds_latest_and_refuses_unknown() -> None:
    reg = default_registry()
    assert reg.get("consultation").version == 1
    with pytest.raises(NotFound, match="no workflow named 'nope'"):
        reg.get("nope")
    with pytest.raises(NotFound, match="version 9"):
        reg.get("consultation", 9)


def _refused(data: dict, *fragments: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as err:
        parse_workflow(data, "workflows/bad.toml")
    message = err.value.message
    assert message.startswith("workflows/bad.toml: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_state_in_a_trigger(definition: dict) -> None:
    definition["triggers"][0]["dest"] = "nowhere"
    _refused(definition, "trigger 'categorize' (#1)", "unknown state 'nowhere'")


def test_unknown_initial_state(definition: dict) -> None:
    definition["initial"] = "start"
    _refused(definition, "initial state 'start' is not a state")


def test_unreachable_state(definition: dict) -> None:
    definition["states"]["limbo"] = {"final": True, "title": T}
    _refused(definition, "state 'limbo'", "unreachable")


def test_non_final_state_without_a_way_out(definition: dict) -> None:
    definition["states"]["parked"] = {"title": T}
    definition["triggers"].append(
        {
            "name": "park",
            "title": T,
            "source": ["assigned"],
            "dest": "parked",
            "roles": ["supervisor"],
        }
    )
    _refused(definition, "state 'parked'", "no trigger leading out")


def test_duplicate_trigger_from_one_source(definition: dict) -> None:
    definition["triggers"].append(copy.deepcopy(definition["triggers"][0]))
    _refused(definition, "duplicate trigger 'categorize' from state 'received'")


def test_unknown_role_is_refused_against_the_policy(definition: dict) -> None:
    """Roles belong to the policy: a workflow naming one the policy lacks is refused when the
    context is built, with the workflow file and the trigger named."""
    definition["triggers"][0]["roles"] = ["janitor"]
    workflow = parse_workflow(definition, "workflows/bad.toml")
    with pytest.raises(ConfigError) as err:
        check_workflow_roles(WorkflowRegistry([workflow]), load_policy_file())
    assert "workflows/bad.toml: trigger 'categorize': unknown role 'janitor'" in err.value.message


def test_unknown_effect(definition: dict) -> None:
    definition["triggers"][0]["effects"] = ["teleport"]
    _refused(definition, "trigger 'categorize' (#1)", "unknown effect 'teleport'")


def test_effect_needs_its_fields(definition: dict) -> None:
    # record_feedback reads method, text and date: a trigger without them cannot name it.
    definition["triggers"][0]["effects"] = ["record_feedback"]
    _refused(definition, "trigger 'categorize' (#1)", "effect 'record_feedback' reads")


def test_unknown_guard(definition: dict) -> None:
    definition["triggers"][0]["guards"] = ["full_moon"]
    _refused(definition, "trigger 'categorize' (#1)", "unknown guard 'full_moon'")


def test_missing_field(definition: dict) -> None:
    del definition["triggers"][1]["dest"]
    _refused(definition, "trigger 'assign' (#2)", "missing field 'dest'")
    definition2 = dict(definition)
    del definition2["version"]
    _refused(definition2, "workflow", "missing field 'version'")


def test_unknown_data_field_and_guard(definition: dict) -> None:
    definition["triggers"][0]["requires"] = ["colour"]
    _refused(definition, "unknown field 'colour'")
    with BUILTIN.open("rb") as handle:
        again = tomllib.load(handle)
    again["triggers"][0]["guards"] = ["moon_is_full"]
    _refused(again, "unknown guard 'moon_is_full'")


def test_version_must_be_a_positive_integer(definition: dict) -> None:
    definition["version"] = "one"
    _refused(definition, "field 'version' must be int")
    definition["version"] = 0
    _refused(definition, "version must be 1 or more")


def test_ladder_levels_count_up(definition: dict) -> None:
    definition["ladder"]["steps"][1]["level"] = 5
    _refused(definition, "ladder step #2", "expected 2")


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "x"\nversion = [\n')
    with pytest.raises(WorkflowDefinitionError, match="broken.toml: file: not valid TOML"):
        load_workflow_file(bad)


def test_two_files_with_the_same_version_are_refused(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_bytes(BUILTIN.read_bytes())
    with pytest.raises(WorkflowDefinitionError, match="also defined in"):
        WorkflowRegistry.from_directory(tmp_path)


def test_a_new_version_lives_beside_the_old(tmp_path: Path, definition: dict) -> None:
    (tmp_path / "v1.toml").write_bytes(BUILTIN.read_bytes())
    text = BUILTIN.read_text().replace("version = 1", "version = 2", 1)
    (tmp_path / "v2.toml").write_text(text)
    reg = WorkflowRegistry.from_directory(tmp_path)
    assert reg.get("consultation").version == 2
    assert reg.get("consultation", 1).version == 1


def test_every_title_carries_both_languages() -> None:
    wf = load_workflow_file(BUILTIN)
    assert wf.state_title("fed_back", "zh_CN") == "已反馈群众"
    assert wf.state_title("fed_back", "en") == "Fed back to the citizen"
    assert wf.trigger_title("escalate_to_government", "zh_CN") == "上报政府"
    assert wf.fields["kind"].choice_title("criticism", "zh_CN") == "批评"
    assert wf.fields["method"].choice_title("visit", "en") == "Visit"
    for spec in (*wf.states.values(), *wf.triggers, *wf.fields.values()):
        assert set(spec.titles) == {"zh_CN", "en"}, spec


def test_a_title_missing_a_language_is_refused(definition: dict) -> None:
    definition["states"]["received"]["title"] = {"en": "Received"}
    _refused(definition, "state 'received'", "title lacks zh_CN")


def test_a_plain_string_title_is_refused(definition: dict) -> None:
    definition["triggers"][0]["title"] = "Categorize"
    _refused(definition, "trigger 'categorize' (#1)", "title must give every language")


def test_a_choice_without_a_title_is_refused(definition: dict) -> None:
    del definition["fields"]["kind"]["choice_titles"]["praise"]
    _refused(definition, "field 'kind'", "choice 'praise' has no title")
    definition["fields"]["kind"]["choice_titles"]["praise"] = {"zh_CN": "表扬", "en": " "}
    _refused(definition, "field 'kind' choice 'praise'", "title lacks en")


def _hotline() -> dict:
    with (BUILTIN.parent / "hotline-v1.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_queue_titles_carry_both_languages(definition: dict) -> None:
    wf = parse_workflow(definition, "wf.toml")
    intake = next(q for q in wf.queues if q.name == "intake")
    assert (intake.title_in("zh_CN"), intake.title_in("en")) == ("待分类", "To categorize")
    plain = copy.deepcopy(definition)
    plain["queues"][0]["title"] = "To categorize"
    _refused(plain, "queue 'intake'", "title must give every language")
    english_only = copy.deepcopy(definition)
    english_only["queues"][1]["title"] = {"en": "Unit queue"}
    _refused(english_only, "queue 'unit'", "title lacks zh_CN")


def test_report_figures_carry_both_languages() -> None:
    data = _hotline()
    wf = parse_workflow(copy.deepcopy(data), "hotline.toml")
    assert dict(wf.report.on_time) == {"signed_for": "sign_for", "handled": "reply"}
    assert wf.report.figure_title("signed_for", "zh_CN") == "签收"
    assert wf.report.figure_title("signed_for", "en") == "Signed for"
    untitled = copy.deepcopy(data)
    del untitled["report"]["on_time"]["handled"]["title"]["zh_CN"]
    _refused(untitled, "report.on_time.handled", "title lacks zh_CN")
    bare = copy.deepcopy(data)
    bare["report"]["on_time"]["handled"] = "reply"
    _refused(bare, "report.on_time.handled", "must be a table")
    unknown = copy.deepcopy(data)
    unknown["report"]["on_time"]["handled"]["trigger"] = "nope"
    _refused(unknown, "report.on_time.handled", "'nope' is not a trigger")
