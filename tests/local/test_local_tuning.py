"""Tuning steps on the local backend: a tuning operator compiled by the SDK, its trials run as training jobs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import tarfile
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import pendulum
import pytest
from airflow.sdk import DAG
from smpipe_local_helpers import BUCKET, FIXTURES, ROLE, create_pipeline, steps_of, unique, wait_for

from airflow_provider_smpipe import (
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTuningStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook
from airflow_provider_smpipe.triggers.step_kinds.base import StepView
from airflow_provider_smpipe.triggers.step_kinds.tuning import TuningStepRuntime

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.local.server import LocalBackend

TUNE_SRC = FIXTURES / "scripts" / "tune_src"
REGEX = r"validation:auc=([0-9.]+)"


def expected_auc(lr: float, depth: int, booster: str) -> float:
    """What tune_src/train.py prints for these hyperparameters."""
    auc = round(0.9 - abs(math.log10(lr) + 1.5) / 10 - abs(depth - 4) / 50, 6)
    return round(auc + 0.01, 6) if booster == "dart" else auc


def _compile(backend: LocalBackend, build: Callable[[SageMakerPipelineTaskGroup], None]) -> str:
    with (
        DAG(unique("tuning"), start_date=pendulum.datetime(2026, 1, 1), schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=unique("tune"), role_arn=ROLE, default_bucket=BUCKET
        ) as group,
    ):
        build(group)
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return compile_definition(build_pipeline_spec(group), session, endpoint_url=backend.endpoint_url)


def _run(sm: Any, definition: str, timeout: float = 180) -> tuple[str, dict[str, Any], dict[str, Any]]:
    name = create_pipeline(sm, definition)
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    return arn, wait_for(sm, arn, timeout=timeout), steps_of(sm, arn)


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _all_trials(sm: Any, tuning_name: str, **kwargs: Any) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning_name,
            MaxResults=2,
            **({"NextToken": token} if token else {}),
            **kwargs,
        )
        trials.extend(page["TrainingJobSummaries"])
        token = page.get("NextToken")
        if not token:
            return trials


def _most_at_once(jobs: list[dict[str, Any]]) -> int:
    events = sorted(
        [(j["TrainingStartTime"].timestamp(), 1) for j in jobs]
        + [(j["TrainingEndTime"].timestamp(), -1) for j in jobs]
    )
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_random_search_picks_the_best_trial_and_feeds_later_steps(
    backend: LocalBackend, sm: Any, s3: Any
) -> None:
    def build(group: SageMakerPipelineTaskGroup) -> None:
        tune = SageMakerTuningStepOperator(
            task_id="tune",
            image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.4",
            entry_point="train.py",
            source_dir=str(TUNE_SRC),
            hyperparameters={"epochs": 2, "pause": 1.5},
            hyperparameter_ranges={
                "lr": ContinuousRange(0.001, 0.3, scaling="Logarithmic"),
                "depth": IntegerRange(1, 8),
                "booster": CategoricalRange(["gbtree", "dart"]),
            },
            objective_metric_name="validation:auc",
            objective_metric_regex=REGEX,
            strategy="Random",
            max_jobs=5,
            max_parallel_jobs=2,
            random_seed=11,
        )
        SageMakerProcessingStepOperator(
            task_id="use",
            image_uri="python:3.11",
            entrypoint=["python3", "-c", "import sys; print(sys.argv[1:])"],
            arguments=[
                tune.model_artifacts,
                tune.best_training_job_name,
                tune.step_property("TrainingJobSummaries[0].TrainingJobName"),
                tune.top_model_artifacts(1),
                tune.step_property("BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value"),
                tune.step_property("TrainingJobSummaries[0].TunedHyperParameters['booster']"),
            ],
        )

    arn, execution, steps = _run(sm, _compile(backend, build))
    assert execution["PipelineExecutionStatus"] == "Succeeded", (execution, steps)
    tuning_arn = steps["tune"]["Metadata"]["TuningJob"]["Arn"]
    assert steps["tune"]["Metadata"] == {"TuningJob": {"Arn": tuning_arn}}
    tuning_name = _name(tuning_arn)
    assert tuning_name.startswith(f"{_name(arn)}-tune-") and len(tuning_name) <= 32

    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    assert tuning["TrainingJobStatusCounters"]["Completed"] == 5
    assert tuning["ObjectiveStatusCounters"] == {"Succeeded": 5, "Pending": 0, "Failed": 0}
    assert tuning["HyperParameterTuningJobConfig"]["Strategy"] == "Random"

    trials = _all_trials(sm, tuning_name)
    assert [t["TrainingJobName"] for t in trials] == sorted(
        t["TrainingJobName"] for t in trials
    )  # default: Name
    assert len(trials) == 5
    values: dict[str, float] = {}
    for trial in trials:
        tuned = trial["TunedHyperParameters"]
        assert set(tuned) == {"lr", "depth", "booster"}
        lr, depth = float(tuned["lr"]), int(tuned["depth"])
        assert 0.001 <= lr <= 0.3 and 1 <= depth <= 8 and tuned["booster"] in {"gbtree", "dart"}
        metric = trial["FinalHyperParameterTuningJobObjectiveMetric"]
        # The value the regex read from the log is the one the script computed from its hyperparameters.
        assert metric["Value"] == pytest.approx(expected_auc(lr, depth, tuned["booster"]))
        assert (metric["MetricName"], metric["Type"], trial["ObjectiveStatus"]) == (
            "validation:auc",
            "Maximize",
            "Succeeded",
        )
        values[trial["TrainingJobName"]] = metric["Value"]
    best_name = max(values, key=lambda n: values[n])
    assert tuning["BestTrainingJob"]["TrainingJobName"] == best_name

    ranked = _all_trials(sm, tuning_name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    assert [t["TrainingJobName"] for t in ranked] == sorted(values, key=lambda n: -values[n])
    ascending = _all_trials(sm, tuning_name, SortBy="FinalObjectiveMetricValue", SortOrder="Ascending")
    assert [t["TrainingJobName"] for t in ascending] == [t["TrainingJobName"] for t in reversed(ranked)]

    jobs = [sm.describe_training_job(TrainingJobName=name) for name in values]
    assert all(job["TuningJobArn"] == tuning_arn for job in jobs)
    assert _most_at_once(jobs) == 2  # two at a time, never three
    best = sm.describe_training_job(TrainingJobName=best_name)
    second = sm.describe_training_job(TrainingJobName=ranked[1]["TrainingJobName"])
    model_uri = best["ModelArtifacts"]["S3ModelArtifacts"]
    # The script ran in script mode: tuned values as --name value arguments, from /opt/ml/code.
    body = s3.get_object(Bucket=BUCKET, Key=model_uri.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        model = json.load(tar.extractfile("model.json"))  # type: ignore[arg-type]
    assert model["auc"] == values[best_name]
    assert str(model["depth"]) == best["HyperParameters"]["depth"]
    assert model["cwd"] == "/opt/ml/code"

    use = sm.describe_processing_job(
        ProcessingJobName=_name(steps["use"]["Metadata"]["ProcessingJob"]["Arn"])
    )
    assert use["AppSpecification"]["ContainerArguments"] == [
        model_uri,
        best_name,
        best_name,
        second["ModelArtifacts"]["S3ModelArtifacts"],
        str(values[best_name]),
        best["HyperParameters"]["booster"],
    ]
    listed = sm.list_hyper_parameter_tuning_jobs(NameContains=tuning_name)["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["Strategy"]) for s in listed] == [(tuning_name, "Random")]

    # The step task's XCom result, read through the hook's async calls from the backend.
    result = asyncio.run(_task_result(backend, steps["tune"], arn))
    assert {
        k: result[k] for k in ("best_training_job", "objective_metric", "objective_value", "training_jobs")
    } == {
        "best_training_job": best_name,
        "objective_metric": "validation:auc",
        "objective_value": values[best_name],
        "training_jobs": 5,
    }
    assert result["best_model_artifacts"] == model_uri
    assert result["best_hyperparameters"] == {
        k: best["HyperParameters"][k] for k in ("lr", "depth", "booster")
    }


async def _task_result(backend: LocalBackend, step: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    conn_id = "smpipe_local_tuning"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": backend.endpoint_url, "region_name": "us-east-1"},
        }
    )
    try:
        hook = SageMakerPipelineHook(aws_conn_id=conn_id, region_name="us-east-1")
        trigger = SimpleNamespace(log=logging.getLogger("smpipe.test.tuning"), poll_interval=0.1)
        view = StepView(trigger, hook, step, execution_arn)  # type: ignore[arg-type]
        return await TuningStepRuntime().result(view)
    finally:
        os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)


def test_grid_runs_every_combination_and_records_a_failing_trial(backend: LocalBackend, sm: Any) -> None:
    def build(group: SageMakerPipelineTaskGroup) -> None:
        SageMakerTuningStepOperator(
            task_id="grid",
            image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.4",
            entry_point="train.py",
            source_dir=str(TUNE_SRC),
            hyperparameters={"lr": 0.05},
            hyperparameter_ranges={
                "booster": CategoricalRange(["gbtree", "dart", "broken"]),
                "depth": CategoricalRange([2, 4]),
            },
            objective_metric_name="validation:auc",
            metric_definitions=[{"Name": "validation:auc", "Regex": REGEX}],
            objective_type="Minimize",
            strategy="Grid",
            max_parallel_jobs=3,
        )

    _, execution, steps = _run(sm, _compile(backend, build))
    assert execution["PipelineExecutionStatus"] == "Succeeded", (execution, steps)
    tuning_name = _name(steps["grid"]["Metadata"]["TuningJob"]["Arn"])
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    assert tuning["TrainingJobStatusCounters"]["Completed"] == 4
    assert tuning["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert tuning["ObjectiveStatusCounters"]["Failed"] == 2
    trials = _all_trials(sm, tuning_name, SortBy="CreationTime")
    combos = {(t["TunedHyperParameters"]["booster"], t["TunedHyperParameters"]["depth"]) for t in trials}
    assert combos == {(b, d) for b in ("gbtree", "dart", "broken") for d in ("2", "4")}
    broken = [t for t in trials if t["TunedHyperParameters"]["booster"] == "broken"]
    assert all(t["TrainingJobStatus"] == "Failed" and t["ObjectiveStatus"] == "Failed" for t in broken)
    assert all("exit code 3" in t["FailureReason"] for t in broken)
    assert all("FinalHyperParameterTuningJobObjectiveMetric" not in t for t in broken)
    # Minimize: the lowest AUC wins (gbtree at depth 2).
    best = tuning["BestTrainingJob"]
    assert best["TunedHyperParameters"] == {"booster": "gbtree", "depth": "2"}
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        expected_auc(0.05, 2, "gbtree")
    )
    ranked = _all_trials(sm, tuning_name, SortBy="FinalObjectiveMetricValue")
    assert len(ranked) == 4  # trials without an objective value are not listed by value


def test_tuning_fails_when_no_trial_succeeds(backend: LocalBackend, sm: Any) -> None:
    def build(group: SageMakerPipelineTaskGroup) -> None:
        SageMakerTuningStepOperator(
            task_id="doomed",
            image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.4",
            entry_point="train.py",
            source_dir=str(TUNE_SRC),
            hyperparameters={"booster": "broken"},
            hyperparameter_ranges={"lr": ContinuousRange(0.01, 0.1)},
            objective_metric_name="validation:auc",
            objective_metric_regex=REGEX,
            strategy="Bayesian",
            max_jobs=8,
            max_parallel_jobs=1,
        )

    _, execution, steps = _run(sm, _compile(backend, build))
    assert execution["PipelineExecutionStatus"] == "Failed"
    step = steps["doomed"]
    expected = (
        "No training job succeeded after 5 attempts. Please take a look at the training job failures to get "
        "more details."
    )
    assert (step["StepStatus"], step["FailureReason"]) == ("Failed", expected)
    tuning = sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=_name(step["Metadata"]["TuningJob"]["Arn"])
    )
    assert tuning["HyperParameterTuningJobStatus"] == "Failed"
    assert tuning["FailureReason"] == expected
    assert tuning["TrainingJobStatusCounters"]["NonRetryableError"] == 5  # it gave up after 5 of 8
    assert "BestTrainingJob" not in tuning


def test_an_unknown_tuning_job_is_an_error(sm: Any) -> None:
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-tuning-job")


@pytest.mark.parametrize("stop", ["tuning job", "execution"])
def test_stopping_the_tuning_job_stops_its_trials_and_the_step(
    backend: LocalBackend, sm: Any, stop: str
) -> None:
    import time

    def build(group: SageMakerPipelineTaskGroup) -> None:
        SageMakerTuningStepOperator(
            task_id="slow",
            image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.4",
            entry_point="train.py",
            source_dir=str(TUNE_SRC),
            hyperparameters={"pause": 60},
            hyperparameter_ranges={"lr": ContinuousRange(0.01, 0.1)},
            objective_metric_name="validation:auc",
            objective_metric_regex=REGEX,
            strategy="Random",
            max_jobs=4,
            max_parallel_jobs=2,
        )

    name = create_pipeline(sm, _compile(backend, build))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    deadline = time.monotonic() + 60
    while True:
        steps = steps_of(sm, arn)
        if "slow" in steps and steps["slow"].get("Metadata"):
            tuning_name = _name(steps["slow"]["Metadata"]["TuningJob"]["Arn"])
            running = _all_trials(sm, tuning_name, StatusEquals="InProgress")
            if len(running) == 2:
                break
        assert time.monotonic() < deadline, "the trials did not start"
        time.sleep(0.2)
    if stop == "tuning job":
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    else:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    execution = wait_for(sm, arn, timeout=60)
    assert execution["PipelineExecutionStatus"] == ("Stopped" if stop == "execution" else "Failed")
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Stopped"
    assert tuning["TrainingJobStatusCounters"]["Stopped"] == 2
    assert len(_all_trials(sm, tuning_name)) == 2  # no trial started after the stop
    assert steps_of(sm, arn)["slow"]["StepStatus"] == "Stopped"
