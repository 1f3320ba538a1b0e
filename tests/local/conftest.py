"""Fixtures: one strict LocalBackend for the whole folder, seeded with the SDK fixtures' S3 objects."""

from __future__ import annotations

import tarfile
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from smpipe_local_helpers import BUCKET, FIXTURES

from airflow_provider_smpipe.local.server import LocalBackend

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    # strict: every SageMaker response is validated against botocore's output shapes by the server.
    with LocalBackend(port=0, state_dir=tmp_path_factory.mktemp("state"), strict=True) as local:
        s3 = local.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        # The objects the SDK uploaded while generating the definitions, as <bucket>/<key> members.
        with tarfile.open(FIXTURES / "s3-objects.tar.gz") as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member)
                if data is not None:
                    bucket, key = member.name.split("/", 1)
                    s3.put_object(Bucket=bucket, Key=key, Body=data.read())
        yield local
        assert local.validation_errors == []


@pytest.fixture(autouse=True)
def _no_drift(backend: LocalBackend) -> Iterator[None]:
    before = len(backend.validation_errors)
    yield
    assert backend.validation_errors[before:] == [], "a response did not match botocore's output shape"


@pytest.fixture
def sm(backend: LocalBackend) -> Any:
    return backend.client("sagemaker", config=Config(retries={"max_attempts": 1, "mode": "standard"}))


@pytest.fixture
def s3(backend: LocalBackend) -> Any:
    return backend.client("s3")


@pytest.fixture
def logs(backend: LocalBackend) -> Any:
    return backend.client("logs")
