from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

CODE = Path(__file__).parent / "code"
BUCKET = "smpipe-golden"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.4"


@pytest.fixture
def aws() -> Iterator[object]:
    """moto for the S3 uploads the SDK makes while compiling."""
    from moto import mock_aws

    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    with mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield boto3.Session()
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


FIXTURE_DAGS = Path(__file__).parents[1] / "fixtures" / "dags"


def load_fixture_dag(dag_id: str, file_name: str | None = None) -> Any:
    """Parse a DAG file of tests/fixtures/dags the way the DAG processor does."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(FIXTURE_DAGS / f"{file_name or dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]
