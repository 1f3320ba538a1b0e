"""Bad processing/training arguments are refused at parse time naming the task and field; escape-hatch factories
that read steps not upstream of them are refused when the pipeline is compiled, before anything reaches AWS."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import BUCKET, CODE, IMAGE, ROLE

from airflow_provider_smpipe import (
    ProcessingInput,
    ProcessingOutput,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerStepOperator,
    SageMakerTrainingStepOperator,
    TrainingInput,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.exceptions import PipelineDefinitionError

START = pendulum.datetime(2026, 1, 1)
SCRIPT = str(CODE / "prep.py")


def _processing(**kwargs: Any) -> None:
    with DAG("bad", start_date=START, schedule=None), SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
        kwargs.setdefault("entrypoint", ["python3", "-c", "print(1)"])
        SageMakerProcessingStepOperator(task_id="prep", image_uri=IMAGE, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        (
            {"inputs": {"raw": ProcessingInput("s3://b/raw", destination="/data/raw")}},
            "inputs['raw'].destination",
            "/opt/ml/processing/",
        ),
        (
            {"inputs": {"raw": ProcessingInput("s3://b/raw", destination="/opt/ml/processing/../x")}},
            "inputs['raw'].destination",
            "/opt/ml/processing/",
        ),
        (
            {"inputs": {"raw": ProcessingInput("s3://b/raw", mode="FastFile")}},
            "inputs['raw'].mode",
            "training",
        ),
        ({"inputs": {"raw": ProcessingInput("s3://b/raw", mode="Stream")}}, "inputs['raw'].mode", "'Pipe'"),
        (
            {"inputs": {"raw": ProcessingInput("s3://b/raw", distribution="Sharded")}},
            "inputs['raw'].distribution",
            "ShardedByS3Key",
        ),
        ({"inputs": {"raw": ProcessingInput(None)}}, "inputs['raw']", "'source'"),
        (
            {"outputs": {"out": ProcessingOutput(source="/tmp/out")}},
            "outputs['out'].source",
            "/opt/ml/processing/",
        ),
        (
            {"outputs": {"out": ProcessingOutput(upload_mode="Streaming")}},
            "outputs['out'].upload_mode",
            "Continuous",
        ),
        (
            {
                "inputs": {"a": ProcessingInput("s3://b/a", destination="/opt/ml/processing/data")},
                "outputs": {"b": ProcessingOutput(source="/opt/ml/processing/data")},
            },
            "outputs['b'].source",
            "both use the container path",
        ),
        ({"inputs": {"a/b": "s3://b/a"}}, "'inputs'", "'a/b'"),
        (
            {"entrypoint": None, "code": SCRIPT, "command": ["python3"], "inputs": {"code": "s3://b/mine"}},
            "'inputs'",
            "'code'",
        ),
        (
            {
                "entrypoint": None,
                "code": SCRIPT,
                "command": ["python3"],
                "inputs": {"lib": ProcessingInput("s3://b/lib", destination="/opt/ml/processing/input/code")},
            },
            "inputs['lib'].destination",
            "step's code",
        ),
    ],
)
def test_bad_processing_io_names_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(PipelineDefinitionError) as error:
        _processing(**kwargs)
    message = str(error.value)
    assert "'ml.prep'" in message and field in message and words in message, message


def test_entrypoint_steps_may_name_an_input_code() -> None:
    # Only a step with `code` has the provider's own "code" input.
    _processing(inputs={"code": "s3://b/code"})


def test_an_input_may_hold_the_code_directory_as_in_aws_examples() -> None:
    # AWS's abalone example mounts its input at /opt/ml/processing/input; the script goes to .../input/code.
    _processing(
        entrypoint=None,
        code=SCRIPT,
        command=["python3"],
        inputs={"input": ProcessingInput("s3://b/raw", destination="/opt/ml/processing/input")},
    )


def _training(**kwargs: Any) -> None:
    with DAG("bad", start_date=START, schedule=None), SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
        SageMakerTrainingStepOperator(task_id="train", image_uri=IMAGE, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"inputs": {"train": TrainingInput("s3://b/t", input_mode="Stream")}}, "inputs['train'].input_mode"),
        ({"inputs": {"train": TrainingInput("s3://b/t", distribution="x")}}, "inputs['train'].distribution"),
        ({"inputs": {"train": TrainingInput("s3://b/t", compression="Gzip")}}, "inputs['train'].compression"),
        ({"inputs": {"bad channel": "s3://b/t"}}, "'inputs'"),
        (
            {
                "inputs": {"code": "s3://b/t"},
                "entry_point": "train.py",
                "source_dir": str(CODE / "train_src"),
            },
            "'inputs'",
        ),
        ({"keep_alive_period_in_seconds": 4000}, "'keep_alive_period_in_seconds'"),
        ({"instance_count": 0}, "'instance_count'"),
        ({"max_runtime_in_seconds": 0}, "'max_runtime_in_seconds'"),
        ({"source_dir": "src"}, "'source_dir'"),
        ({"entry_point": ""}, "'entry_point'"),
        ({"checkpoint_local_path": "/tmp/ckpt", "checkpoint_s3_uri": "s3://b/c"}, "'checkpoint_local_path'"),
        ({"checkpoint_local_path": "/opt/ml/checkpoints"}, "'checkpoint_local_path'"),
        (
            {"use_spot_instances": True, "max_wait_in_seconds": 60, "max_runtime_in_seconds": 120},
            "'max_wait_in_seconds'",
        ),
    ],
)
def test_bad_training_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(PipelineDefinitionError) as error:
        _training(**kwargs)
    assert "'ml.train'" in str(error.value) and field in str(error.value), str(error.value)


def test_image_only_training_needs_no_script() -> None:
    _training(inputs={"code": "s3://b/code", "train": TrainingInput("s3://b/t", content_type="text/csv")})


# -- escape hatch: checked when the pipeline is compiled -------------------------------------------------------


def _sdk_processing_step(
    ctx: Any, arguments: list[Any] | None = None, depends_on: list[str] | None = None
) -> Any:
    from sagemaker.core.processing import Processor
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = Processor(
        role=ctx.role_arn,
        image_uri=IMAGE,
        entrypoint=["python3", "-c", "print(1)"],
        instance_type="ml.m5.large",
        instance_count=1,
        sagemaker_session=ctx.session,
    )
    return ProcessingStep(
        name=ctx.step_name, step_args=processor.run(arguments=arguments), depends_on=depends_on
    )


def _group_with_custom(
    factory: Any, *, declare: bool = False, edge: bool = False
) -> SageMakerPipelineTaskGroup:
    with DAG("hatch", start_date=START, schedule=None):
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, default_bucket=BUCKET) as group:
            prep = SageMakerProcessingStepOperator(
                task_id="prep", image_uri=IMAGE, entrypoint=["python3", "-c", "print(1)"], outputs=["data"]
            )
            custom = SageMakerStepOperator(
                task_id="custom",
                step_factory=factory,
                upstream_references=[prep.output_uri("data")] if declare else None,
            )
            if edge:
                prep >> custom
    return group


def test_factory_reading_an_undeclared_step_with_ctx_step(aws: Any) -> None:
    def factory(ctx: Any) -> Any:
        prep = ctx.step("ml.prep")
        return _sdk_processing_step(ctx, [prep.properties.ProcessingJobName])

    with pytest.raises(PipelineDefinitionError) as error:
        compile_definition(build_pipeline_spec(_group_with_custom(factory)), aws)
    message = str(error.value)
    assert "'ml.custom'" in message and "'upstream_references'" in message and "'ml.prep'" in message


def test_factory_resolving_an_undeclared_reference(aws: Any) -> None:
    from airflow_provider_smpipe.model.references import StepOutputRef

    def factory(ctx: Any) -> Any:
        return _sdk_processing_step(ctx, [ctx.resolve(StepOutputRef("ml.prep", "data"))])

    with pytest.raises(PipelineDefinitionError) as error:
        compile_definition(build_pipeline_spec(_group_with_custom(factory)), aws)
    assert "'ml.custom'" in str(error.value) and "'upstream_references'" in str(error.value)


def test_built_step_referring_to_a_step_that_is_not_upstream(aws: Any) -> None:
    # The factory never asks ctx for the step: it writes the reference (or DependsOn) itself.
    def by_reference(ctx: Any) -> Any:
        from sagemaker.core.workflow.properties import Properties

        job = Properties(
            step_name="prep", path="ProcessingJobName", shape_name="DescribeProcessingJobResponse"
        )
        return _sdk_processing_step(ctx, ["--after", job])

    def by_depends_on(ctx: Any) -> Any:
        return _sdk_processing_step(ctx, depends_on=["prep"])

    for factory in (by_reference, by_depends_on):
        with pytest.raises(PipelineDefinitionError) as error:
            compile_definition(build_pipeline_spec(_group_with_custom(factory)), aws)
        message = str(error.value)
        assert "'ml.custom'" in message and "'upstream_references'" in message and "'ml.prep'" in message


@pytest.mark.parametrize(("declare", "edge"), [(True, False), (False, True)])
def test_factory_reading_an_upstream_step_compiles(aws: Any, declare: bool, edge: bool) -> None:
    def factory(ctx: Any) -> Any:
        prep = ctx.step("ml.prep")
        return _sdk_processing_step(ctx, [prep.properties.ProcessingJobName])

    definition = compile_definition(
        build_pipeline_spec(_group_with_custom(factory, declare=declare, edge=edge)), aws
    )
    assert '"Get": "Steps.prep.ProcessingJobName"' in definition


def test_factory_returning_none(aws: Any) -> None:
    with pytest.raises(PipelineDefinitionError) as error:
        compile_definition(build_pipeline_spec(_group_with_custom(lambda ctx: None)), aws)
    assert (
        "'ml.custom'" in str(error.value)
        and "'step_factory'" in str(error.value)
        and "None" in str(error.value)
    )


def test_factory_returning_a_step_collection(aws: Any) -> None:
    """A collection (``MonitorBatchTransformStep``, ...) puts steps named ``<name>-...`` in the pipeline and none
    named after the task, which would wait for a step that never runs."""

    def factory(ctx: Any) -> Any:
        from sagemaker.mlops.workflow.fail_step import FailStep
        from sagemaker.mlops.workflow.step_collections import StepCollection

        return StepCollection(name=ctx.step_name, steps=[FailStep(name=f"{ctx.step_name}-stop")])

    with pytest.raises(
        PipelineDefinitionError, match=r"task 'ml\.custom' field 'step_factory': .*StepCollection"
    ):
        compile_definition(build_pipeline_spec(_group_with_custom(factory)), aws)
