"""Fixtures shared by the test folders: a moto server reached through an Airflow AWS connection."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

MOTO_CONN_ID = "smpipe_moto"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """Start one ThreadedMotoServer for the session and point an Airflow connection at it."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ[f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": url, "region_name": "us-east-1"}}
    )
    yield url
    server.stop()
