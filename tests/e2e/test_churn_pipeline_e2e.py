"""The example churn DAG on real Airflow services and the local backend: every step task mirrors its step,
shows its job's output in the task log, hands its result to later tasks, and the else-branch fails the run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from e2e_support import CHURN_DAG, FollowedRun, follow

if TYPE_CHECKING:
    from airflow_provider_smpipe.demo.stack import AirflowStack

pytestmark = pytest.mark.e2e

STEPS = ["churn.preprocess", "churn.train", "churn.evaluate", "churn.quality_gate", "churn.register"]


def _xcom(demo_stack: AirflowStack, run: FollowedRun, task_id: str) -> Any:
    entry = demo_stack.api(
        "GET",
        f"/dags/{run.dag_id}/dagRuns/{run.run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"deserialize": "true"},
    )
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def test_the_run_succeeds_on_the_if_branch(churn_run: FollowedRun) -> None:
    assert churn_run.final_state == "success", churn_run.task_states
    assert churn_run.task_states == {
        "upload_dataset": "success",
        "churn.launch": "success",
        **dict.fromkeys(STEPS, "success"),
        "churn.auc_too_low": "skipped",
        "report": "success",
    }


def test_step_tasks_wait_in_the_triggerer(churn_run: FollowedRun) -> None:
    deferred = {c.task_id for c in churn_run.changes if c.new == "deferred"}
    assert set(STEPS) <= deferred, [(c.task_id, c.old, c.new) for c in churn_run.changes]


@pytest.mark.parametrize(
    ("task_id", "printed"),
    [
        ("churn.preprocess", "preprocessing done: 16 features"),
        ("churn.train", "validation auc:"),
        ("churn.evaluate", "test auc:"),
        ("churn.register", "registered customer-churn"),
    ],
)
def test_the_job_output_is_in_the_task_log(
    demo_stack: AirflowStack, churn_run: FollowedRun, task_id: str, printed: str
) -> None:
    assert printed in demo_stack.task_log(churn_run.dag_id, churn_run.run_id, task_id)


def test_report_reads_the_training_result(demo_stack: AirflowStack, churn_run: FollowedRun) -> None:
    report = _xcom(demo_stack, churn_run, "report")
    assert report["model_artifacts"].startswith("s3://smpipe-demo/")
    assert report["model_artifacts"].endswith("/output/model.tar.gz")
    assert report["training_job"] in report["model_artifacts"]
    assert 0.75 <= report["metrics"]["auc"]["value"] <= 1.0


def test_the_model_is_published_with_a_card(demo_stack: AirflowStack, churn_run: FollowedRun) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=demo_stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="smpipe-demo", Prefix="churn/registry/")["Contents"]]
    assert any(k.endswith("/model_card.json") for k in keys), keys
    assert any(k.endswith("/model.tar.gz") for k in keys), keys
    card_key = next(k for k in keys if k.endswith("/model_card.json"))
    card = json.loads(s3.get_object(Bucket="smpipe-demo", Key=card_key)["Body"].read())
    assert card["approval"]["status"] == "Approved"
    assert card["metrics"]["auc"]["value"] >= 0.75


def test_an_unreachable_threshold_takes_the_fail_branch(
    demo_stack: AirflowStack, churn_run: FollowedRun
) -> None:
    run_id = demo_stack.trigger(CHURN_DAG, conf={"min_auc": 0.99})
    failed = follow(demo_stack, CHURN_DAG, run_id)
    assert failed.final_state == "failed"
    assert failed.task_states["churn.quality_gate"] == "success"
    assert failed.task_states["churn.auc_too_low"] == "failed"
    assert failed.task_states["churn.register"] == "skipped"
    assert failed.task_states["report"] == "upstream_failed"
    assert "is below MinAuc 0.99" in demo_stack.task_log(CHURN_DAG, run_id, "churn.auc_too_low")
