"""Lambda step -> SDK ``LambdaStep``; a function from a local handler is deployed here, reproducibly.

The SDK creates or updates the function while it renders the definition (``LambdaStep._get_function_arn``
calls ``Lambda.upsert()``/``update()`` on every render, zipping the script with its modification time). Here
the handler is packaged into a zip whose bytes depend only on the files' paths and contents, the function is
created when missing and updated only when its code (``CodeSha256``) or configuration differs, and the step
refers to the function by its ARN, which does not change with the code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.lambda_step import LambdaFunctionSpec, LambdaStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder

#: Tags of functions this provider created; it never overwrites a function without them.
TAG_PIPELINE = "smpipe:pipeline"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def handler_zip(code_path: str) -> bytes:
    """
    The deployment package of a handler file or directory: the same files give the same bytes.

    :param code_path: A file (stored at the zip's root) or a directory (stored with its relative paths;
        ``__pycache__`` and ``*.pyc`` are left out).
    """
    if os.path.isfile(code_path):
        files = [(os.path.basename(code_path), code_path)]
    else:
        files = []
        for root, dirs, names in os.walk(code_path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in names:
                if not name.endswith(".pyc"):
                    full = os.path.join(root, name)
                    files.append((os.path.relpath(full, code_path).replace(os.sep, "/"), full))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for relative, full in sorted(files):
            info = zipfile.ZipInfo(relative, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            with open(full, "rb") as handle:
                archive.writestr(info, handle.read())
    return buffer.getvalue()


def code_sha256(package: bytes) -> str:
    """Lambda's ``CodeSha256`` of a deployment package (base64 of the SHA-256 digest)."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


def function_configuration(function: LambdaFunctionSpec) -> dict[str, Any]:
    """The CreateFunction/UpdateFunctionConfiguration arguments this provider manages."""
    return {
        "Role": function.execution_role_arn,
        "Handler": function.handler,
        "Runtime": function.runtime,
        "Timeout": function.timeout,
        "MemorySize": function.memory_size,
        "Environment": {"Variables": dict(function.environment)},
    }


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "Environment":
            if (current.get("Environment") or {}).get("Variables", {}) != value["Variables"]:
                return True
        elif current.get(key) != value:
            return True
    return False


def deploy_function(client: Any, function: LambdaFunctionSpec, pipeline_name: str, task_id: str) -> str:
    """
    Create the function, or update its code and configuration when they differ; return its ARN.

    :param client: A boto3 Lambda client.
    :param function: The function to deploy.
    :param pipeline_name: Tagged on the function; a function of the same name without this tag is not touched.
    :param task_id: The task, for error messages.
    """
    where = f"task {task_id!r} field 'handler_file'"
    if not os.path.exists(function.code_path):
        raise PipelineDefinitionError(f"{where}: {function.code_path!r} does not exist")
    if "{{" in function.execution_role_arn:
        raise PipelineDefinitionError(
            f"task {task_id!r} field 'execution_role_arn': {function.execution_role_arn!r} is not rendered; a "
            "function is deployed with the role a run renders"
        )
    package = handler_zip(function.code_path)
    configuration = function_configuration(function)
    waiter_config = {"Delay": 1, "MaxAttempts": 300}
    try:
        existing = client.get_function(FunctionName=function.name)
    except client.exceptions.ResourceNotFoundException:
        created = client.create_function(
            FunctionName=function.name,
            Code={"ZipFile": package},
            Description=f"Lambda step of SageMaker pipeline {pipeline_name} (airflow-provider-smpipe)",
            Tags={TAG_PIPELINE: pipeline_name},
            **configuration,
        )
        client.get_waiter("function_active_v2").wait(FunctionName=function.name, WaiterConfig=waiter_config)
        return str(created["FunctionArn"])
    current = existing["Configuration"]
    owner = (existing.get("Tags") or {}).get(TAG_PIPELINE)
    if owner != pipeline_name:
        whose = f"pipeline {owner!r}" if owner else "something other than this provider"
        raise PipelineDefinitionError(
            f"{where}: Lambda function {function.name!r} exists and was created by {whose}; it is not "
            "overwritten. Choose another function_name, or invoke that function with function_arn."
        )
    if current.get("CodeSha256") != code_sha256(package):
        client.update_function_code(FunctionName=function.name, ZipFile=package)
        client.get_waiter("function_updated_v2").wait(FunctionName=function.name, WaiterConfig=waiter_config)
    if _differs(current, configuration):
        client.update_function_configuration(FunctionName=function.name, **configuration)
        client.get_waiter("function_updated_v2").wait(FunctionName=function.name, WaiterConfig=waiter_config)
    return str(current["FunctionArn"])


@STEP_BUILDERS.register(LambdaStepSpec)
def build_lambda(step: LambdaStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

    class DeployedLambdaStep(LambdaStep):
        """The function exists by now: render its ARN without the SDK's create/update calls."""

        def _get_function_arn(self) -> str:
            return str(self.lambda_func.function_arn)

    if step.function is not None:
        function_arn = _deploy_later(step.task_id, step.function, builder)
    else:
        function_arn = str(step.function_arn)
    types = {member.value: member for member in LambdaOutputTypeEnum}
    return DeployedLambdaStep(
        **builder.step_kwargs(step),
        lambda_func=Lambda(function_arn=function_arn, session=builder.session),
        inputs={name: builder.resolve(value) for name, value in step.inputs},
        outputs=[LambdaOutput(output_name=name, output_type=types[kind]) for name, kind in step.outputs],
    )


def _deploy_later(task_id: str, function: LambdaFunctionSpec, builder: PipelineBuilder) -> str:
    """The ARN the function has once deployed; it is deployed when the whole definition is built and checked
    (the session's ``publish``), so a pipeline refused while compiling creates no function."""
    from botocore.exceptions import ClientError

    if not os.path.exists(function.code_path):
        raise PipelineDefinitionError(
            f"task {task_id!r} field 'handler_file': {function.code_path!r} does not exist"
        )
    session = builder.session
    region = session.boto_region_name
    account = session.boto_session.client("sts", region_name=region).get_caller_identity()["Account"]
    partition = session.boto_session.get_partition_for_region(region)
    expected = f"arn:{partition}:lambda:{region}:{account}:function:{function.name}"

    def deploy() -> None:
        client = session.boto_session.client("lambda", region_name=region)
        try:
            deployed = deploy_function(client, function, builder.spec.name, task_id)
        except ClientError as error:
            details = error.response.get("Error", {})
            raise PipelineDefinitionError(
                f"task {task_id!r} field 'function_name': Lambda refused function {function.name!r}: "
                f"{details.get('Code')}: {details.get('Message')}"
            ) from error
        if deployed != expected:
            raise PipelineDefinitionError(
                f"task {task_id!r} field 'function_name': function {function.name!r} has ARN {deployed!r}, not "
                f"the {expected!r} the definition names"
            )

    session.pending_actions.append(deploy)
    return expected
