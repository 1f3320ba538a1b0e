"""Processing steps: one processing job."""

from __future__ import annotations

from airflow_provider_smpipe.local.expressions import to_text
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv, run_job_step, strings_map


@STEP_RUNNERS.register("Processing")
def run_processing(env: StepEnv) -> None:
    request = env.evaluate(env.step.arguments)
    request["Environment"] = strings_map(request.get("Environment"))
    spec = request.get("AppSpecification") or {}
    for key in ("ContainerEntrypoint", "ContainerArguments"):
        if isinstance(spec.get(key), list):
            spec[key] = [to_text(v) for v in spec[key]]
    run_job_step(env, "processing", request, "ProcessingJob")
