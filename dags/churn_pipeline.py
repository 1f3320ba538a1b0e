"""Customer churn: a complete SageMaker pipeline written as Airflow tasks.

``upload_dataset`` puts the shipped CSV into S3 (when it is not there yet), then the ``churn`` group runs as ONE
SageMaker pipeline execution::

    preprocess -> train -> evaluate -> quality_gate --(auc >= MinAuc)--> register
                                                    \\--(otherwise)----> auc_too_low (fail step)

and ``report`` reads the training step's result from XCom. Every step task mirrors its SageMaker step and shows
the job's CloudWatch logs in its task log.

Deployment settings that must be known when the DAG is parsed come from environment variables (so parsing never
calls the Airflow API or AWS): ``SMPIPE_DEMO_ROLE_ARN``, ``SMPIPE_DEMO_BUCKET``, ``SMPIPE_DEMO_SKLEARN_IMAGE``.
Everything else is a run parameter (trigger the DAG with a config to change it).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_smpipe import (
    SageMakerConditionStepOperator,
    SageMakerFailStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTrainingStepOperator,
)
from airflow_provider_smpipe.model.references import execution_variable, join

log = logging.getLogger(__name__)

ROLE_ARN = os.environ.get("SMPIPE_DEMO_ROLE_ARN", "arn:aws:iam::123456789012:role/SmpipeDemoRole")
BUCKET = os.environ.get("SMPIPE_DEMO_BUCKET", "smpipe-demo")
# The SageMaker scikit-learn container (framework 1.2-1) in us-east-1; other regions use another registry account
# (see docs/running-on-aws.md). The local backend does not pull images: it runs the scripts with its own Python.
SKLEARN_IMAGE = os.environ.get(
    "SMPIPE_DEMO_SKLEARN_IMAGE",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
)
DATASET = Path(__file__).parent / "churn" / "data" / "churn.csv"
CODE = "churn/code"

with DAG(
    dag_id="churn_pipeline",
    description="Customer churn model: preprocess, train, evaluate, gate on AUC, register (SageMaker Pipelines)",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["smpipe", "example", "sagemaker"],
    params={
        "input_data_uri": Param(
            f"s3://{BUCKET}/churn/raw/", type="string", description="S3 prefix holding the raw churn CSV"
        ),
        "registry_uri": Param(
            f"s3://{BUCKET}/churn/registry",
            type="string",
            description="S3 prefix approved models are published under (one folder per execution)",
        ),
        "min_auc": Param(0.75, type="number", minimum=0, maximum=1, description="AUC needed to register"),
        "instance_type": Param("ml.m5.large", type="string", description="instance type of every job"),
        "algorithm": Param("gradient_boosting", enum=["gradient_boosting", "logistic_regression"]),
    },
) as dag:

    @task
    def upload_dataset() -> str:
        """Upload the shipped CSV to ``input_data_uri`` unless it is there; create the buckets the run uses."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        params = get_current_context()["params"]
        hook = S3Hook(aws_conn_id="aws_default")
        input_bucket, prefix = S3Hook.parse_s3_url(params["input_data_uri"])
        registry_bucket, _ = S3Hook.parse_s3_url(params["registry_uri"])
        for bucket in sorted({input_bucket, registry_bucket, BUCKET}):
            if not hook.check_for_bucket(bucket):
                log.info("Creating bucket %s", bucket)
                hook.create_bucket(bucket_name=bucket)
        key = f"{prefix.rstrip('/')}/{DATASET.name}".lstrip("/")
        if hook.check_for_key(key, bucket_name=input_bucket):
            log.info("s3://%s/%s already exists; not uploading", input_bucket, key)
        else:
            hook.load_file(filename=str(DATASET), key=key, bucket_name=input_bucket)
            log.info(
                "Uploaded %s (%d bytes) to s3://%s/%s",
                DATASET.name,
                DATASET.stat().st_size,
                input_bucket,
                key,
            )
        return f"s3://{input_bucket}/{key}"

    churn = SageMakerPipelineTaskGroup(
        "churn",
        role_arn=ROLE_ARN,
        default_bucket=BUCKET,
        pipeline_description="Customer churn model (Airflow DAG churn_pipeline)",
        parameters={
            "InputData": f"s3://{BUCKET}/churn/raw/",
            "RegistryUri": f"s3://{BUCKET}/churn/registry",
            "MinAuc": 0.75,
            "InstanceType": "ml.m5.large",
            "Algorithm": "gradient_boosting",
        },
        parameter_values={
            "InputData": "{{ params.input_data_uri }}",
            "RegistryUri": "{{ params.registry_uri }}",
            "MinAuc": "{{ params.min_auc }}",
            "InstanceType": "{{ params.instance_type }}",
            "Algorithm": "{{ params.algorithm }}",
        },
        tags={"project": "churn", "managed-by": "airflow"},
        poll_interval=5,
    )
    with churn:
        preprocess = SageMakerProcessingStepOperator(
            task_id="preprocess",
            image_uri=SKLEARN_IMAGE,
            code=f"{CODE}/preprocess.py",
            command=["python3"],
            arguments=["--validation-fraction", "0.15", "--test-fraction", "0.15"],
            inputs={"raw": churn.parameter("InputData")},
            outputs=["train", "validation", "test"],
            instance_type=churn.parameter("InstanceType"),
            max_runtime_in_seconds=1800,
        )
        train = SageMakerTrainingStepOperator(
            task_id="train",
            image_uri=SKLEARN_IMAGE,
            entry_point=f"{CODE}/train.py",
            hyperparameters={
                "algorithm": churn.parameter("Algorithm"),
                "n_estimators": 150,
                "max_depth": 3,
                "learning_rate": 0.05,
            },
            inputs={
                "train": preprocess.output_uri("train"),
                "validation": preprocess.output_uri("validation"),
            },
            instance_type=churn.parameter("InstanceType"),
            max_runtime_in_seconds=3600,
        )
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=SKLEARN_IMAGE,
            code=f"{CODE}/evaluate.py",
            command=["python3"],
            inputs={"model": train.model_artifacts, "test": preprocess.output_uri("test")},
            outputs=["evaluation"],
            property_files={"evaluation": "evaluation/evaluation.json"},
            instance_type=churn.parameter("InstanceType"),
        )
        auc = evaluate.property_value("evaluation", "metrics.auc.value")
        register = SageMakerProcessingStepOperator(
            task_id="register",
            image_uri=SKLEARN_IMAGE,
            code=f"{CODE}/register.py",
            command=["python3"],
            arguments=[
                "--model-name",
                "customer-churn",
                "--model-uri",
                train.model_artifacts,
                "--min-auc",
                churn.parameter("MinAuc"),
            ],
            inputs={"model": train.model_artifacts, "evaluation": evaluate.output_uri("evaluation")},
            outputs={
                "registry": join(
                    churn.parameter("RegistryUri"), execution_variable("PipelineExecutionId"), on="/"
                )
            },
            instance_type=churn.parameter("InstanceType"),
        )
        auc_too_low = SageMakerFailStepOperator(
            task_id="auc_too_low",
            error_message=join("test AUC ", auc, " is below MinAuc ", churn.parameter("MinAuc"), on=""),
        )
        quality_gate = SageMakerConditionStepOperator(
            task_id="quality_gate",
            conditions=[auc >= churn.parameter("MinAuc")],
            if_steps=[register],
            else_steps=[auc_too_low],
        )
        evaluate >> quality_gate >> [register, auc_too_low]

    def step_result(ti: Any, task_id: str) -> dict[str, Any]:
        """A step task's XCom result (the dict its trigger returned), logged as found."""
        value = ti.xcom_pull(task_ids=task_id)
        if isinstance(value, str):
            # Airflow 3.3.2 JSON-encodes XComs a trigger returns through TaskSuccessEvent once more than XComs
            # a worker pushes, so they come back as a string.
            log.warning("%s returned its result as a JSON string; decoding it", task_id)
            value = json.loads(value)
        if not isinstance(value, dict):
            log.warning("%s returned %r, not the step result dict", task_id, value)
            return {}
        log.info("%s returned keys %s", task_id, sorted(value))
        return value

    @task(trigger_rule="none_failed")
    def report() -> dict[str, Any]:
        """Read the training step's result (its task's XCom) and the evaluation's metrics after the pipeline."""
        ti = get_current_context()["ti"]
        trained = step_result(ti, "churn.train")
        evaluated = step_result(ti, "churn.evaluate")
        model_artifacts = trained.get("model_artifacts")
        if model_artifacts is None:
            log.warning("churn.train returned no 'model_artifacts'; its whole result: %r", trained)
        else:
            log.info("Model artifacts: %s", model_artifacts)
        metrics = (evaluated.get("property_files") or {}).get("evaluation", {}).get("metrics")
        if metrics is None:
            log.warning(
                "churn.evaluate returned no evaluation property file; its whole result: %r", evaluated
            )
        else:
            log.info("Test metrics: %s", {name: m.get("value") for name, m in metrics.items()})
        return {
            "model_artifacts": model_artifacts,
            "training_job": trained.get("job_name"),
            "metrics": metrics,
        }

    upload_dataset() >> churn >> report()
