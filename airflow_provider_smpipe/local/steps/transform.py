"""Transform steps: one batch transform job."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.local.expressions import ExpressionError, to_text
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv, run_job_step, strings_map


@STEP_RUNNERS.register("Transform")
def run_transform(env: StepEnv) -> None:
    request = env.evaluate(env.step.arguments)
    request["Environment"] = strings_map(request.get("Environment"))
    if not request.get("ModelName"):
        raise ExpressionError("the Transform step has no ModelName")
    request["ModelName"] = to_text(request["ModelName"])
    # Typed parameters resolve to numbers or booleans; the API takes integers and strings here.
    _as_int(request.get("TransformResources"), "InstanceCount")
    _as_int(request, "MaxPayloadInMB")
    _as_int(request, "MaxConcurrentTransforms")
    for key in ("InvocationsTimeoutInSeconds", "InvocationsMaxRetries"):
        _as_int(request.get("ModelClientConfig"), key)
    for section, keys in (
        ("TransformInput", ("ContentType", "SplitType", "CompressionType")),
        ("TransformOutput", ("S3OutputPath", "Accept", "AssembleWith")),
        ("TransformResources", ("InstanceType",)),
        ("DataProcessing", ("InputFilter", "OutputFilter", "JoinSource")),
    ):
        part = request.get(section)
        for key in keys:
            if isinstance(part, dict) and part.get(key) is not None:
                part[key] = to_text(part[key])
    source = ((request.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource")
    if isinstance(source, dict) and source.get("S3Uri") is not None:
        source["S3Uri"] = to_text(source["S3Uri"])
    if request.get("BatchStrategy") is not None:
        request["BatchStrategy"] = to_text(request["BatchStrategy"])
    run_job_step(env, "transform", request, "TransformJob")


def _as_int(part: Any, key: str) -> None:
    if not isinstance(part, dict) or part.get(key) is None:
        return
    value = part[key]
    try:
        part[key] = int(value) if not isinstance(value, str) else int(float(value))
    except (TypeError, ValueError):
        raise ExpressionError(f"{key} must be an integer, got {value!r}") from None
