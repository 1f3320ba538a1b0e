"""Model and register-model steps at run time: the XCom result and the model package link the trigger pushes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import test_pipeline_step_trigger as fakes
from airflow.triggers.base import TaskSuccessEvent
from botocore.exceptions import ClientError

from airflow_provider_smpipe.links.sagemaker import SageMakerModelPackageLink
from airflow_provider_smpipe.triggers.step_kinds.base import kind_of

if TYPE_CHECKING:
    import pytest

MODEL_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model/pipelines-abc123-model-x1y2"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/3"


class FakeModelSageMaker(fakes.FakeSageMaker):
    """The fake execution plus DescribeModel and DescribeModelPackage."""

    def __init__(self, steps: list[dict[str, Any]], *, denied: bool = False) -> None:
        super().__init__(lambda tick: ("Succeeded", steps))
        self.denied = denied

    def _maybe_deny(self, operation: str) -> None:
        if self.denied:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation)

    async def describe_model(self, ModelName: str) -> dict[str, Any]:
        self._enter("describe_model")
        self._maybe_deny("DescribeModel")
        return {"ModelName": "Pipelines-abc123-Model-x1y2", "ModelArn": MODEL_ARN}

    async def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        self._enter("describe_model_package")
        self._maybe_deny("DescribeModelPackage")
        assert ModelPackageName == PACKAGE_ARN
        return {
            "ModelPackageArn": PACKAGE_ARN,
            "ModelPackageGroupName": "Churn-Models",
            "ModelPackageVersion": 3,
            "ModelApprovalStatus": "PendingManualApproval",
        }


def _step(name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "StepName": name,
        "StepStatus": "Succeeded",
        "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
        "EndTime": datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
        "Metadata": metadata,
    }


STEPS = [
    _step("model", {"Model": {"Arn": MODEL_ARN}}),
    _step("register", {"RegisterModel": {"Arn": PACKAGE_ARN}}),
]


def _pushed(fake: FakeModelSageMaker, step: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from airflow.sdk.execution_time.xcom import XCom

    pushed: dict[str, Any] = {}

    async def fake_aset(key: str, value: Any, **ids: Any) -> None:
        pushed[key] = value

    monkeypatch.setattr(XCom, "aset", fake_aset)
    trigger = fakes._trigger(fake, step)
    trigger.task_instance = fakes.FakeTI(f"grp.{step}")  # type: ignore[assignment]
    event = asyncio.run(fakes._first_event(trigger))
    assert isinstance(event, TaskSuccessEvent)
    return pushed


def test_model_step_result(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeModelSageMaker(STEPS)
    pushed = _pushed(fake, "model", monkeypatch)
    result = pushed["return_value"]
    assert result["model_name"] == "Pipelines-abc123-Model-x1y2"  # as DescribeModel spells it
    assert result["model_arn"] == MODEL_ARN
    assert result["step_status"] == "Succeeded"
    assert "job_name" not in result  # no job behind a model step
    assert "smpipe_step_job" not in pushed and "smpipe_model_package" not in pushed
    assert fake.calls["describe_model"] == 1


def test_register_step_result_and_model_package_link(monkeypatch: pytest.MonkeyPatch) -> None:
    pushed = _pushed(FakeModelSageMaker(STEPS), "register", monkeypatch)
    result = pushed["return_value"]
    assert {
        k: result[k] for k in ("model_package_arn", "model_package_version", "model_package_group_name")
    } == {
        "model_package_arn": PACKAGE_ARN,
        "model_package_version": 3,
        "model_package_group_name": "Churn-Models",
    }
    assert result["approval_status"] == "PendingManualApproval"
    link = pushed["smpipe_model_package"]
    assert (link["model_package_group_name"], link["model_package_version"]) == ("Churn-Models", 3)
    assert link["region_name"] == "us-east-1" and link["aws_domain"] == "aws.amazon.com"
    assert SageMakerModelPackageLink().format_link(**link) == (
        "https://studio.us-east-1.sagemaker.aws.amazon.com/models/registered-models/Churn-Models/versions"
    )


def test_without_describe_permissions_the_arns_still_give_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeModelSageMaker(STEPS, denied=True)
    model = _pushed(fake, "model", monkeypatch)["return_value"]
    assert (model["model_name"], model["model_arn"]) == ("pipelines-abc123-model-x1y2", MODEL_ARN)
    pushed = _pushed(fake, "register", monkeypatch)
    register = pushed["return_value"]
    assert (register["model_package_group_name"], register["model_package_version"]) == ("churn-models", 3)
    assert register["approval_status"] is None
    assert pushed["smpipe_model_package"]["model_package_group_name"] == "churn-models"


def test_kinds_are_found_by_metadata_key() -> None:
    model = kind_of({"Model": {"Arn": MODEL_ARN}})
    register = kind_of({"RegisterModel": {"Arn": PACKAGE_ARN}})
    assert model is not None and model.metadata_key == "Model"
    assert register is not None and register.metadata_key == "RegisterModel"
    assert model.job({"Model": {"Arn": MODEL_ARN}}) is None  # nothing to stream
    base = {"region_name": "eu-west-1", "aws_domain": "aws.amazon.com"}
    assert register.link_xcoms({"RegisterModel": {"Arn": PACKAGE_ARN}}, base, None) == {
        "smpipe_model_package": {
            **base,
            "model_package_group_name": "churn-models",
            "model_package_version": 3,
        }
    }
    assert model.link_xcoms({"Model": {"Arn": MODEL_ARN}}, base, None) == {}
