"""Pure helpers: display names, tokens and the step status mapping (no AWS, no Airflow)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from airflow_provider_smpipe.executions import (
    ExecutionSnapshot,
    RunKey,
    StepPhase,
    classify_step,
    client_request_token,
    display_name_prefix,
    execution_display_name,
    find_step,
    parse_generation,
    retry_token,
)

DISPLAY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")
KEY = RunKey("my_dag", "manual__2026-11-22T10:00:00+00:00", "train_group")


@pytest.mark.parametrize(
    "run_id",
    [
        "manual__2026-11-22T10:00:00+00:00",
        "scheduled__2026-01-01T00:00:00+00:00",
        "__weird__",
        "x" * 250,
        "ünïcode run/with.dots",
        "",
    ],
)
def test_display_names_are_valid_readable_and_parse_back(run_id: str) -> None:
    key = RunKey("dag", run_id, "group")
    for generation in (0, 1, 17, 999_999):
        name = execution_display_name(key, generation)
        assert DISPLAY_NAME.match(name), name
        assert len(name) <= 82
        assert parse_generation(name, key) == generation
    if run_id.startswith("manual"):
        assert execution_display_name(key, 0).startswith("manual-2026-11-22T10-00-00")


def test_display_name_example_shape() -> None:
    name = execution_display_name(KEY, 0)
    assert re.fullmatch(r"manual-2026-11-22T10-00-00-00-00-[0-9a-f]{8}-g0", name), name


def test_display_names_are_unique_per_key() -> None:
    other_group = RunKey(KEY.dag_id, KEY.run_id, "other_group")
    other_dag = RunKey("other_dag", KEY.run_id, KEY.group_id)
    prefixes = {display_name_prefix(k) for k in (KEY, other_group, other_dag)}
    assert len(prefixes) == 3
    assert parse_generation(execution_display_name(other_group, 3), KEY) is None
    assert parse_generation("manual-2026-something-else", KEY) is None
    assert parse_generation(display_name_prefix(KEY) + "x1", KEY) is None
    assert parse_generation(None, KEY) is None


def test_generation_out_of_range() -> None:
    with pytest.raises(ValueError, match="generation"):
        execution_display_name(KEY, -1)


def test_tokens_are_deterministic_and_distinct() -> None:
    token = client_request_token(KEY, 0)
    assert token == client_request_token(RunKey(*("my_dag", KEY.run_id, "train_group")), 0)
    assert 32 <= len(token) <= 128
    assert re.fullmatch(r"[0-9a-f]+", token)
    assert token != client_request_token(KEY, 1)
    assert token != client_request_token(RunKey("my_dag", KEY.run_id, "other"), 0)
    # No ambiguity from joining ids: ("a_b", "c") and ("a", "b_c") differ.
    assert client_request_token(RunKey("a", "b", "c"), 0) != client_request_token(RunKey("a", "b\0c", ""), 0)
    r1 = retry_token("arn:1", "2026-01-01T00:00:00")
    assert r1 == retry_token("arn:1", "2026-01-01T00:00:00")
    assert r1 != retry_token("arn:1", "2026-01-01T00:00:01")
    assert 32 <= len(r1) <= 128


def _step(status: str, **extra: object) -> dict[str, object]:
    return {"StepName": "prep", "StepStatus": status, **extra}


@pytest.mark.parametrize(
    ("step", "execution", "phase", "reason_part"),
    [
        (None, "Executing", StepPhase.WAITING, None),
        (None, "Stopping", StepPhase.WAITING, None),
        (None, "Succeeded", StepPhase.SKIPPED, "condition branch not taken"),
        (None, "Failed", StepPhase.SKIPPED, "failed before this step started: boom"),
        (None, "Stopped", StepPhase.SKIPPED, "stopped before this step started"),
        (_step("Starting"), "Executing", StepPhase.RUNNING, None),
        (_step("Executing"), "Executing", StepPhase.RUNNING, None),
        (_step("Stopping"), "Stopping", StepPhase.RUNNING, None),
        (_step("Executing"), "Stopped", StepPhase.STOPPED, "stopped"),
        (_step("Executing"), "Failed", StepPhase.FAILED, "boom"),
        (_step("Succeeded"), "Executing", StepPhase.SUCCEEDED, None),
        (_step("Succeeded"), "Failed", StepPhase.SUCCEEDED, None),
        (_step("Failed", FailureReason="ClientError: bad input"), "Failed", StepPhase.FAILED, "bad input"),
        (_step("Failed", Metadata={"Fail": {"ErrorMessage": "mse high"}}), "Failed", StepPhase.FAILED, "mse"),
        (_step("Failed"), "Executing", StepPhase.FAILED, "boom"),
        (_step("Stopped"), "Stopped", StepPhase.STOPPED, "stopped"),
    ],
)
def test_classify_step(
    step: dict[str, object] | None, execution: str, phase: StepPhase, reason_part: str | None
) -> None:
    state = classify_step(step, execution, execution_failure_reason="boom")
    assert state.phase == phase
    if reason_part is None:
        assert state.reason is None
    else:
        assert state.reason is not None
        assert reason_part in state.reason
    assert state.terminal == (phase not in (StepPhase.WAITING, StepPhase.RUNNING))


def test_failed_without_any_reason() -> None:
    state = classify_step(_step("Failed"), "Failed")
    assert state.phase == StepPhase.FAILED
    assert state.reason


def test_cache_hit_and_condition_outcome_noted() -> None:
    state = classify_step(
        _step(
            "Succeeded",
            CacheHitResult={"SourcePipelineExecutionArn": "arn:old"},
            Metadata={"Condition": {"Outcome": "False"}},
            AttemptCount=2,
        ),
        "Executing",
    )
    assert state.phase == StepPhase.SUCCEEDED
    assert state.cache_hit
    assert state.cache_source_arn == "arn:old"
    assert state.condition_outcome == "False"
    assert state.attempt_count == 2
    assert "Succeeded" in state.describe()


def test_find_step_takes_the_latest_attempt() -> None:
    old = _step("Failed", StartTime=datetime(2026, 1, 1, tzinfo=UTC))
    new = _step("Executing", StartTime=datetime(2026, 1, 2, tzinfo=UTC))
    other = {"StepName": "train", "StepStatus": "Succeeded"}
    assert find_step([old, new, other], "prep") is new
    assert find_step([new, old], "prep") is new
    assert find_step([other], "prep") is None
    snapshot = ExecutionSnapshot(execution={"PipelineExecutionStatus": "Executing"}, steps=[old, new])
    assert snapshot.classify("prep").phase == StepPhase.RUNNING
    assert snapshot.classify("absent").phase == StepPhase.WAITING
