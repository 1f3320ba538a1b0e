"""Training steps: one training job."""

from __future__ import annotations

from airflow_provider_smpipe.local.expressions import to_text
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv, run_job_step, strings_map


@STEP_RUNNERS.register("Training")
def run_training(env: StepEnv) -> None:
    request = env.evaluate(env.step.arguments)
    for key in ("HyperParameters", "Environment"):
        request[key] = strings_map(request.get(key))
    spec = request.get("AlgorithmSpecification") or {}
    for key in ("ContainerEntrypoint", "ContainerArguments"):
        if isinstance(spec.get(key), list):
            spec[key] = [to_text(v) for v in spec[key]]
    run_job_step(env, "training", request, "TrainingJob")
