"""Tuning steps: follow the trials in the task log; XCom: the best training job, its objective value and model.

A tuning job has no log of its own (each trial is a training job with its own streams). While the step runs,
the task log gets one line when a training job starts (with its hyperparameters), one when it ends (with its
objective value or failure), and the best training job at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.ratelimit import is_transient_error
from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_ENDED = ("Completed", "Failed", "Stopped")


def _hyperparameters(summary: Mapping[str, Any]) -> str:
    tuned = summary.get("TunedHyperParameters") or {}
    return ", ".join(f"{name}={value}" for name, value in sorted(tuned.items())) or "no tuned hyperparameters"


def _objective(summary: Mapping[str, Any]) -> str | None:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    if "Value" not in metric:
        return None
    return f"{metric.get('MetricName', 'objective')} = {metric['Value']}"


class TrialLog:
    """Writes each training job's start and end to the task log once, from successive listings."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.started: set[str] = set()
        self.ended: set[str] = set()

    def update(self, trials: Sequence[Mapping[str, Any]]) -> None:
        for trial in trials:
            name = str(trial.get("TrainingJobName"))
            if name not in self.started:
                self.started.add(name)
                self.log.info("training job %s started: %s", name, _hyperparameters(trial))
            status = trial.get("TrainingJobStatus")
            if status in _ENDED and name not in self.ended:
                self.ended.add(name)
                value = _objective(trial)
                if status == "Completed":
                    outcome = value if value is not None else "no objective value in its log"
                elif status == "Failed":
                    outcome = str(trial.get("FailureReason") or "no reason given")
                else:
                    outcome = "stopped"
                self.log.info("training job %s %s: %s", name, status, outcome)

    def best(self, described: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> None:
        counters = described.get("TrainingJobStatusCounters") or {}
        failed = int(counters.get("RetryableError", 0)) + int(counters.get("NonRetryableError", 0))
        self.log.info(
            "tuning job %s %s: %s training jobs (%s completed, %s failed, %s stopped)",
            described.get("HyperParameterTuningJobName"),
            described.get("HyperParameterTuningJobStatus"),
            len(trials),
            counters.get("Completed", 0),
            failed,
            counters.get("Stopped", 0),
        )
        best = described.get("BestTrainingJob")
        if best:
            self.log.info(
                "best training job: %s (%s; %s)",
                best.get("TrainingJobName"),
                _objective(best) or "no objective value",
                _hyperparameters(best),
            )
        else:
            self.log.info("no training job reported the objective metric: there is no best training job")


class TuningStepRuntime(StepKindRuntime):
    metadata_key = "TuningJob"
    job_kind = "tuning"
    console_path = "hyper-tuning-jobs"

    async def watch(self, view: StepView, done: asyncio.Event) -> None:
        """Poll the tuning job at the trigger's interval and log its training jobs until the step ends."""
        job = self.job(view.metadata)
        if job is None:
            return
        interval = max(0.01, float(view.trigger.poll_interval))
        trial_log = TrialLog(view.log)
        described: dict[str, Any] = {}
        trials: list[dict[str, Any]] = []
        while True:
            finished = done.is_set()
            try:
                described = await view.hook.async_describe_tuning_job(job.name)
                trials = await view.hook.async_list_tuning_training_jobs(job.name)
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                view.log.warning("Reading tuning job %s failed transiently: %s", job.name, exc)
            else:
                trial_log.update(trials)
            if finished:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=interval)
        if described:
            trial_log.best(described, trials)

    async def result(self, view: StepView) -> dict[str, Any]:
        job = self.job(view.metadata)
        if job is None:
            return {}
        described = await view.hook.async_describe_tuning_job(job.name)
        trials = await view.hook.async_list_tuning_training_jobs(job.name)
        objective = (described.get("HyperParameterTuningJobConfig") or {}).get(
            "HyperParameterTuningJobObjective"
        ) or {}
        best = described.get("BestTrainingJob") or {}
        metric = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        result: dict[str, Any] = {
            "tuning_job_name": job.name,
            "objective_metric": objective.get("MetricName"),
            "objective_type": objective.get("Type"),
            "best_training_job": best.get("TrainingJobName"),
            "objective_value": metric.get("Value"),
            "best_hyperparameters": dict(best.get("TunedHyperParameters") or {}),
            "best_model_artifacts": None,
            "training_jobs": len(trials),
            "training_job_status_counters": dict(described.get("TrainingJobStatusCounters") or {}),
        }
        if best.get("TrainingJobArn"):
            training = await view.hook.async_describe_job(str(best["TrainingJobArn"]))
            result["best_model_artifacts"] = (training.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        return result


STEP_KINDS.add(TuningStepRuntime.metadata_key, TuningStepRuntime())
