"""A daily SageMaker pipeline with one step built directly with the SageMaker SDK (the escape hatch).

``collect`` is an ordinary processing step; ``summarize`` is a ``SageMakerStepOperator`` whose ``step_factory``
builds a ``ProcessingStep`` from a ``ScriptProcessor`` itself. The factory runs only when the launch task compiles
the pipeline, so the SDK is imported inside it and DAG parsing stays fast. Any step the SDK can build (tuning,
transform, model registration, Lambda, EMR...) can be written this way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_smpipe import (
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerStepOperator,
)

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.context import CompileContext

ROLE_ARN = os.environ.get("SMPIPE_DEMO_ROLE_ARN", "arn:aws:iam::123456789012:role/SmpipeDemoRole")
BUCKET = os.environ.get("SMPIPE_DEMO_BUCKET", "smpipe-demo")
SKLEARN_IMAGE = os.environ.get(
    "SMPIPE_DEMO_SKLEARN_IMAGE",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
)
CODE = Path(__file__).parent / "escape_hatch" / "code"

with DAG(
    dag_id="scheduled_escape_hatch",
    description="Daily events summary; one step built with the SageMaker SDK through step_factory",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule="@daily",
    catchup=False,
    max_active_runs=1,
    tags=["smpipe", "example", "sagemaker"],
) as dag:
    daily = SageMakerPipelineTaskGroup(
        "daily",
        role_arn=ROLE_ARN,
        default_bucket=BUCKET,
        parameters={"ReportTitle": "Daily events"},
        poll_interval=5,
    )
    with daily:
        collect = SageMakerProcessingStepOperator(
            task_id="collect",
            image_uri=SKLEARN_IMAGE,
            code="escape_hatch/code/collect.py",
            command=["python3"],
            arguments=["--date", "{{ ds }}"],
            outputs=["events"],
        )
        events = collect.output_uri("events")

        def build_summary_step(ctx: CompileContext) -> Any:
            """Build the ``summarize`` step with the SDK (runs in the launch task, never at parse time)."""
            from sagemaker.core.processing import ScriptProcessor
            from sagemaker.core.shapes import (
                ProcessingInput,
                ProcessingOutput,
                ProcessingS3Input,
                ProcessingS3Output,
            )
            from sagemaker.core.workflow.execution_variables import ExecutionVariables
            from sagemaker.core.workflow.functions import Join
            from sagemaker.mlops.workflow.steps import ProcessingStep

            processor = ScriptProcessor(
                role=ctx.role_arn,
                image_uri=SKLEARN_IMAGE,
                command=["python3"],
                instance_type="ml.m5.large",
                instance_count=1,
                sagemaker_session=ctx.session,
            )
            step_args = processor.run(
                code=str(CODE / "summarize.py"),
                arguments=["--title", ctx.parameter("ReportTitle")],
                inputs=[
                    ProcessingInput(
                        input_name="events",
                        s3_input=ProcessingS3Input(
                            s3_uri=ctx.resolve(events),
                            local_path="/opt/ml/processing/input/events",
                            s3_data_type="S3Prefix",
                            s3_input_mode="File",
                        ),
                    )
                ],
                outputs=[
                    ProcessingOutput(
                        output_name="summary",
                        s3_output=ProcessingS3Output(
                            s3_uri=Join(
                                on="/",
                                values=[
                                    "s3:/",
                                    ctx.default_bucket,
                                    "daily-summary",
                                    ExecutionVariables.PIPELINE_EXECUTION_ID,
                                ],
                            ),
                            local_path="/opt/ml/processing/output/summary",
                            s3_upload_mode="EndOfJob",
                        ),
                    )
                ],
            )
            return ProcessingStep(name=ctx.step_name, step_args=step_args)

        summarize = SageMakerStepOperator(
            task_id="summarize",
            step_factory=build_summary_step,
            upstream_references=[events],
        )
