"""Training steps: stream the job's logs; XCom: the job, its model artifacts and final metrics."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView


class TrainingStepRuntime(StepKindRuntime):
    metadata_key = "TrainingJob"
    job_kind = "training"
    log_group = "/aws/sagemaker/TrainingJobs"
    console_path = "jobs"

    async def result(self, view: StepView) -> dict[str, Any]:
        job = self.job(view.metadata)
        if job is None:
            return {}
        described = await view.hook.async_describe_job(job.arn)
        result: dict[str, Any] = {
            "job_name": job.name,
            "job_arn": job.arn,
            "outputs": {},
            "model_artifacts": (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        }
        metrics = {
            str(m["MetricName"]): m["Value"]
            for m in described.get("FinalMetricDataList") or []
            if "MetricName" in m and "Value" in m
        }
        if metrics:
            result["metrics"] = metrics
        return result


STEP_KINDS.add(TrainingStepRuntime.metadata_key, TrainingStepRuntime())
