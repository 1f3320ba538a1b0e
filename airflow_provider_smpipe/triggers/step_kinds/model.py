"""Model steps (CreateModel): no job and no logs; XCom: the created model's name and ARN."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView


class ModelStepRuntime(StepKindRuntime):
    metadata_key = "Model"

    async def result(self, view: StepView) -> dict[str, Any]:
        arn = (view.metadata.get(self.metadata_key) or {}).get("Arn")
        if not arn:
            return {}
        name = str(arn).rsplit("/", 1)[-1]
        try:
            described = await view.hook.async_describe_model(name)
        except ClientError:
            # The ARN names the model too: a missing sagemaker:DescribeModel permission must not fail the task.
            view.log.warning("Could not describe model %s; taking its name from the ARN", arn, exc_info=True)
            return {"model_name": name, "model_arn": arn}
        return {"model_name": described.get("ModelName", name), "model_arn": described.get("ModelArn", arn)}


STEP_KINDS.add(ModelStepRuntime.metadata_key, ModelStepRuntime())
