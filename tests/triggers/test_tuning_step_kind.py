"""Tuning steps at run time: the trials in the task log, and the best training job in the XCom result."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook
from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger
from airflow_provider_smpipe.triggers.step_kinds.base import job_from_metadata, kind_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pytest

EXECUTION = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123"
TUNING = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/abc123-tune-x1y2z"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _trial(
    name: str, status: str, lr: str, value: float | None = None, reason: str | None = None
) -> dict[str, Any]:
    trial: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CreationTime": WHEN,
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"lr": lr, "depth": "3"},
    }
    if value is not None:
        trial["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Maximize",
            "MetricName": "validation:auc",
            "Value": value,
        }
    if reason:
        trial["FailureReason"] = reason
    return trial


# The tuning job as successive DescribeHyperParameterTuningJob calls see it.
TIMELINE = [
    [_trial("t1", "InProgress", "0.1")],
    [_trial("t1", "Completed", "0.1", 0.8), _trial("t2", "InProgress", "0.01")],
    [
        _trial("t1", "Completed", "0.1", 0.8),
        _trial("t2", "Failed", "0.01", reason="AlgorithmError: boom"),
        _trial("t3", "Completed", "0.05", 0.9),  # started and ended between two polls
    ],
]


class FakeSageMaker:
    """An async SageMaker client whose tuning job advances one step of TIMELINE per describe."""

    def __init__(self, ticks_until_done: int = 3) -> None:
        self.tick = 0
        self.ticks_until_done = ticks_until_done
        self.calls: Counter[str] = Counter()
        self.list_requests: list[dict[str, Any]] = []

    def trials(self) -> list[dict[str, Any]]:
        return TIMELINE[min(self.tick, len(TIMELINE)) - 1] if self.tick else []

    async def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:
        self.calls["describe_hyper_parameter_tuning_job"] += 1
        assert HyperParameterTuningJobName == "abc123-tune-x1y2z"
        self.tick += 1
        trials = self.trials()
        done = self.tick >= len(TIMELINE)
        described: dict[str, Any] = {
            "HyperParameterTuningJobName": HyperParameterTuningJobName,
            "HyperParameterTuningJobStatus": "Completed" if done else "InProgress",
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            },
            "TrainingJobStatusCounters": {
                "Completed": sum(t["TrainingJobStatus"] == "Completed" for t in trials),
                "InProgress": sum(t["TrainingJobStatus"] == "InProgress" for t in trials),
                "NonRetryableError": sum(t["TrainingJobStatus"] == "Failed" for t in trials),
                "RetryableError": 0,
                "Stopped": 0,
            },
        }
        scored = [t for t in trials if "FinalHyperParameterTuningJobObjectiveMetric" in t]
        if scored:
            described["BestTrainingJob"] = max(
                scored, key=lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
            )
        return described

    async def list_training_jobs_for_hyper_parameter_tuning_job(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["list_training_jobs_for_hyper_parameter_tuning_job"] += 1
        self.list_requests.append(kwargs)
        trials = self.trials()
        start = int(kwargs.get("NextToken") or 0)
        page: dict[str, Any] = {"TrainingJobSummaries": trials[start : start + 2]}  # pages of 2
        if start + 2 < len(trials):
            page["NextToken"] = str(start + 2)
        return page

    async def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        self.calls["describe_training_job"] += 1
        return {
            "TrainingJobName": TrainingJobName,
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://models/tune/{TrainingJobName}/output/model.tar.gz"},
        }

    # The pipeline execution, for the full trigger run.
    async def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, Any]:
        self.calls["describe_pipeline_execution"] += 1
        return {"PipelineExecutionArn": PipelineExecutionArn, "PipelineExecutionStatus": self._status()}

    async def list_pipeline_execution_steps(self, **_: Any) -> dict[str, Any]:
        status = self._status()
        step = {
            "StepName": "tune",
            "StepStatus": status,
            "StartTime": WHEN,
            "Metadata": {"TuningJob": {"Arn": TUNING}},
        }
        return {"PipelineExecutionSteps": [step]}

    def _status(self) -> str:
        return "Succeeded" if self.tick >= self.ticks_until_done else "Executing"


class FakeHook(SageMakerPipelineHook):
    def __init__(self, fake: FakeSageMaker) -> None:
        super().__init__(aws_conn_id="fake", region_name="us-east-1")
        self.fake = fake

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[Any]:
        yield self.fake


def _trigger(fake: FakeSageMaker) -> SageMakerPipelineStepTrigger:
    trigger = SageMakerPipelineStepTrigger(
        pipeline_name="p",
        step_name="tune",
        dag_id="dag",
        run_id="run1",
        group_id="grp",
        execution_arn=EXECUTION,
        aws_conn_id="fake",
        region_name="us-east-1",
        poll_interval=0.01,
        end_from_trigger=False,
        stream_logs=True,
    )
    trigger._pipeline_hook = lambda: FakeHook(fake)  # type: ignore[method-assign]
    trigger._log = logging.getLogger("smpipe.test.tuning")
    return trigger


def test_tuning_metadata_names_the_tuning_job() -> None:
    job = job_from_metadata({"TuningJob": {"Arn": TUNING}})
    assert job is not None
    assert (job.kind, job.name, job.log_group, job.console_path) == (
        "tuning",
        "abc123-tune-x1y2z",
        None,
        "hyper-tuning-jobs",
    )
    kind = kind_of({"TuningJob": {"Arn": TUNING}})
    assert kind is not None and kind.metadata_key == "TuningJob"


def test_the_task_log_follows_the_trials_and_the_result_names_the_best(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeSageMaker(ticks_until_done=3)
    caplog.set_level(logging.INFO, logger="smpipe.test.tuning")

    async def scenario() -> Any:
        agen = _trigger(fake).run()
        try:
            return await asyncio.wait_for(anext(agen), 20)
        finally:
            await agen.aclose()

    event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    lines = [r.getMessage() for r in caplog.records if r.name == "smpipe.test.tuning"]
    trial_lines = [
        line for line in lines if line.startswith(("training job", "best training job", "tuning job"))
    ]
    assert trial_lines == [
        "training job t1 started: depth=3, lr=0.1",
        "training job t1 Completed: validation:auc = 0.8",
        "training job t2 started: depth=3, lr=0.01",
        "training job t2 Failed: AlgorithmError: boom",
        "training job t3 started: depth=3, lr=0.05",
        "training job t3 Completed: validation:auc = 0.9",
        "tuning job abc123-tune-x1y2z Completed: 3 training jobs (2 completed, 1 failed, 0 stopped)",
        "best training job: t3 (validation:auc = 0.9; depth=3, lr=0.05)",
    ]
    result = event.payload["result"]
    assert result["job_name"] == "abc123-tune-x1y2z"
    assert result["job_arn"] == TUNING
    assert {
        k: result[k] for k in ("best_training_job", "objective_metric", "objective_value", "training_jobs")
    } == {
        "best_training_job": "t3",
        "objective_metric": "validation:auc",
        "objective_value": 0.9,
        "training_jobs": 3,
    }
    assert result["objective_type"] == "Maximize"
    assert result["best_hyperparameters"] == {"lr": "0.05", "depth": "3"}
    assert result["best_model_artifacts"] == "s3://models/tune/t3/output/model.tar.gz"
    assert result["training_job_status_counters"]["NonRetryableError"] == 1
    # Every page of the listing was read, oldest first.
    assert all(r["SortBy"] == "CreationTime" and r["SortOrder"] == "Ascending" for r in fake.list_requests)
    assert any("NextToken" in r for r in fake.list_requests)


def test_watch_polls_at_the_trigger_interval_until_the_step_ends() -> None:
    from airflow_provider_smpipe.triggers.step_kinds.base import StepView
    from airflow_provider_smpipe.triggers.step_kinds.tuning import TuningStepRuntime

    fake = FakeSageMaker()
    trigger = _trigger(fake)
    trigger.poll_interval = 0.2
    step = {"StepName": "tune", "Metadata": {"TuningJob": {"Arn": TUNING}}}

    async def scenario() -> None:
        done = asyncio.Event()
        watching = asyncio.create_task(
            TuningStepRuntime().watch(StepView(trigger, FakeHook(fake), step, EXECUTION), done)
        )
        await asyncio.sleep(0.5)
        polls = fake.calls["describe_hyper_parameter_tuning_job"]
        assert 2 <= polls <= 4  # about one per 0.2 s, not a busy loop
        done.set()
        await asyncio.wait_for(watching, 5)
        assert fake.calls["describe_hyper_parameter_tuning_job"] == polls + 1  # one last look after the end

    asyncio.run(scenario())
