"""The smpipe-local command: ready line, a working endpoint, clean stop on SIGTERM that kills jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from smpipe_local_helpers import definition, processing_step

SLEEPER = "import os, time\nprint(f'pid={os.getpid()}', flush=True)\ntime.sleep(600)\n"


def _client(endpoint: str, service: str) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_cli_serves_and_stops_cleanly(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_smpipe.local.cli",
        "--port",
        "0",
        "--state-dir",
        str(tmp_path),
    ]
    command += ["--throttle-rate", "1", "--fault-operations", "ListPipelines", "--strict"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("smpipe-local ready on http://127.0.0.1:")
        endpoint = line.rsplit(" ", 1)[-1]
        sm, s3, logs = (_client(endpoint, s) for s in ("sagemaker", "s3", "logs"))
        with pytest.raises(ClientError) as err:
            sm.list_pipelines()
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
        s3.create_bucket(Bucket="cli")
        s3.put_object(Bucket="cli", Key="code/sleep.py", Body=SLEEPER.encode())
        sm.create_pipeline(
            PipelineName="cli",
            RoleArn="arn:aws:iam::123456789012:role/r",
            PipelineDefinition=json.dumps(definition(processing_step("sleep", "s3://cli/code/sleep.py"))),
        )
        sm.start_pipeline_execution(PipelineName="cli")
        pid = None
        deadline = time.monotonic() + 20
        while pid is None and time.monotonic() < deadline:
            groups = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/ProcessingJobs")["logGroups"]
            if groups:
                events = logs.filter_log_events(logGroupName="/aws/sagemaker/ProcessingJobs")["events"]
                pid = next((int(e["message"][4:]) for e in events if e["message"].startswith("pid=")), None)
            time.sleep(0.2)
        assert pid is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        time.sleep(0.5)
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
        )
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
