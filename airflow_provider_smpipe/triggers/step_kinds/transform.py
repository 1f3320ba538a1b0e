"""Transform steps: stream the job's logs; XCom: the job, its model and its output location."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView


class TransformStepRuntime(StepKindRuntime):
    metadata_key = "TransformJob"
    job_kind = "transform"
    log_group = "/aws/sagemaker/TransformJobs"
    console_path = "transform-jobs"

    async def result(self, view: StepView) -> dict[str, Any]:
        job = self.job(view.metadata)
        if job is None:
            return {}
        described = await view.hook.async_describe_job(job.arn)
        output = (described.get("TransformOutput") or {}).get("S3OutputPath")
        result: dict[str, Any] = {
            "job_name": job.name,
            "job_arn": job.arn,
            "outputs": {"output": output} if output else {},
        }
        if described.get("ModelName"):
            result["model_name"] = described["ModelName"]
        return result


STEP_KINDS.add(TransformStepRuntime.metadata_key, TransformStepRuntime())
