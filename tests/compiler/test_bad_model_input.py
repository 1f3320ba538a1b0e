"""Bad model and register-model steps fail at DAG parse time with an error naming the task and the field."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import CODE, IMAGE, ROLE

from airflow_provider_smpipe import (
    SageMakerModelStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerRegisterModelStepOperator,
)
from airflow_provider_smpipe.exceptions import PipelineDefinitionError

START = pendulum.datetime(2026, 1, 1)
DATA = "s3://models/model.tar.gz"
INFERENCE = str(CODE / "inference_src")


def _model(**kwargs: Any) -> SageMakerModelStepOperator:
    kwargs.setdefault("image_uri", IMAGE)
    kwargs.setdefault("model_data", DATA)
    return SageMakerModelStepOperator(task_id="model", **kwargs)


def _register(**kwargs: Any) -> SageMakerRegisterModelStepOperator:
    kwargs.setdefault("model_package_group_name", "churn-models")
    kwargs.setdefault("image_uri", IMAGE)
    kwargs.setdefault("model_data", DATA)
    return SageMakerRegisterModelStepOperator(task_id="register", **kwargs)


def _refused(build: Any, **kwargs: Any) -> str:
    with (
        DAG("bad_models", start_date=START, schedule=None),
        pytest.raises(PipelineDefinitionError) as error,
        SageMakerPipelineTaskGroup("ml", role_arn=ROLE),
    ):
        build(**kwargs)
    return str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"model_data": None}, "model_data", "model artifacts are required"),
        ({"model_data": ""}, "model_data", "model artifacts are required"),
        ({"image_uri": ""}, "image_uri", "inference image URI is required"),
        ({"model_data": "models/model.tar.gz"}, "model_data", "s3:// URI"),
        ({"entry_point": "missing.py"}, "entry_point", "does not exist"),
        ({"entry_point": "missing.py", "source_dir": INFERENCE}, "entry_point", "does not exist"),
        ({"entry_point": "inference.py", "source_dir": str(CODE / "nope")}, "source_dir", "does not exist"),
        (
            {"entry_point": "inference.py", "source_dir": str(CODE / "prep.py")},
            "source_dir",
            "not a directory",
        ),
        ({"entry_point": "../evaluate.py", "source_dir": INFERENCE}, "entry_point", "leaves 'source_dir'"),
        ({"source_dir": INFERENCE}, "source_dir", "'entry_point'"),
        (
            {
                "entry_point": "inference.py",
                "source_dir": INFERENCE,
                "environment": {"SAGEMAKER_PROGRAM": "other.py"},
            },
            "environment",
            "SAGEMAKER_PROGRAM",
        ),
        ({"vpc_config": {"subnets": ["subnet-1"]}}, "vpc_config", "'security_group_ids' must be"),
        ({"vpc_config": {"subnets": [], "security_group_ids": ["sg-1"]}}, "vpc_config", "'subnets' must be"),
        (
            {"vpc_config": {"Subnets": ["subnet-1"], "security_group_ids": ["sg-1"]}},
            "vpc_config",
            "unknown keys ['Subnets']",
        ),
        (
            {"vpc_config": {"subnets": ["subnet-1"], "security_group_ids": [f"sg-{i}" for i in range(6)]}},
            "vpc_config",
            "at most 5",
        ),
        (
            {"vpc_config": {"subnets": ["subnet 1"], "security_group_ids": ["sg-1"]}},
            "vpc_config",
            "not a VPC resource id",
        ),
        ({"vpc_config": ["subnet-1"]}, "vpc_config", "expected"),
        ({"execution_role_arn": "SageMakerRole"}, "execution_role_arn", "not an IAM role ARN"),
        ({"cache": True}, "cache", "does not cache"),
        (
            {"retry_policies": [{"exception_types": ["SageMaker.CAPACITY_ERROR"], "max_attempts": 2}]},
            "retry_policies",
            "no SageMaker job retry policies",
        ),
    ],
)
def test_bad_model_step(kwargs: dict[str, Any], field: str, words: str) -> None:
    message = _refused(_model, **kwargs)
    assert f"task 'ml.model' field '{field}'" in message
    assert words in message


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"model_package_group_name": None}, "model_package_group_name", "a model package group is required"),
        ({"model_package_group_name": ""}, "model_package_group_name", "a model package group is required"),
        (
            {"model_package_group_name": "churn_models"},
            "model_package_group_name",
            "not a model package group",
        ),
        ({"model_data": None}, "model_data", "model artifacts are required"),
        ({"image_uri": None}, "image_uri", "inference image URI is required"),
        (
            {"approval_status": "Pending"},
            "approval_status",
            "not one of ['Approved', 'PendingManualApproval'",
        ),
        ({"approval_status": "approved"}, "approval_status", "or a pipeline parameter"),
        ({"inference_instances": ["m5.large"]}, "inference_instances", "not a SageMaker instance type"),
        ({"transform_instances": [""]}, "transform_instances", "not a non-empty string"),
        ({"content_types": [None]}, "content_types", "not a non-empty string"),
        ({"model_metrics": {"accuracy": "s3://r/e.json"}}, "model_metrics", "unknown report 'accuracy'"),
        (
            {"model_metrics": {"model_quality_statistics": "reports/e.json"}},
            "model_metrics['model_quality_statistics']",
            "s3:// URI",
        ),
        (
            {"model_metrics": {"bias_report": {"uri": "s3://r/bias.json"}}},
            "model_metrics['bias_report']",
            "'s3_uri'",
        ),
        ({"customer_metadata": {"bad key!": "x"}}, "customer_metadata", "key 'bad key!'"),
        ({"customer_metadata": {"team": ""}}, "customer_metadata", "1-256 characters"),
        ({"customer_metadata": {f"k{i}": "v" for i in range(51)}}, "customer_metadata", "at most 50"),
        ({"description": "two\nlines"}, "description", "no control characters"),
        ({"description": "x" * 1025}, "description", "at most 1024"),
        ({"entry_point": "missing.py"}, "entry_point", "does not exist"),
    ],
)
def test_bad_register_step(kwargs: dict[str, Any], field: str, words: str) -> None:
    message = _refused(_register, **kwargs)
    assert f"task 'ml.register' field {field!r}" in message
    assert words in message


def test_templated_values_are_checked_once_rendered() -> None:
    with (
        DAG("bad_models", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup("ml", role_arn=ROLE),
    ):
        register = _register(approval_status="{{ params.status }}", inference_instances=["{{ params.type }}"])
    register.approval_status = "Maybe"  # what rendering gave
    with pytest.raises(PipelineDefinitionError, match=r"task 'ml\.register' field 'approval_status'"):
        register.to_step_spec(name="register", depends_on=())


def test_a_parameter_approval_status_is_accepted_and_checked_by_the_group() -> None:
    with (
        DAG("bad_models", start_date=START, schedule=None),
        pytest.raises(PipelineDefinitionError) as error,
        SageMakerPipelineTaskGroup("ml", role_arn=ROLE, parameters={"Status": "Approved"}) as group,
    ):
        _register(approval_status=group.parameter("Status"))
        SageMakerRegisterModelStepOperator(
            task_id="other",
            model_package_group_name="churn-models",
            image_uri=IMAGE,
            model_data=DATA,
            approval_status=group.parameter("Undeclared"),
        )
    assert "'ml.other'" in str(error.value) and "'Undeclared'" in str(error.value)


def test_property_file_uri_names_a_declared_property_file() -> None:
    with (
        DAG("bad_models", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup("ml", role_arn=ROLE),
    ):
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=IMAGE,
            entrypoint=["python3", "-c", "print(1)"],
            outputs=["evaluation"],
            property_files={"evaluation": "evaluation/evaluation.json"},
        )
        with pytest.raises(PipelineDefinitionError, match="no property file 'metrics'"):
            evaluate.property_file_uri("metrics")
