"""Bad tuning steps fail at DAG parse time with an error naming the task and the field."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import CODE, IMAGE, ROLE
from request_shapes import request_problems

from airflow_provider_smpipe import (
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTuningStepOperator,
)
from airflow_provider_smpipe.exceptions import PipelineDefinitionError

START = pendulum.datetime(2026, 1, 1)
REGEX = r"auc=([0-9.]+)"


def tuning(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "task_id": "tune",
        "image_uri": IMAGE,
        "entry_point": "train.py",
        "source_dir": str(CODE / "train_src"),
        "hyperparameter_ranges": {"lr": ContinuousRange(0.01, 0.1)},
        "objective_metric_name": "auc",
        "objective_metric_regex": REGEX,
        "strategy": "Random",
        "max_jobs": 4,
    }
    kwargs.update(overrides)
    return kwargs


def _error(**overrides: Any) -> str:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            SageMakerTuningStepOperator(**tuning(**overrides))
    return str(error.value)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"hyperparameter_ranges": {}}, "hyperparameter_ranges", "at least one range"),
        ({"hyperparameter_ranges": {"lr": (0.1, 0.2)}}, "hyperparameter_ranges['lr']", "ContinuousRange"),
        (
            {"hyperparameter_ranges": {"lr": ContinuousRange(0.5, 0.1)}},
            "hyperparameter_ranges['lr']",
            "min_value 0.5 is above max_value 0.1",
        ),
        (
            {"hyperparameter_ranges": {"depth": IntegerRange(8, 2)}},
            "hyperparameter_ranges['depth']",
            "above max_value",
        ),
        (
            {"hyperparameter_ranges": {"depth": IntegerRange(1.5, 4)}},
            "hyperparameter_ranges['depth']",
            "whole number",
        ),
        (
            {"hyperparameter_ranges": {"lr": ContinuousRange(0, 1, scaling="Logarithmic")}},
            "hyperparameter_ranges['lr']",
            "above 0",
        ),
        (
            {"hyperparameter_ranges": {"lr": ContinuousRange(0.1, 1.0, scaling="ReverseLogarithmic")}},
            "hyperparameter_ranges['lr']",
            "[0, 1)",
        ),
        (
            {"hyperparameter_ranges": {"depth": IntegerRange(1, 4, scaling="ReverseLogarithmic")}},
            "hyperparameter_ranges['depth']",
            "scaling",
        ),
        (
            {"hyperparameter_ranges": {"kind": CategoricalRange([])}},
            "hyperparameter_ranges['kind']",
            "1 to 30",
        ),
        (
            {"hyperparameter_ranges": {"kind": CategoricalRange(["a", "a"])}},
            "hyperparameter_ranges['kind']",
            "more than once",
        ),
        (
            {"hyperparameter_ranges": {f"p{i}": CategoricalRange(["a"]) for i in range(31)}},
            "hyperparameter_ranges",
            "at most 30",
        ),
        ({"objective_metric_regex": None}, "objective_metric_regex", "has no regex"),
        ({"objective_metric_regex": "auc=[0-9.]+"}, "objective_metric_regex", "group around the value"),
        ({"objective_metric_regex": "auc=(["}, "objective_metric_regex", "not valid"),
        ({"objective_metric_name": ""}, "objective_metric_name", "required"),
        (
            {"metric_definitions": [{"Name": "auc", "Regex": REGEX}]},
            "objective_metric_regex",
            "already defines",
        ),
        ({"metric_definitions": [{"name": "loss"}]}, "metric_definitions[0]", "'Name'"),
        ({"strategy": "Genetic"}, "strategy", "not one of"),
        ({"objective_type": "Maximise"}, "objective_type", "not one of"),
        ({"early_stopping": "On"}, "early_stopping", "not one of"),
        ({"strategy": "Hyperband", "early_stopping": "Auto"}, "early_stopping", "Hyperband"),
        (
            {"strategy": "Grid", "max_jobs": None},
            "hyperparameter_ranges",
            "categorical ranges only",
        ),
        (
            {
                "strategy": "Grid",
                "hyperparameter_ranges": {
                    "a": CategoricalRange([1, 2]),
                    "b": CategoricalRange(["x", "y", "z"]),
                },
                "max_jobs": 5,
            },
            "max_jobs",
            "6 here",
        ),
        ({"max_jobs": 0}, "max_jobs", "at least 1"),
        ({"max_parallel_jobs": 5}, "max_parallel_jobs", "more than the 4"),
        ({"max_jobs": None, "max_parallel_jobs": 2}, "max_parallel_jobs", "more than the 1"),
        ({"random_seed": -1}, "random_seed", "at least 0"),
    ],
)
def test_bad_tuning_arguments(overrides: dict[str, Any], field: str, fragment: str) -> None:
    message = _error(**overrides)
    assert f"task 'ml.tune' field '{field}'" in message or f"task 'ml.tune' field \"{field}\"" in message, (
        message
    )
    assert fragment in message, message


def test_grid_of_categorical_ranges_is_accepted() -> None:
    with DAG("ok", start_date=START, schedule=None), SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
        tune = SageMakerTuningStepOperator(
            **tuning(
                strategy="Grid",
                max_jobs=6,
                max_parallel_jobs=6,
                hyperparameter_ranges={"a": CategoricalRange([1, 2]), "b": CategoricalRange(["x", "y", "z"])},
            )
        )
    assert tune.resolved_max_jobs() == 6


def test_top_model_artifacts_out_of_range() -> None:
    with DAG("bad", start_date=START, schedule=None), SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
        tune = SageMakerTuningStepOperator(**tuning())
        with pytest.raises(PipelineDefinitionError, match=r"top_model_artifacts\(4\).*0 \(the best\) to 3"):
            tune.top_model_artifacts(4)
        assert tune.top_model_artifacts(3).rank == 3
        SageMakerProcessingStepOperator(
            task_id="use", image_uri=IMAGE, entrypoint=["true"], arguments=[tune.top_model_artifacts(3)]
        )


def test_undeclared_parameter_in_a_range_is_refused_when_the_group_closes() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE) as group:
            SageMakerTuningStepOperator(
                **tuning(hyperparameter_ranges={"lr": ContinuousRange(group.parameter("MinLr"), 0.1)})
            )
    message = str(error.value)
    assert "task 'ml.tune' field \"hyperparameter_ranges['lr'][0]\"" in message
    assert "'MinLr'" in message


def test_request_shape_check_finds_problems() -> None:
    """The helper the golden tests rely on does catch a bad request."""
    problems = request_problems(
        "CreateHyperParameterTuningJob",
        {
            "HyperParameterTuningJobConfig": {
                "Strategy": "Genetic",
                "ResourceLimits": {"MaxParallelTrainingJobs": 0},
                "Bogus": 1,
            },
        },
        {"HyperParameterTuningJobName"},
    )
    assert any("Strategy" in p and "not one of" in p for p in problems)
    assert any("MaxParallelTrainingJobs" in p for p in problems)
    assert any("unknown member Bogus" in p for p in problems)
