"""Register-model steps: no job and no logs; XCom: the model package version; link: its group in Studio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView

if TYPE_CHECKING:
    from collections.abc import Mapping


def _from_arn(arn: str) -> tuple[str | None, int | None]:
    """(group, version) of ``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``."""
    parts = arn.split(":", 5)[-1].split("/")
    if len(parts) == 3 and parts[2].isdigit():
        return parts[1], int(parts[2])
    return None, None


class RegisterModelStepRuntime(StepKindRuntime):
    metadata_key = "RegisterModel"

    async def result(self, view: StepView) -> dict[str, Any]:
        arn = (view.metadata.get(self.metadata_key) or {}).get("Arn")
        if not arn:
            return {}
        group, version = _from_arn(str(arn))
        result: dict[str, Any] = {
            "model_package_arn": arn,
            "model_package_version": version,
            "model_package_group_name": group,
            "approval_status": None,
        }
        try:
            described = await view.hook.async_describe_model_package(str(arn))
        except ClientError:
            # The ARN holds the group (lower case) and version; only the approval status is lost.
            view.log.warning("Could not describe model package %s", arn, exc_info=True)
            return result
        result.update(
            {
                "model_package_arn": described.get("ModelPackageArn", arn),
                "model_package_version": described.get("ModelPackageVersion", version),
                "model_package_group_name": described.get("ModelPackageGroupName", group),
                "approval_status": described.get("ModelApprovalStatus"),
            }
        )
        return result

    def link_xcoms(
        self, metadata: Mapping[str, Any], base: Mapping[str, Any], result: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        group = (result or {}).get("model_package_group_name")
        version = (result or {}).get("model_package_version")
        if not group:
            group, version = _from_arn(str((metadata.get(self.metadata_key) or {}).get("Arn", "")))
        if not group:
            return {}
        return {
            "smpipe_model_package": {
                **base,
                "model_package_group_name": group,
                "model_package_version": version,
            }
        }


STEP_KINDS.add(RegisterModelStepRuntime.metadata_key, RegisterModelStepRuntime())
