"""Hyperparameter tuning jobs: the record of a tuning step's search and its API views.

A tuning job runs no process of its own: the step runner (``local/steps/tuning.py``) starts its trials as
training jobs (``JobRecord.children``). This kind renders what DescribeHyperParameterTuningJob,
ListHyperParameterTuningJobs and ListTrainingJobsForHyperParameterTuningJob answer from those trials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.jobs.base import JOB_KINDS, JobKind, JobRun, JobSetupError

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.state import JobRecord

#: A tuning step's properties keep its best training jobs, best first, up to this many.
TOP_TRAINING_JOBS = 50


class TuningJobKind(JobKind):
    kind = "tuning"
    api_noun = "HyperParameterTuningJob"
    resource = "hyper-parameter-tuning-job"

    def command(self, run: JobRun) -> list[str]:
        raise JobSetupError("a hyperparameter tuning job runs training jobs, not a command of its own")

    def describe(self, job: JobRecord) -> dict[str, Any]:
        request = job.request
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": job.name,
            "HyperParameterTuningJobArn": job.arn,
            "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
            "HyperParameterTuningJobStatus": job.status,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "TrainingJobStatusCounters": status_counters(job),
            "ObjectiveStatusCounters": objective_counters(job),
        }
        for key in ("TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig", "Autotune"):
            if request.get(key):
                out[key] = request[key]
        best = best_trial(job)
        if best is not None:
            out["BestTrainingJob"] = trial_summary(job, best)
        if job.end_time is not None:
            out["HyperParameterTuningEndTime"] = job.end_time
            out["ConsumedResources"] = {"RuntimeInSeconds": max(int(job.end_time - job.creation_time), 0)}
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        return out

    def summary(self, job: JobRecord) -> dict[str, Any]:
        config = job.request["HyperParameterTuningJobConfig"]
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": job.name,
            "HyperParameterTuningJobArn": job.arn,
            "HyperParameterTuningJobStatus": job.status,
            "Strategy": config["Strategy"],
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "TrainingJobStatusCounters": status_counters(job),
            "ObjectiveStatusCounters": objective_counters(job),
        }
        if config.get("ResourceLimits"):
            out["ResourceLimits"] = config["ResourceLimits"]
        if job.end_time is not None:
            out["HyperParameterTuningEndTime"] = job.end_time
        return out


def objective(job: JobRecord) -> tuple[str, str]:
    """(metric name, ``Maximize``/``Minimize``) of a tuning job."""
    spec = job.request["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") or {}
    return str(spec.get("MetricName", "")), str(spec.get("Type", "Maximize"))


def tuned_names(job: JobRecord) -> list[str]:
    """The names of the hyperparameters the tuning job searches."""
    ranges = job.request["HyperParameterTuningJobConfig"].get("ParameterRanges") or {}
    return [str(item["Name"]) for kind in sorted(ranges) for item in ranges[kind] or []]


def objective_value(tuning: JobRecord, trial: JobRecord) -> float | None:
    """The trial's final objective value, once it completed and its log had one."""
    if trial.status != "Completed":
        return None
    return trial.metrics.get(objective(tuning)[0])


def objective_status(tuning: JobRecord, trial: JobRecord) -> str:
    if trial.status in ("InProgress", "Stopping"):
        return "Pending"
    return "Succeeded" if objective_value(tuning, trial) is not None else "Failed"


def ranked_trials(tuning: JobRecord) -> list[JobRecord]:
    """The trials with an objective value, best first (ties: the earlier trial first)."""
    _, direction = objective(tuning)
    scored = [(objective_value(tuning, t), index, t) for index, t in enumerate(tuning.children)]
    ranked = [(value, index, t) for value, index, t in scored if value is not None]
    sign = -1.0 if direction == "Maximize" else 1.0
    ranked.sort(key=lambda item: (sign * item[0], item[1]))
    return [t for _, _, t in ranked]


def best_trial(tuning: JobRecord) -> JobRecord | None:
    ranked = ranked_trials(tuning)
    return ranked[0] if ranked else None


def trial_summary(tuning: JobRecord, trial: JobRecord) -> dict[str, Any]:
    """A ``HyperParameterTrainingJobSummary`` of one trial."""
    hyperparameters = trial.request.get("HyperParameters") or {}
    out: dict[str, Any] = {
        "TrainingJobName": trial.name,
        "TrainingJobArn": trial.arn,
        "TuningJobName": tuning.name,
        "CreationTime": trial.creation_time,
        "TrainingJobStatus": trial.status,
        "TunedHyperParameters": {
            n: str(hyperparameters[n]) for n in tuned_names(tuning) if n in hyperparameters
        },
        "ObjectiveStatus": objective_status(tuning, trial),
    }
    if trial.start_time is not None:
        out["TrainingStartTime"] = trial.start_time
    if trial.end_time is not None:
        out["TrainingEndTime"] = trial.end_time
    if trial.failure_reason:
        out["FailureReason"] = trial.failure_reason
    value = objective_value(tuning, trial)
    if value is not None:
        name, direction = objective(tuning)
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": direction,
            "MetricName": name,
            "Value": value,
        }
    return out


def status_counters(tuning: JobRecord) -> dict[str, int]:
    counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    for trial in tuning.children:
        if trial.status == "Failed":
            retryable = (trial.failure_reason or "").startswith("InternalServerError")
            counters["RetryableError" if retryable else "NonRetryableError"] += 1
        elif trial.status in ("InProgress", "Stopping"):
            counters["InProgress"] += 1
        elif trial.status in counters:
            counters[trial.status] += 1
    return counters


def objective_counters(tuning: JobRecord) -> dict[str, int]:
    counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for trial in tuning.children:
        counters[objective_status(tuning, trial)] += 1
    return counters


def step_properties(tuning: JobRecord) -> dict[str, Any]:
    """What ``Steps.<tuning step>.*`` reads: DescribeHyperParameterTuningJob's response merged with
    ListTrainingJobsForHyperParameterTuningJob's, whose ``TrainingJobSummaries`` a pipeline keeps for the
    50 best training jobs, best first (the SDK's ``TuningStep`` properties read both shapes)."""
    top = ranked_trials(tuning)[:TOP_TRAINING_JOBS]
    return {**tuning.describe(), "TrainingJobSummaries": [trial_summary(tuning, t) for t in top]}


JOB_KINDS.add(TuningJobKind.kind, TuningJobKind())
