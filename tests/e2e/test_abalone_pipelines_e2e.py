"""AWS's reference pipeline shape with the native operators, on real Airflow services and the local backend.

``abalone_pipeline``: preprocess -> train -> evaluate -> condition -> register, create model -> batch transform,
with no bucket named (the account's default bucket is resolved through the connection's endpoint).
``abalone_tuning``: tuning -> evaluate -> Lambda -> register -> Callback answered by the Airflow task.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from e2e_support import FollowedRun, follow

if TYPE_CHECKING:
    from airflow_provider_smpipe.demo.stack import AirflowStack

pytestmark = pytest.mark.e2e

PIPELINE_DAG = "abalone_pipeline"
TUNING_DAG = "abalone_tuning"


def _client(stack: AirflowStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _xcom(stack: AirflowStack, run: FollowedRun, task_id: str) -> Any:
    entry = stack.api(
        "GET",
        f"/dags/{run.dag_id}/dagRuns/{run.run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"deserialize": "true"},
    )
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def _read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def abalone_run(demo_stack: AirflowStack) -> FollowedRun:
    demo_stack.wait_for_dag(PIPELINE_DAG)
    demo_stack.unpause(PIPELINE_DAG)
    return follow(demo_stack, PIPELINE_DAG, demo_stack.trigger(PIPELINE_DAG))


@pytest.fixture(scope="module")
def tuning_run(demo_stack: AirflowStack) -> FollowedRun:
    demo_stack.wait_for_dag(TUNING_DAG)
    demo_stack.unpause(TUNING_DAG)
    return follow(demo_stack, TUNING_DAG, demo_stack.trigger(TUNING_DAG))


def test_every_task_of_the_reference_pipeline_succeeds(abalone_run: FollowedRun) -> None:
    assert abalone_run.final_state == "success", abalone_run.task_states
    assert abalone_run.task_states == {
        "upload_dataset": "success",
        "abalone.launch": "success",
        "abalone.preprocess": "success",
        "abalone.train": "success",
        "abalone.evaluate": "success",
        "abalone.check": "success",
        "abalone.register": "success",
        "abalone.create_model": "success",
        "abalone.transform": "success",
        "abalone.mse_too_high": "skipped",
        "report": "success",
    }


def test_the_model_package_has_its_metrics_and_approval_status(
    demo_stack: AirflowStack, abalone_run: FollowedRun
) -> None:
    registered = _xcom(demo_stack, abalone_run, "abalone.register")
    sagemaker, s3 = _client(demo_stack, "sagemaker"), _client(demo_stack, "s3")
    package = sagemaker.describe_model_package(ModelPackageName=registered["model_package_arn"])
    assert package["ModelPackageGroupName"] == "AbaloneModelPackageGroup"
    assert package["ModelApprovalStatus"] == "PendingManualApproval" == registered["approval_status"]
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    report = json.loads(_read(s3, statistics["S3Uri"]))
    mse = report["regression_metrics"]["mse"]["value"]
    assert 0 < mse <= 6.0
    listed = sagemaker.list_model_packages(ModelPackageGroupName="AbaloneModelPackageGroup")
    assert registered["model_package_arn"] in [
        p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"]
    ]
    # With no bucket named, the code went to the account's default bucket, resolved through the endpoint.
    assert package["InferenceSpecification"]["Containers"][0]["Environment"][
        "SAGEMAKER_SUBMIT_DIRECTORY"
    ].startswith("s3://sagemaker-us-east-1-123456789012/")


def test_the_transform_writes_one_prediction_per_input_record(
    demo_stack: AirflowStack, abalone_run: FollowedRun
) -> None:
    s3 = _client(demo_stack, "s3")
    preprocessed = _xcom(demo_stack, abalone_run, "abalone.preprocess")
    transformed = _xcom(demo_stack, abalone_run, "abalone.transform")
    batch_uri = preprocessed["outputs"]["batch"].rstrip("/")
    output_uri = transformed["outputs"]["output"].rstrip("/")
    records = _read(s3, f"{batch_uri}/batch.csv").decode().splitlines()
    predictions = _read(s3, f"{output_uri}/batch.csv.out").decode().splitlines()
    assert len(records) > 500
    assert len(predictions) == len(records)
    assert all(0 < float(value) < 30 for value in predictions)
    log = demo_stack.task_log(PIPELINE_DAG, abalone_run.run_id, "abalone.transform")
    assert "batch.csv" in log  # the transform job's own log lines reached the task log


def test_the_report_reads_the_step_results(demo_stack: AirflowStack, abalone_run: FollowedRun) -> None:
    report = _xcom(demo_stack, abalone_run, "report")
    assert report["model_package_arn"].startswith("arn:aws:sagemaker:us-east-1:123456789012:model-package/")
    assert report["transform_output"].startswith("s3://")
    assert 0 < report["mse"] <= 6.0


def test_the_tuned_pipeline_succeeds_with_lambda_and_callback(
    demo_stack: AirflowStack, tuning_run: FollowedRun
) -> None:
    assert tuning_run.final_state == "success", tuning_run.task_states
    assert set(tuning_run.task_states.values()) == {"success"}, tuning_run.task_states


def test_the_tuning_task_log_shows_every_trial_and_the_best(
    demo_stack: AirflowStack, tuning_run: FollowedRun
) -> None:
    tuned = _xcom(demo_stack, tuning_run, "abalone.tune")
    log = demo_stack.task_log(TUNING_DAG, tuning_run.run_id, "abalone.tune")
    assert tuned["training_jobs"] == 4
    assert log.count(" started: ") == 4, log
    assert f"best training job: {tuned['best_training_job']}" in log
    assert tuned["objective_metric"] == "validation:rmse"
    assert tuned["best_model_artifacts"].endswith(f"{tuned['best_training_job']}/output/model.tar.gz")
    sagemaker = _client(demo_stack, "sagemaker")
    trials = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuned["tuning_job_name"], SortBy="FinalObjectiveMetricValue"
    )["TrainingJobSummaries"]
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert tuned["objective_value"] == pytest.approx(min(values))


def test_the_lambda_decides_the_approval_and_the_callback_is_answered_by_airflow(
    demo_stack: AirflowStack, tuning_run: FollowedRun
) -> None:
    decided = _xcom(demo_stack, tuning_run, "abalone.decide_approval")
    registered = _xcom(demo_stack, tuning_run, "abalone.register")
    released = _xcom(demo_stack, tuning_run, "abalone.release_gate")
    assert decided["outputs"]["approval_status"] == "Approved"
    assert registered["approval_status"] == "Approved"
    package_id = registered["model_package_arn"].rsplit("/", 1)[-1]
    assert released["outputs"]["release_id"].startswith(f"abalone-{package_id}-")
    log = demo_stack.task_log(TUNING_DAG, tuning_run.run_id, "abalone.release_gate")
    assert "Releasing" in log
