"""Lambda steps: nothing to follow (the function's logs are in ``/aws/lambda/<function>``); XCom: the outputs."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView
from airflow_provider_smpipe.triggers.step_kinds.callback import output_parameters


class LambdaStepRuntime(StepKindRuntime):
    metadata_key = "Lambda"

    async def result(self, view: StepView) -> dict[str, Any]:
        lambda_metadata = view.metadata.get(self.metadata_key) or {}
        result: dict[str, Any] = {"outputs": output_parameters(view.metadata, self.metadata_key)}
        if lambda_metadata.get("Arn"):
            result["function_arn"] = str(lambda_metadata["Arn"])
        return result


STEP_KINDS.add(LambdaStepRuntime.metadata_key, LambdaStepRuntime())
