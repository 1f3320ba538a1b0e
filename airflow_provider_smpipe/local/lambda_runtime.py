"""Runs one Lambda invocation in this Python: ``python lambda_runtime.py <code dir> <event.json> <result.json>``.

Run by the local backend as a subprocess, by path: it imports nothing of the provider. The handler comes from
``$_HANDLER`` (``module.function``); the event is the step's evaluated inputs. The result file gets
``{"payload": <returned value>}`` or ``{"error": {"errorMessage", "errorType", "stackTrace"}}`` as Lambda
reports a function error. Everything the handler prints goes to stdout/stderr, which the backend writes to
CloudWatch Logs as Lambda does.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of Lambda's Python context object that handlers use."""

    def __init__(self, deadline: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("SMPIPE_LAMBDA_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = os.environ.get("SMPIPE_LAMBDA_REQUEST_ID", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def main(code_dir: str, event_file: str, result_file: str) -> int:
    deadline = time.time() + float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    with open(event_file, encoding="utf-8") as handle:
        event = json.load(handle)
    outcome: dict[str, Any]
    try:
        module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
        handler = getattr(importlib.import_module(module_name), function_name)
        payload = handler(event, LambdaContext(deadline))
        json.dumps(payload)  # Lambda returns JSON: an unserializable result is a function error
        outcome = {"payload": payload}
    except Exception as error:
        trace = traceback.format_exception(type(error), error, error.__traceback__)
        sys.stderr.write("".join(trace))
        outcome = {
            "error": {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": [line.rstrip("\n") for line in trace[1:]],
            }
        }
    sys.stdout.flush()
    sys.stderr.flush()
    with open(result_file, "w", encoding="utf-8") as handle:
        json.dump(outcome, handle, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
