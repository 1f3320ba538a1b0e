"""In-memory records of pipeline executions, their steps and the jobs they created.

Every record renders itself as the SageMaker API does; timestamps are epoch seconds, which is
how they travel over the JSON protocol.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

JobKind = Literal["processing", "training"]


def now() -> float:
    return round(time.time(), 3)


@dataclass
class JobRecord:
    """A processing or training job a pipeline step created (resolved request + run state)."""

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
        return self._describe_processing() if self.kind == "processing" else self._describe_training()

    def _describe_processing(self) -> dict[str, Any]:
        req = self.request
        out: dict[str, Any] = {
            "ProcessingJobName": self.name,
            "ProcessingJobArn": self.arn,
            "ProcessingResources": req["ProcessingResources"],
            "AppSpecification": req["AppSpecification"],
            "ProcessingJobStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
        }
        for key in ("ProcessingInputs", "ProcessingOutputConfig", "StoppingCondition", "Environment"):
            if req.get(key):
                out[key] = req[key]
        for key in ("NetworkConfig", "RoleArn", "ExperimentConfig"):
            if req.get(key):
                out[key] = req[key]
        if self.start_time is not None:
            out["ProcessingStartTime"] = self.start_time
        if self.end_time is not None:
            out["ProcessingEndTime"] = self.end_time
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.exit_message:
            out["ExitMessage"] = self.exit_message[:1024]
        return out

    def _describe_training(self) -> dict[str, Any]:
        req = self.request
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "AlgorithmSpecification": req["AlgorithmSpecification"],
            "ResourceConfig": req["ResourceConfig"],
            "StoppingCondition": req.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400},
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "ModelArtifacts": {"S3ModelArtifacts": self.model_artifacts or ""},
        }
        for key in (
            "HyperParameters",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "Environment",
            "CheckpointConfig",
            "VpcConfig",
            "ExperimentConfig",
        ):
            if req.get(key):
                out[key] = req[key]
        if self.start_time is not None:
            out["TrainingStartTime"] = self.start_time
            elapsed = (self.end_time or now()) - self.start_time
            out["TrainingTimeInSeconds"] = max(int(elapsed), 1)
            out["BillableTimeInSeconds"] = max(int(elapsed), 1)
        if self.end_time is not None:
            out["TrainingEndTime"] = self.end_time
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        out["SecondaryStatusTransitions"] = [
            {"Status": self.secondary_status, "StartTime": self.start_time or self.creation_time}
        ]
        return out

    def summary(self) -> dict[str, Any]:
        if self.kind == "processing":
            out: dict[str, Any] = {
                "ProcessingJobName": self.name,
                "ProcessingJobArn": self.arn,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "ProcessingJobStatus": self.status,
            }
            if self.end_time is not None:
                out["ProcessingEndTime"] = self.end_time
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            return out
        out = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
        }
        if self.end_time is not None:
            out["TrainingEndTime"] = self.end_time
        return out


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

    def finish(self, status: str, reason: str | None = None) -> None:
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

    def add_job(self, account: str, region: str, job: JobRecord) -> None:
        with self.lock:
            self.jobs[(account, region, job.kind, job.name)] = job

    def get_job(self, account: str, region: str, kind: JobKind, name: str) -> JobRecord | None:
        with self.lock:
            return self.jobs.get((account, region, kind, name))

    def list_jobs(self, account: str, region: str, kind: JobKind) -> list[JobRecord]:
        with self.lock:
            return [j for (a, r, k, _), j in self.jobs.items() if (a, r, k) == (account, region, kind)]
