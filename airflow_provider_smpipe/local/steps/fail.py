"""Fail steps: end the execution as Failed with the step's (evaluated) message."""

from __future__ import annotations

from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv


@STEP_RUNNERS.register("Fail")
def run_fail(env: StepEnv) -> None:
    run = env.run
    run.status = "Executing"
    message = env.evaluate(env.step.arguments.get("ErrorMessage", ""))
    text = message if isinstance(message, str) else str(message)
    run.metadata = {"Fail": {"ErrorMessage": text}}
    run.properties = dict
    run.finish("Failed", text)
