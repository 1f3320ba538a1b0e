"""In-memory records of pipeline executions, their steps and the jobs they created.

Every record renders itself as the SageMaker API does; timestamps are epoch seconds, which is
how they travel over the JSON protocol.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: A job kind registered in ``local/jobs/`` ("processing", "training", ...).
JobKind = str


def now() -> float:
    return round(time.time(), 3)


@dataclass
class JobRecord:
    """A job a pipeline step created (resolved request + run state); its kind renders its API views."""

    kind: JobKind
    name: str
    arn: str
    request: dict[str, Any]
    pipeline_execution_arn: str
    status: str = "InProgress"
    secondary_status: str = "Starting"
    failure_reason: str | None = None
    exit_message: str | None = None
    creation_time: float = field(default_factory=now)
    start_time: float | None = None
    end_time: float | None = None
    last_modified_time: float = field(default_factory=now)
    model_artifacts: str | None = None
    stop_requested: bool = False
    #: Final metric values read from the log (``MetricDefinitions``).
    metrics: dict[str, float] = field(default_factory=dict)
    #: The tuning job that started this training job, if any.
    parent_arn: str | None = None
    #: The jobs this job started (a tuning job's training jobs), in start order.
    children: list[JobRecord] = field(default_factory=list)

    def set_status(self, status: str, secondary: str | None = None, reason: str | None = None) -> None:
        self.status = status
        if secondary:
            self.secondary_status = secondary
        if reason is not None:
            self.failure_reason = reason[:1024]
        self.last_modified_time = now()
        if status in ("Completed", "Failed", "Stopped") and self.end_time is None:
            self.end_time = self.last_modified_time

    def describe(self) -> dict[str, Any]:
        """The Describe*Job response, as the job's kind renders it."""
        from airflow_provider_smpipe.local.jobs import JOB_KINDS

        return JOB_KINDS[self.kind].describe(self)

    def summary(self) -> dict[str, Any]:
        """The List*Jobs summary, as the job's kind renders it."""
        from airflow_provider_smpipe.local.jobs import JOB_KINDS

        return JOB_KINDS[self.kind].summary(self)


@dataclass
class StepRun:
    """The latest attempt of one step in an execution."""

    name: str
    type: str
    status: str = "Starting"
    start_time: float = field(default_factory=now)
    end_time: float | None = None
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempt_count: int = 1
    job: JobRecord | None = None
    outcome: bool | None = None
    display_name: str | None = None
    description: str | None = None
    #: What ``Steps.<name>.<path>`` reads (a Describe* response); set by the step's runner.
    properties: Callable[[], dict[str, Any]] | None = None
    #: ``CacheHitResult`` when the step reused an earlier execution's result.
    cache_hit_result: dict[str, Any] | None = None
    #: ``SelectiveExecutionResult`` when a selective execution reused the source execution's result.
    selective_execution_result: dict[str, Any] | None = None
    #: Why the latest attempt failed, as retry policies name it (``SageMaker.CAPACITY_ERROR``...), if known.
    failure_type: str | None = None

    #: Decides whether a failed attempt is retried: the delay before the retry, or None (retry policies).
    retry_decider: Callable[[str | None], float | None] | None = None
    #: Set instead of failing when the failed attempt will be retried after this many seconds.
    retry_delay: float | None = None

    def finish(self, status: str, reason: str | None = None) -> None:
        if status == "Failed" and self.retry_decider is not None:
            delay = self.retry_decider(self.failure_type)
            if delay is not None:
                # The step stays Executing while the retry waits, as on SageMaker: it has not failed yet.
                self.retry_delay = delay
                return
        self.status = status
        self.end_time = now()
        if reason is not None:
            self.failure_reason = reason[:3072]

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "StepName": self.name,
            "StartTime": self.start_time,
            "StepStatus": self.status,
            "AttemptCount": self.attempt_count,
            "Metadata": self.metadata,
        }
        if self.display_name:
            out["StepDisplayName"] = self.display_name
        if self.description:
            out["StepDescription"] = self.description
        if self.end_time is not None:
            out["EndTime"] = self.end_time
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.cache_hit_result:
            out["CacheHitResult"] = self.cache_hit_result
        if self.selective_execution_result:
            out["SelectiveExecutionResult"] = self.selective_execution_result
        return out


@dataclass
class Execution:
    """One pipeline execution: its inputs, its status and the steps that have started."""

    arn: str
    execution_id: str
    account: str
    region: str
    pipeline_name: str
    pipeline_arn: str
    definition_text: str
    display_name: str
    description: str | None
    parameters: list[dict[str, str]]
    parallelism: int | None
    status: str = "Executing"
    failure_reason: str | None = None
    creation_time: float = field(default_factory=now)
    last_modified_time: float = field(default_factory=now)
    steps: dict[str, StepRun] = field(default_factory=dict)
    step_order: list[str] = field(default_factory=list)
    stop_requested: bool = False
    #: The pipeline version the execution runs (ListPipelineVersions).
    pipeline_version_id: int | None = None
    #: ``SelectiveExecutionConfig`` of a selective execution.
    selective_execution_config: dict[str, Any] | None = None
    # Signals the executor thread that something changed (step finished, stop requested).
    changed: threading.Condition = field(default_factory=threading.Condition)

    def set_status(self, status: str, reason: str | None = None) -> None:
        self.status = status
        self.failure_reason = reason[:1300] if reason else None
        self.last_modified_time = now()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "PipelineArn": self.pipeline_arn,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": self.display_name,
            "PipelineExecutionStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "PipelineExperimentConfig": {
                "ExperimentName": self.pipeline_name,
                "TrialName": self.execution_id,
            },
        }
        if self.description:
            out["PipelineExecutionDescription"] = self.description
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.parallelism:
            out["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": self.parallelism}
        if self.selective_execution_config:
            out["SelectiveExecutionConfig"] = self.selective_execution_config
        if self.pipeline_version_id is not None:
            out["PipelineVersionId"] = self.pipeline_version_id
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "PipelineExecutionArn": self.arn,
            "StartTime": self.creation_time,
            "PipelineExecutionStatus": self.status,
            "PipelineExecutionDisplayName": self.display_name,
        }
        if self.description:
            out["PipelineExecutionDescription"] = self.description
        if self.failure_reason:
            out["PipelineExecutionFailureReason"] = self.failure_reason
        return out


class Store:
    """All executions and jobs of one backend, plus idempotency tokens."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.executions: dict[str, Execution] = {}
        self.jobs: dict[tuple[str, str, JobKind, str], JobRecord] = {}
        self.tokens: dict[tuple[str, str], Any] = {}
        #: Versions of each pipeline by pipeline ARN (``local/api/versions.py``).
        self.pipeline_versions: dict[str, list[Any]] = {}

    def add_job(self, account: str, region: str, job: JobRecord) -> None:
        with self.lock:
            self.jobs[(account, region, job.kind, job.name)] = job

    def get_job(self, account: str, region: str, kind: JobKind, name: str) -> JobRecord | None:
        with self.lock:
            return self.jobs.get((account, region, kind, name))

    def list_jobs(self, account: str, region: str, kind: JobKind) -> list[JobRecord]:
        with self.lock:
            return [j for (a, r, k, _), j in self.jobs.items() if (a, r, k) == (account, region, kind)]
