"""Condition steps: evaluate the conditions; the executor then runs the branch the outcome selects."""

from __future__ import annotations

from airflow_provider_smpipe.local.expressions import evaluate_conditions
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv


@STEP_RUNNERS.register("Condition")
def run_condition(env: StepEnv) -> None:
    run = env.run
    run.status = "Executing"
    outcome = evaluate_conditions(env.step.arguments.get("Conditions") or [], env.ctx)
    run.outcome = outcome
    run.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
    run.properties = lambda: {"Outcome": "True" if outcome else "False"}
    run.finish("Succeeded")
