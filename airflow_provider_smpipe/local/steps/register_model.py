"""Register-model steps: a model package version through the backend's model registry.

The group is created when it does not exist, as a pipeline's register-model step does on SageMaker; the
version is then visible to ListModelPackages, DescribeModelPackage and UpdateModelPackage.
"""

from __future__ import annotations

from airflow_provider_smpipe.local import model_registry as registry
from airflow_provider_smpipe.local.errors import ApiError
from airflow_provider_smpipe.local.expressions import to_text
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv, strings_map
from airflow_provider_smpipe.local.steps.model import containers_of


@STEP_RUNNERS.register("RegisterModel")
def run_register_model(env: StepEnv) -> None:
    run = env.run
    run.status = "Executing"
    request = env.evaluate(env.step.arguments)
    containers_of(request.get("InferenceSpecification") or {"Containers": []})
    if isinstance(request.get("CustomerMetadataProperties"), dict):
        request["CustomerMetadataProperties"] = strings_map(request["CustomerMetadataProperties"])
    for key in ("ModelPackageGroupName", "ModelApprovalStatus", "Domain", "Task"):
        if key in request and not isinstance(request[key], str):
            request[key] = to_text(request[key])
    execution = env.execution
    try:
        package = registry.create_package(
            execution.account, execution.region, request, create_missing_group=True
        )
    except ApiError as err:
        run.finish("Failed", f"ClientError: {err.message}")
        return
    run.metadata = {"RegisterModel": {"Arn": package.arn}}
    run.properties = lambda: registry.describe_package(package)
    run.finish("Succeeded")
