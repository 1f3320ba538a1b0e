"""Pure pieces: expressions, conditions, parameters, job names and the response validator."""

from __future__ import annotations

import re
from typing import Any

import pytest
from smpipe_local_helpers import FIXTURES

from airflow_provider_smpipe.local.definition import parse_definition, resolve_parameters
from airflow_provider_smpipe.local.errors import ApiError
from airflow_provider_smpipe.local.executor import job_name
from airflow_provider_smpipe.local.expressions import (
    EvalContext,
    ExpressionError,
    evaluate,
    evaluate_condition,
    parse_path,
)
from airflow_provider_smpipe.local.validation import validate_output

JOB = {
    "ProcessingOutputConfig": {
        "Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}}],
    },
    "ProcessingJobStatus": "Completed",
}


def _ctx(**parameters: Any) -> EvalContext:
    return EvalContext(
        parameters=parameters,
        execution={"PipelineExecutionId": "abc123def456"},
        step_properties=lambda name: JOB if name == "prep" else None,
        property_file=lambda step, name: {"metrics": {"acc": [0.5, 0.9]}, "rows": 3},
        read_s3_json=lambda uri: {"x": 1},
    )


def test_parse_path() -> None:
    assert parse_path("Outputs['train'].S3Output.S3Uri") == ["Outputs", "train", "S3Output", "S3Uri"]
    assert parse_path('a[0]["b c"].d') == ["a", 0, "b c", "d"]


def test_evaluate_references_join_and_json_get() -> None:
    ctx = _ctx(Epochs=3, Flag=True, Rate=2.0)
    expr = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Parameters.Epochs"},
                {"Get": "Parameters.Flag"},
                {"Get": "Parameters.Rate"},
            ],
        }
    }
    assert evaluate(expr, ctx) == "s3://b/train/abc123def456/3/true/2"
    get = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.prep.PropertyFiles.stats"}, "Path": "metrics.acc[1]"}
    }
    assert evaluate({"nested": [get]}, ctx) == {"nested": [0.9]}
    with pytest.raises(ExpressionError):
        evaluate({"Get": "Steps.other.ProcessingJobStatus"}, ctx)
    with pytest.raises(ExpressionError):
        evaluate({"Get": "Parameters.Missing"}, ctx)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {
                "Type": "Equals",
                "LeftValue": {"Get": "Steps.prep.ProcessingJobStatus"},
                "RightValue": "Completed",
            },
            True,
        ),
        ({"Type": "GreaterThan", "LeftValue": "10", "RightValue": 9}, 1),
        ({"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Parameters.N"}, "RightValue": 5}, True),
        ({"Type": "LessThan", "LeftValue": 1.5, "RightValue": {"Get": "Parameters.N"}}, True),
        ({"Type": "LessThanOrEqualTo", "LeftValue": 6, "RightValue": {"Get": "Parameters.N"}}, False),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.N"}, "Values": [1, 5]}, True),
        ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 1}}, False),
        ({"Type": "Not", "Expression": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "Equals", "LeftValue": "a", "RightValue": "b"},
                    {"Type": "Equals", "LeftValue": True, "RightValue": "true"},
                ],
            },
            True,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    assert evaluate_condition(condition, _ctx(N=5)) is bool(expected)


def test_sdk_definition_parses_with_branches_and_data_dependencies() -> None:
    pdef = parse_definition((FIXTURES / "pipeline_full.json").read_text())
    assert set(pdef.steps) == {"prep", "check", "train", "too-few-rows", "evaluate"}
    assert pdef.steps["check"].depends_on == {"prep"}
    assert pdef.steps["train"].branch == ("check", True)
    assert pdef.steps["too-few-rows"].branch == ("check", False)
    assert pdef.steps["evaluate"].depends_on == {"train"}
    values = resolve_parameters(
        pdef, [{"Name": "MinQuality", "Value": "0.25"}, {"Name": "Epochs", "Value": "4"}]
    )
    assert values == {
        "InputUri": "s3://smpipe-fixtures/data/raw",
        "MinRows": 2,
        "MinQuality": 0.25,
        "Epochs": 4,
    }
    with pytest.raises(ApiError):
        resolve_parameters(pdef, [{"Name": "MinRows", "Value": "many"}])


def test_job_names_fit_sagemaker_limits() -> None:
    name = job_name("abcdefabcdef", "my_very.long step name that goes on and on and on and on")
    assert len(name) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)
    assert name.startswith("pipelines-abcdefabcdef-my-very-long-step")


def test_validator_reports_drift() -> None:
    good = {"PipelineExecutionArn": "arn:x", "PipelineExecutionStatus": "Executing", "CreationTime": 1.0}
    assert validate_output("sagemaker", "DescribePipelineExecution", good) == []
    bad = {
        "PipelineExecutionStatus": "Running",
        "Bogus": 1,
        "CreationTime": "x",
        "ParallelismConfiguration": {},
    }
    problems = validate_output("sagemaker", "DescribePipelineExecution", bad)
    assert any("not one of" in p for p in problems)
    assert any("unknown member Bogus" in p for p in problems)
    assert any("missing required member MaxParallelExecutionSteps" in p for p in problems)
    steps = {"PipelineExecutionSteps": [{"StepName": "a", "AttemptCount": "1"}]}
    assert validate_output("sagemaker", "ListPipelineExecutionSteps", steps) == [
        "ListPipelineExecutionSteps.PipelineExecutionSteps[0].AttemptCount: expected an integer, got '1'"
    ]
