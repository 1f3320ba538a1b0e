"""Model steps: create the model in the backend's SageMaker (DescribeModel and ListModels see it)."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.local import model_registry as registry
from airflow_provider_smpipe.local.errors import ApiError
from airflow_provider_smpipe.local.s3io import split_s3_uri
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv, job_name, strings_map


def containers_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's container definitions, with environment values as strings (parameters may be numbers)."""
    containers = [request["PrimaryContainer"]] if isinstance(request.get("PrimaryContainer"), dict) else []
    containers += [c for c in request.get("Containers") or [] if isinstance(c, dict)]
    for container in containers:
        if "Environment" in container:
            container["Environment"] = strings_map(container["Environment"])
    return containers


def missing_model_data(env: StepEnv, containers: list[dict[str, Any]]) -> str | None:
    """SageMaker refuses a model whose ``ModelDataUrl`` object does not exist: the message, or None."""
    for container in containers:
        uri = container.get("ModelDataUrl")
        if not isinstance(uri, str) or uri.endswith("/"):
            continue
        try:
            bucket, key = split_s3_uri(uri)
            env.s3.client.head_object(Bucket=bucket, Key=key)
        except Exception:
            return f"Could not find model data at {uri}."
    return None


@STEP_RUNNERS.register("Model")
def run_model(env: StepEnv) -> None:
    run = env.run
    run.status = "Executing"
    request = env.evaluate(env.step.arguments)
    missing = missing_model_data(env, containers_of(request))
    if missing:
        run.finish("Failed", f"ClientError: {missing}")
        return
    execution = env.execution
    # SageMaker names the model when the step runs, like a job.
    name = job_name(execution.execution_id, env.step.name)
    try:
        model = registry.create_model(execution.account, execution.region, name, request)
    except ApiError as err:
        run.finish("Failed", f"ClientError: {err.message}")
        return
    run.metadata = {"Model": {"Arn": model.arn}}
    run.properties = lambda: registry.describe_model(model)
    run.finish("Succeeded")
