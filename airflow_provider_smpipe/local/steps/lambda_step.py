"""Lambda steps: run the function's handler with the local Python, the step's inputs as the event.

moto stores Lambda functions but cannot invoke them without Docker, so the runner takes the function's code zip,
handler, timeout and environment from moto's Lambda backend and runs the handler in a subprocess (see
:mod:`airflow_provider_smpipe.local.lambda_runtime`). What the handler prints goes to CloudWatch Logs, group
``/aws/lambda/<function>``, one stream per invocation, between Lambda's START/END/REPORT lines. The outputs are
the declared keys of the returned dict; a missing one fails the step. As on AWS, a stop of the execution waits
for the function to end (the step then ends Stopped), and a function that outlives its timeout fails the step.
"""

from __future__ import annotations

import collections
import io
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_smpipe.local.expressions import to_text
from airflow_provider_smpipe.local.jobs import JobContext
from airflow_provider_smpipe.local.jobs.base import base_environment
from airflow_provider_smpipe.local.logs import JobLogStream
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv
from airflow_provider_smpipe.model.output_parameters import output_value_text, typed_output_value

RUNTIME_SCRIPT = Path(__file__).resolve().parents[1] / "lambda_runtime.py"
#: Lines of the function's output kept for the failure reason.
_TAIL_LINES = 20


class FunctionNotFoundError(Exception):
    """No Lambda function has the step's ARN."""


@dataclass
class Invocation:
    """The outcome of one local invocation."""

    payload: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    tail: list[str] = field(default_factory=list)


def find_function(function_arn: str, account: str, region: str) -> Any:
    """The function in moto's Lambda backend (the ARN's account and region; a version or alias is honoured)."""
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.awslambda.models import lambda_backends

    parts = function_arn.split(":")
    if len(parts) >= 7 and parts[2] == "lambda":
        region, account = parts[3] or region, parts[4] or account
    try:
        return lambda_backends[account][region].get_function(function_arn)
    except UnknownFunctionException:
        raise FunctionNotFoundError(f"Lambda function {function_arn} does not exist") from None


def _log_stream_name(version: str) -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


def invoke_locally(function: Any, event: Any, env: StepEnv) -> Invocation:
    """Run ``function``'s handler on ``event`` in a subprocess; its output goes to ``/aws/lambda/<name>``."""
    execution = env.execution
    workspace = (
        env.services.state_dir / "lambda" / f"{execution.execution_id}-{env.step.name}-{uuid.uuid4().hex[:8]}"
    )
    code_dir = workspace / "task"
    code_dir.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
        archive.extractall(code_dir)
    (workspace / "event.json").write_text(json.dumps(event), encoding="utf-8")
    result_file = workspace / "result.json"
    request_id = str(uuid.uuid4())
    version = str(function.version)
    group = f"/aws/lambda/{function.function_name}"
    stream = JobLogStream(execution.account, execution.region, group, _log_stream_name(version))
    timeout = float(function.timeout or 3)
    process_env = base_environment(
        JobContext(
            endpoint_url=env.services.endpoint_url(),
            account=execution.account,
            region=execution.region,
            state_dir=env.services.state_dir,
            s3=env.s3,
        )
    )
    process_env.update({str(k): str(v) for k, v in (function.environment_vars or {}).items()})
    process_env.update(
        {
            "_HANDLER": str(function.handler),
            "LAMBDA_TASK_ROOT": str(code_dir),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(timeout)),
            "AWS_LAMBDA_LOG_GROUP_NAME": group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream.stream,
            "SMPIPE_LAMBDA_FUNCTION_ARN": function.function_arn,
            "SMPIPE_LAMBDA_REQUEST_ID": request_id,
        }
    )
    invocation = Invocation()
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    stream.write(f"START RequestId: {request_id} Version: {version}")
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-u",
                str(RUNTIME_SCRIPT),
                str(code_dir),
                str(workspace / "event.json"),
                str(result_file),
            ],
            cwd=str(code_dir),
            env=process_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def pump() -> None:
            assert process.stdout is not None
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                stream.write(line)
                tail.append(line)
            process.stdout.close()

        reader = threading.Thread(target=pump, name=f"lambda-{function.function_name}", daemon=True)
        reader.start()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            invocation.timed_out = True
            process.kill()
            process.wait()
        reader.join(timeout=5)
        elapsed_ms = (time.monotonic() - started) * 1000
        if invocation.timed_out:
            stream.write(
                f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after {timeout:.2f} seconds"
            )
        elif result_file.is_file():
            outcome = json.loads(result_file.read_text(encoding="utf-8"))
            invocation.payload = outcome.get("payload")
            invocation.error = outcome.get("error")
        else:
            invocation.error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status "
                f"{process.returncode}",
            }
        stream.write(f"END RequestId: {request_id}")
        stream.write(
            f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms\tBilled Duration: "
            f"{int(elapsed_ms) + 1} ms\tMemory Size: {function.memory_size} MB"
        )
    finally:
        stream.close()
        shutil.rmtree(workspace, ignore_errors=True)
    invocation.tail = list(tail)
    return invocation


def _with_tail(reason: str, tail: list[str]) -> str:
    lines = [line for line in tail if line.strip()]
    text = reason
    while lines:
        text = reason + "\nLast lines of the function's log:\n" + "\n".join(lines)
        if len(text) <= 3072:
            break
        lines.pop(0)
    return text


@STEP_RUNNERS.register("Lambda")
def run_lambda(env: StepEnv) -> None:
    run, execution = env.run, env.execution
    raw = env.step.raw
    function_arn = to_text(env.evaluate(raw.get("FunctionArn", "")))
    declared = {
        str(item.get("OutputName")): str(item.get("OutputType") or "String")
        for item in raw.get("OutputParameters") or []
    }
    event = env.evaluate(env.step.arguments)
    outputs: dict[str, str] = {}

    def metadata() -> dict[str, Any]:
        return {
            "Lambda": {
                "Arn": function_arn,
                "OutputParameters": [{"Name": k, "Value": v} for k, v in outputs.items()],
            }
        }

    run.metadata = metadata()
    run.properties = lambda: {
        "OutputParameters": {k: typed_output_value(declared.get(k, "String"), v) for k, v in outputs.items()}
    }
    try:
        function = find_function(function_arn, execution.account, execution.region)
    except FunctionNotFoundError as err:
        run.finish("Failed", f"ClientError: {err}")
        return
    # Lambda functions cannot be stopped: a stop of the execution waits for the invocation to end.
    with execution.changed:
        if not execution.stop_requested:
            run.status = "Executing"
    invocation = invoke_locally(function, event, env)
    name = function.function_name
    if invocation.timed_out:
        run.finish(
            "Failed",
            _with_tail(f"Lambda function {name} timed out after {function.timeout} seconds", invocation.tail),
        )
        return
    if invocation.error is not None:
        error = invocation.error
        reason = f"Lambda function {name} failed: {error.get('errorType')}: {error.get('errorMessage')}"
        run.finish("Failed", _with_tail(reason, invocation.tail))
        return
    payload = invocation.payload
    if declared and not isinstance(payload, dict):
        run.finish(
            "Failed",
            f"Lambda function {name} returned {type(payload).__name__}; the step's outputs {sorted(declared)} "
            "are read from a returned JSON object",
        )
        return
    missing = sorted(set(declared) - set(payload or {}))
    if missing:
        run.finish(
            "Failed",
            f"Lambda function {name} did not return the output parameters {missing} (it returned keys "
            f"{sorted(payload or {})})",
        )
        return
    try:
        for output_name, kind in declared.items():
            outputs[output_name] = output_value_text(output_name, kind, payload[output_name])
    except ValueError as err:
        run.finish("Failed", f"Lambda function {name} returned an invalid output: {err}")
        return
    run.metadata = metadata()
    run.finish("Stopped" if execution.stop_requested else "Succeeded")
