"""Every kind of bad input fails at DAG parse time with an error naming the task and field; nothing reaches AWS."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup
from compiler_support import CODE, IMAGE, ROLE

from airflow_provider_smpipe import (
    SageMakerConditionStepOperator,
    SageMakerFailStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTrainingStepOperator,
)
from airflow_provider_smpipe.exceptions import PipelineDefinitionError

START = pendulum.datetime(2026, 1, 1)


def processing(task_id: str, **kwargs: Any) -> SageMakerProcessingStepOperator:
    kwargs.setdefault("entrypoint", ["python3", "-c", "print(1)"])
    return SageMakerProcessingStepOperator(task_id=task_id, image_uri=IMAGE, **kwargs)


def test_task_that_is_not_a_step_operator() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            processing("prep")
            EmptyOperator(task_id="notify")
    assert "'ml.notify'" in str(error.value) and "EmptyOperator" in str(error.value)


def test_step_operator_outside_any_pipeline_group() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with TaskGroup("plain"):
            processing("prep")
    assert "'plain.prep'" in str(error.value) and "SageMakerPipelineTaskGroup" in str(error.value)


def test_edge_that_leaves_the_group_and_comes_back() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            first = processing("first")
            second = processing("second")
        outside = EmptyOperator(task_id="outside")
        first >> outside >> second
    message = str(error.value)
    assert "'outside'" in message and "'ml.second'" in message


def test_edge_that_leaves_and_comes_back_inside_the_with_block() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        outside = EmptyOperator(task_id="outside")
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            first = processing("first")
            second = processing("second")
            first >> outside >> second
    message = str(error.value)
    assert "'ml.first'" in message and "comes back" in message and "'ml.second'" in message


def test_two_task_ids_mapping_to_the_same_step_name() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            processing("a.b")  # becomes step name "a-b"
            processing("a-b")
    assert "'ml.a.b'" in str(error.value) and "'ml.a-b'" in str(error.value) and "'a-b'" in str(error.value)


def test_reference_to_a_step_in_another_group() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("one", role_arn=ROLE):
            source = processing("source", outputs=["data"])
        with SageMakerPipelineTaskGroup("two", role_arn=ROLE):
            processing("reader", inputs={"data": source.output_uri("data")})
    message = str(error.value)
    assert "'two.reader'" in message and "inputs" in message and "'one'" in message


def test_reference_to_an_unknown_output() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            source = processing("source", outputs=["data"])
            processing("reader", inputs={"data": source.output_uri("dta")})
    message = str(error.value)
    assert "'ml.reader'" in message and "\"inputs['data']\"" in message and "'dta'" in message


def test_reference_to_an_unknown_property_file() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            evaluate = processing("evaluate", outputs=["report"], property_files={"metrics": "report/m.json"})
            fail = SageMakerFailStepOperator(task_id="fail", error_message="low")
            check = SageMakerConditionStepOperator(
                task_id="check", conditions=evaluate.property_value("metricz", "auc") > 0.5, else_steps=[fail]
            )
            check >> fail
    message = str(error.value)
    assert "'ml.check'" in message and "conditions" in message and "'metricz'" in message


def test_reference_to_an_unknown_parameter() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, parameters={"InputData": "s3://b/in"}) as group:
            processing("prep", inputs={"raw": group.parameter("Inputdata")})
    message = str(error.value)
    assert "'ml.prep'" in message and "'Inputdata'" in message and "InputData" in message


def test_pipeline_name_that_cannot_be_made_valid() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, pipeline_name="my_pipeline.v2"):
            processing("prep")
    assert "'pipeline_name'" in str(error.value) and "my_pipeline.v2" in str(error.value)


def test_missing_role() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml"):
            processing("prep")
    assert "'ml'" in str(error.value) and "'role_arn'" in str(error.value)


def test_condition_branch_not_downstream_of_the_condition() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, parameters={"Go": True}) as group:
            publish = processing("publish")
            SageMakerConditionStepOperator(
                task_id="check", conditions=group.parameter("Go").eq(True), if_steps=[publish]
            )
    message = str(error.value)
    assert "'ml.check'" in message and "'if_steps'" in message and "'ml.publish'" in message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"code": "x.py"}, "command"),
        ({"entrypoint": None}, "'code'"),
        ({"retry_policies": [{"exception_types": ["Step.THROTTLING"]}]}, "retry_policies[0]"),
        ({"retry_policies": [{"exception_types": ["Nope"], "max_attempts": 1}]}, "retry_policies[0]"),
        ({"cache": "30 days"}, "'cache'"),
        ({"outputs": ["a"], "property_files": {"m": "b/m.json"}}, "property_files['m']"),
    ],
)
def test_bad_processing_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            processing("prep", **kwargs)
    assert "'ml.prep'" in str(error.value) and field in str(error.value)


def test_spot_training_without_max_wait() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            SageMakerTrainingStepOperator(
                task_id="train",
                image_uri=IMAGE,
                entry_point=str(CODE / "train_src" / "train.py"),
                use_spot_instances=True,
            )
    assert "'ml.train'" in str(error.value) and "'max_wait_in_seconds'" in str(error.value)


def test_missing_script_is_refused_at_parse_time_naming_the_task() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, default_bucket="smpipe-golden"):
            SageMakerProcessingStepOperator(
                task_id="prep", image_uri=IMAGE, code="does/not/exist.py", command=["python3"]
            )
    assert "'ml.prep'" in str(error.value) and "field 'code'" in str(error.value)
    assert "does not exist" in str(error.value)
