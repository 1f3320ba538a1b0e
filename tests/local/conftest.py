"""Fixtures: one strict LocalBackend for the whole folder, seeded with the SDK fixtures' S3 objects."""

from __future__ import annotations

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
        root = FIXTURES / "s3" / BUCKET
        for path in sorted(root.rglob("*")):
            if path.is_file():
                s3.upload_file(str(path), BUCKET, path.relative_to(root).as_posix())
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
