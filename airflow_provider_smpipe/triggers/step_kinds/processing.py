"""Processing steps: stream the job's logs; XCom: the job, its output URIs and its property files."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.triggers.step_kinds.base import (
    STEP_KINDS,
    StepKindRuntime,
    StepView,
    job_outputs,
)


class ProcessingStepRuntime(StepKindRuntime):
    metadata_key = "ProcessingJob"
    job_kind = "processing"
    log_group = "/aws/sagemaker/ProcessingJobs"
    console_path = "processing-jobs"

    async def result(self, view: StepView) -> dict[str, Any]:
        job = self.job(view.metadata)
        if job is None:
            return {}
        _, outputs = await job_outputs(view, job)
        result: dict[str, Any] = {"job_name": job.name, "job_arn": job.arn, "outputs": outputs}
        files: dict[str, Any] = {}
        for spec in view.trigger.property_files or ():
            base = outputs.get(spec["output_name"])
            if base is None:
                raise ValueError(
                    f"Property file {spec['name']!r} names output {spec['output_name']!r}, but job "
                    f"{job.name} has outputs {sorted(outputs)}"
                )
            files[spec["name"]] = await view.hook.async_read_s3_json(
                f"{base.rstrip('/')}/{spec['path'].lstrip('/')}"
            )
        if files:
            result["property_files"] = files
        return result


STEP_KINDS.add(ProcessingStepRuntime.metadata_key, ProcessingStepRuntime())
