"""Abalone age: AWS's reference SageMaker pipeline, written as Airflow tasks with the native step operators.

The shape of AWS's "preprocess, train, evaluate, condition, register, create model, batch transform" example::

    preprocess -> train -> evaluate -> check --(mse <= MseThreshold)--> register, create_model -> transform
                                             \\--(otherwise)----------> mse_too_high (fail step)

``upload_dataset`` puts the shipped CSV into S3 first; ``report`` reads the model package and the transform
output from XCom afterwards. The scripts in ``abalone/code`` are AWS's (preprocess and evaluate as published,
with scikit-learn in place of the XGBoost container for training so that they also run on the local backend).
The group names no bucket: code and outputs go to the account's ``sagemaker-<region>-<account>`` bucket.

Deployment settings known at parse time come from environment variables (``SMPIPE_DEMO_ROLE_ARN``,
``SMPIPE_DEMO_BUCKET``, ``SMPIPE_DEMO_SKLEARN_IMAGE``); everything else is a run parameter.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_smpipe import (
    ProcessingInput,
    ProcessingOutput,
    SageMakerConditionStepOperator,
    SageMakerFailStepOperator,
    SageMakerModelStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerRegisterModelStepOperator,
    SageMakerTrainingStepOperator,
    SageMakerTransformStepOperator,
    join,
)

log = logging.getLogger(__name__)

ROLE_ARN = os.environ.get("SMPIPE_DEMO_ROLE_ARN", "arn:aws:iam::123456789012:role/SmpipeDemoRole")
BUCKET = os.environ.get("SMPIPE_DEMO_BUCKET", "smpipe-demo")
# The SageMaker scikit-learn container (framework 1.2-1) in us-east-1; see docs/running-on-aws.md for others.
SKLEARN_IMAGE = os.environ.get(
    "SMPIPE_DEMO_SKLEARN_IMAGE",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
)
DATASET = Path(__file__).parent / "abalone" / "data" / "abalone-dataset.csv"
CODE = "abalone/code"

with DAG(
    dag_id="abalone_pipeline",
    description="Abalone age model: preprocess, train, evaluate, gate on MSE, register, create model, batch "
    "transform (AWS's reference SageMaker pipeline)",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["smpipe", "example", "sagemaker"],
    params={
        "input_data_uri": Param(
            f"s3://{BUCKET}/abalone/raw/abalone-dataset.csv", type="string", description="the raw CSV in S3"
        ),
        "mse_threshold": Param(6.0, type="number", minimum=0, description="largest test MSE to register"),
        "approval_status": Param("PendingManualApproval", enum=["PendingManualApproval", "Approved"]),
        "instance_type": Param("ml.m5.large", type="string", description="instance type of every job"),
    },
) as dag:

    @task
    def upload_dataset() -> str:
        """Upload the shipped CSV to ``input_data_uri`` unless it is there (creating the bucket if needed)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        params = get_current_context()["params"]
        hook = S3Hook(aws_conn_id="aws_default")
        bucket, key = S3Hook.parse_s3_url(params["input_data_uri"])
        if not hook.check_for_bucket(bucket):
            hook.create_bucket(bucket_name=bucket)
        if hook.check_for_key(key, bucket_name=bucket):
            log.info("s3://%s/%s already exists; not uploading", bucket, key)
        else:
            hook.load_file(filename=str(DATASET), key=key, bucket_name=bucket)
            log.info("Uploaded %s to s3://%s/%s", DATASET.name, bucket, key)
        return f"s3://{bucket}/{key}"

    abalone = SageMakerPipelineTaskGroup(
        "abalone",
        role_arn=ROLE_ARN,
        pipeline_description="Abalone age model (Airflow DAG abalone_pipeline)",
        parameters={
            "InputData": f"s3://{BUCKET}/abalone/raw/abalone-dataset.csv",
            "MseThreshold": 6.0,
            "ModelApprovalStatus": "PendingManualApproval",
            "InstanceType": "ml.m5.large",
        },
        parameter_values={
            "InputData": "{{ params.input_data_uri }}",
            "MseThreshold": "{{ params.mse_threshold }}",
            "ModelApprovalStatus": "{{ params.approval_status }}",
            "InstanceType": "{{ params.instance_type }}",
        },
        tags={"project": "abalone", "managed-by": "airflow"},
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
                "train": ProcessingOutput(source="/opt/ml/processing/train"),
                "validation": ProcessingOutput(source="/opt/ml/processing/validation"),
                "test": ProcessingOutput(source="/opt/ml/processing/test"),
                "batch": ProcessingOutput(source="/opt/ml/processing/batch"),
            },
            instance_type=abalone.parameter("InstanceType"),
        )
        train = SageMakerTrainingStepOperator(
            task_id="train",
            image_uri=SKLEARN_IMAGE,
            entry_point=f"{CODE}/train.py",
            hyperparameters={"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1, "subsample": 0.8},
            inputs={
                "train": preprocess.output_uri("train"),
                "validation": preprocess.output_uri("validation"),
            },
            instance_type=abalone.parameter("InstanceType"),
            max_runtime_in_seconds=3600,
        )
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=SKLEARN_IMAGE,
            code=f"{CODE}/evaluate.py",
            command=["python3"],
            inputs={
                "model": ProcessingInput(
                    source=train.model_artifacts, destination="/opt/ml/processing/model"
                ),
                "test": ProcessingInput(
                    source=preprocess.output_uri("test"), destination="/opt/ml/processing/test"
                ),
            },
            outputs={"evaluation": ProcessingOutput(source="/opt/ml/processing/evaluation")},
            property_files={"evaluation": "evaluation/evaluation.json"},
            instance_type=abalone.parameter("InstanceType"),
        )
        mse = evaluate.property_value("evaluation", "regression_metrics.mse.value")
        register = SageMakerRegisterModelStepOperator(
            task_id="register",
            model_package_group_name="AbaloneModelPackageGroup",
            image_uri=SKLEARN_IMAGE,
            model_data=train.model_artifacts,
            entry_point=f"{CODE}/inference.py",
            approval_status=abalone.parameter("ModelApprovalStatus"),
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=["ml.t2.medium", "ml.m5.large"],
            transform_instances=["ml.m5.large"],
            model_metrics={"model_quality_statistics": evaluate.property_file_uri("evaluation")},
            customer_metadata={"dag": "abalone_pipeline"},
            description="Gradient-boosted regressor of abalone rings",
        )
        create_model = SageMakerModelStepOperator(
            task_id="create_model",
            image_uri=SKLEARN_IMAGE,
            model_data=train.model_artifacts,
            entry_point=f"{CODE}/inference.py",
        )
        transform = SageMakerTransformStepOperator(
            task_id="transform",
            model_name=create_model.model_name,
            data=preprocess.output_uri("batch"),
            content_type="text/csv",
            split_type="Line",
            batch_strategy="MultiRecord",
            assemble_with="Line",
            accept="text/csv",
            instance_type=abalone.parameter("InstanceType"),
        )
        mse_too_high = SageMakerFailStepOperator(
            task_id="mse_too_high",
            error_message=join(
                "test MSE ", mse, " is above MseThreshold ", abalone.parameter("MseThreshold")
            ),
        )
        check = SageMakerConditionStepOperator(
            task_id="check",
            conditions=[mse <= abalone.parameter("MseThreshold")],
            if_steps=[register, create_model, transform],
            else_steps=[mse_too_high],
        )
        evaluate >> check >> [register, create_model, transform, mse_too_high]

    @task(trigger_rule="none_failed")
    def report() -> dict[str, Any]:
        """Read what the pipeline produced from its step tasks' XCom results."""
        ti = get_current_context()["ti"]
        registered = ti.xcom_pull(task_ids="abalone.register") or {}
        transformed = ti.xcom_pull(task_ids="abalone.transform") or {}
        evaluated = ti.xcom_pull(task_ids="abalone.evaluate") or {}
        metrics = (evaluated.get("property_files") or {}).get("evaluation", {})
        summary = {
            "model_package_arn": registered.get("model_package_arn"),
            "approval_status": registered.get("approval_status"),
            "transform_output": (transformed.get("outputs") or {}).get("output"),
            "mse": (metrics.get("regression_metrics") or {}).get("mse", {}).get("value"),
        }
        log.info("Abalone pipeline produced %s", summary)
        return summary

    upload_dataset() >> abalone >> report()
