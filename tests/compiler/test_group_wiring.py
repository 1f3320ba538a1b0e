"""How the group wires its tasks: launch upstream of the roots, reference edges, names, outside edges."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from compiler_support import IMAGE, ROLE, load_fixture_dag

from airflow_provider_smpipe import (
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    sagemaker_pipeline_task_group,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.model.naming import pipeline_name_for, step_name_for

START = pendulum.datetime(2026, 1, 1)


def test_fixture_dag_wiring() -> None:
    dag = load_fixture_dag("full_pipeline")
    upstream = {task_id: sorted(task.upstream_task_ids) for task_id, task in dag.task_dict.items()}
    assert upstream["ml.launch"] == []
    assert upstream["ml.prep"] == ["ml.launch"]
    # references added the edges: train reads prep's output, evaluate reads both.
    assert upstream["ml.train"] == ["ml.prep"]
    assert upstream["ml.evaluate"] == ["ml.prep", "ml.train"]
    assert upstream["ml.register"] == ["ml.check", "ml.train"]
    spec = build_pipeline_spec(dag.task_group_dict["ml"])
    assert spec.name == "full-pipeline-ml"
    depends = {step.name: step.depends_on for step in spec.steps}
    # a branch step does not depend on its condition: the condition holds it.
    assert depends["register"] == ("train",)
    assert depends["too_weak"] == ()
    assert [p.type for p in spec.parameters] == ["String", "Float", "Integer", "Boolean", "String"]


def test_outside_upstream_tasks_move_to_launch() -> None:
    with DAG("wiring", start_date=START, schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE) as group:
            prep = SageMakerProcessingStepOperator(task_id="prep", image_uri=IMAGE, entrypoint=["true"])
            start >> prep
        end = EmptyOperator(task_id="end")
        group >> end
    assert dag.task_dict["ml.prep"].upstream_task_ids == {"ml.launch"}
    assert dag.task_dict["ml.launch"].upstream_task_ids == {"start"}
    assert end.upstream_task_ids == {"ml.prep"}


def test_decorator_factory_builds_the_subclass() -> None:
    @sagemaker_pipeline_task_group(role_arn=ROLE, parameters={"X": 1})
    def training(group: SageMakerPipelineTaskGroup) -> None:
        SageMakerProcessingStepOperator(
            task_id="prep", image_uri=IMAGE, entrypoint=["true"], environment={"X": group.parameter("X")}
        )

    with DAG("decorated", start_date=START, schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        start >> training()
    group = dag.task_group_dict["training"]
    assert isinstance(group, SageMakerPipelineTaskGroup)
    assert dag.task_dict["training.launch"].upstream_task_ids == {"start"}


def test_names() -> None:
    assert pipeline_name_for("my_dag", "train.v2") == "my-dag-train-v2"
    long_name = pipeline_name_for("d" * 300, "g")
    assert len(long_name) <= 256 and long_name == pipeline_name_for("d" * 300, "g")
    assert step_name_for("ml.sub.task", "ml") == "sub-task"
    long_step = step_name_for("ml." + "x" * 100, "ml")
    assert len(long_step) == 64 and long_step != step_name_for("ml." + "x" * 99 + "y", "ml")
