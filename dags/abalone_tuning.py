"""Abalone age, tuned: a hyperparameter tuning job, then Lambda and Callback steps around the model registry.

::

    preprocess -> tune -> evaluate -> decide_approval (Lambda) -> register -> release_gate (Callback)

``tune`` runs training jobs over a search space and keeps the best by validation RMSE (the task log shows each
trial and its objective value); ``evaluate`` scores the best model on the test split; ``decide_approval`` is a
Lambda function (deployed from ``abalone/lambda/approval.py`` by the launch task) that turns the MSE into the
model package's approval status; ``release_gate`` is a Callback step whose answer this Airflow task computes: it
receives the model package ARN through the step's SQS message and answers with a release id that the XCom result
carries. ``prepare`` creates the input data and the callback queue before the pipeline starts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_smpipe import (
    ContinuousRange,
    IntegerRange,
    ProcessingInput,
    ProcessingOutput,
    SageMakerCallbackStepOperator,
    SageMakerLambdaStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerRegisterModelStepOperator,
    SageMakerTuningStepOperator,
)

log = logging.getLogger(__name__)

ROLE_ARN = os.environ.get("SMPIPE_DEMO_ROLE_ARN", "arn:aws:iam::123456789012:role/SmpipeDemoRole")
LAMBDA_ROLE_ARN = os.environ.get(
    "SMPIPE_DEMO_LAMBDA_ROLE_ARN", "arn:aws:iam::123456789012:role/SmpipeDemoLambdaRole"
)
BUCKET = os.environ.get("SMPIPE_DEMO_BUCKET", "smpipe-demo")
SKLEARN_IMAGE = os.environ.get(
    "SMPIPE_DEMO_SKLEARN_IMAGE",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
)
DATASET = Path(__file__).parent / "abalone" / "data" / "abalone-dataset.csv"
CODE = "abalone/code"
QUEUE_NAME = "abalone-release-gate"


def release_gate(arguments: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
    """The Callback step's answer: a release id for the registered model package (Airflow computes it)."""
    package = str(arguments["model_package_arn"])
    release_id = f"abalone-{package.rsplit('/', 1)[-1]}-{context['run_id'][:19]}"
    log.info("Releasing %s as %s", package, release_id)
    return {"release_id": release_id}


with DAG(
    dag_id="abalone_tuning",
    description="Abalone age model with hyperparameter tuning, a Lambda approval decision and a Callback gate",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["smpipe", "example", "sagemaker"],
    params={
        "input_data_uri": Param(f"s3://{BUCKET}/abalone/raw/abalone-dataset.csv", type="string"),
        "mse_threshold": Param(6.0, type="number", minimum=0, description="largest test MSE to approve"),
    },
) as dag:

    @task
    def prepare() -> dict[str, str]:
        """Upload the data set unless it is there, and create the callback queue unless it exists."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        params = get_current_context()["params"]
        s3 = S3Hook(aws_conn_id="aws_default")
        bucket, key = S3Hook.parse_s3_url(params["input_data_uri"])
        if not s3.check_for_bucket(bucket):
            s3.create_bucket(bucket_name=bucket)
        if not s3.check_for_key(key, bucket_name=bucket):
            s3.load_file(filename=str(DATASET), key=key, bucket_name=bucket)
        queue_url = SqsHook(aws_conn_id="aws_default").create_queue(QUEUE_NAME)["QueueUrl"]
        log.info("Data at s3://%s/%s, callback queue %s", bucket, key, queue_url)
        return {"queue_url": queue_url}

    abalone = SageMakerPipelineTaskGroup(
        "abalone",
        role_arn=ROLE_ARN,
        default_bucket=BUCKET,
        parameters={
            "InputData": f"s3://{BUCKET}/abalone/raw/abalone-dataset.csv",
            "MseThreshold": 6.0,
        },
        parameter_values={
            "InputData": "{{ params.input_data_uri }}",
            "MseThreshold": "{{ params.mse_threshold }}",
        },
        poll_interval=5,
    )
    with abalone:
        preprocess = SageMakerProcessingStepOperator(
            task_id="preprocess",
            image_uri=SKLEARN_IMAGE,
            code=f"{CODE}/preprocess.py",
            command=["python3"],
            inputs={
                "input": ProcessingInput(
                    source=abalone.parameter("InputData"), destination="/opt/ml/processing/input"
                )
            },
            outputs={
                name: ProcessingOutput(source=f"/opt/ml/processing/{name}")
                for name in ("train", "validation", "test", "batch")
            },
        )
        tune = SageMakerTuningStepOperator(
            task_id="tune",
            image_uri=SKLEARN_IMAGE,
            entry_point=f"{CODE}/train.py",
            hyperparameters={"n_estimators": 100},
            hyperparameter_ranges={
                "max_depth": IntegerRange(2, 5),
                "learning_rate": ContinuousRange(0.03, 0.3, scaling="Logarithmic"),
            },
            objective_metric_name="validation:rmse",
            objective_metric_regex=r"validation:rmse=([0-9\.]+)",
            objective_type="Minimize",
            strategy="Random",
            max_jobs=4,
            max_parallel_jobs=2,
            random_seed=7,
            inputs={
                "train": preprocess.output_uri("train"),
                "validation": preprocess.output_uri("validation"),
            },
        )
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=SKLEARN_IMAGE,
            code=f"{CODE}/evaluate.py",
            command=["python3"],
            inputs={
                "model": ProcessingInput(source=tune.model_artifacts, destination="/opt/ml/processing/model"),
                "test": ProcessingInput(
                    source=preprocess.output_uri("test"), destination="/opt/ml/processing/test"
                ),
            },
            outputs={"evaluation": ProcessingOutput(source="/opt/ml/processing/evaluation")},
            property_files={"evaluation": "evaluation/evaluation.json"},
        )
        decide_approval = SageMakerLambdaStepOperator(
            task_id="decide_approval",
            handler_file="abalone/lambda/approval.py",
            handler="approval.lambda_handler",
            function_name="smpipe-abalone-approval",
            execution_role_arn=LAMBDA_ROLE_ARN,
            inputs={
                "mse": evaluate.property_value("evaluation", "regression_metrics.mse.value"),
                "threshold": abalone.parameter("MseThreshold"),
            },
            outputs={"approval_status": "String", "mse_margin": "Float"},
        )
        register = SageMakerRegisterModelStepOperator(
            task_id="register",
            model_package_group_name="AbaloneTunedModels",
            image_uri=SKLEARN_IMAGE,
            model_data=tune.model_artifacts,
            entry_point=f"{CODE}/inference.py",
            approval_status=decide_approval.output_parameter("approval_status"),
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=["ml.m5.large"],
            transform_instances=["ml.m5.large"],
            model_metrics={"model_quality_statistics": evaluate.property_file_uri("evaluation")},
        )
        SageMakerCallbackStepOperator(
            task_id="release_gate",
            sqs_queue_url="{{ ti.xcom_pull(task_ids='prepare')['queue_url'] }}",
            inputs={"model_package_arn": register.model_package_arn},
            outputs={"release_id": "String"},
            callback=release_gate,
        )

    prepare() >> abalone
