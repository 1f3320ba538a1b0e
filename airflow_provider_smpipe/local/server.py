"""One AWS-compatible HTTP endpoint: moto's services plus the SageMaker pipeline calls moto lacks.

Requests pass through fault injection, then SageMaker operations implemented here are answered
by :class:`SageMakerApi`; everything else goes to moto's ``DomainDispatcherApplication``, which
routes by the request's signing service name.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from airflow_provider_smpipe.local.api import SageMakerApi
from airflow_provider_smpipe.local.api.versions import record_change
from airflow_provider_smpipe.local.errors import ApiError
from airflow_provider_smpipe.local.executor import Executor
from airflow_provider_smpipe.local.faults import FaultConfig, FaultInjector, error_body
from airflow_provider_smpipe.local.logs import narrow_filter_request
from airflow_provider_smpipe.local.s3io import INTERNAL_HEADER
from airflow_provider_smpipe.local.state import Store
from airflow_provider_smpipe.local.validation import validate_output

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
CONTROL_PREFIX = "/_smpipe/"
# moto-served SageMaker calls whose responses strict mode also checks.
_FORWARDED_CHECKED = frozenset(
    {
        "ListPipelines",
        "ListTags",
        "AddTags",
        "DeleteTags",
    }
)
_INTERNAL_ENVIRON = "HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")
# Pipeline writes moto serves while the backend records versions.
_PIPELINE_WRITES = frozenset({"CreatePipeline", "UpdatePipeline", "DeletePipeline"})


@functools.cache
def _moto_sagemaker_actions() -> frozenset[str]:
    from moto.core.utils import method_names_from_class
    from moto.sagemaker.responses import SageMakerResponse

    return frozenset(method_names_from_class(SageMakerResponse))


def moto_serves_sagemaker(operation: str) -> bool:
    """Whether moto has a handler for the SageMaker ``operation`` (it answers others with an HTML 500)."""
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(operation) in _moto_sagemaker_actions()


def _request_identity(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(access key, region, signing service) from the SigV4 Authorization header."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        try:
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
            key, _, region, service, _ = scope.split("/")
            return key, region, service.lower()
        except ValueError:
            pass
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "X-Amz-Credential" in query:
        parts = query["X-Amz-Credential"][0].split("/")
        if len(parts) == 5:
            return parts[0], parts[2], parts[3].lower()
    return "", "us-east-1", "s3"


def _account_for(access_key: str) -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    if not access_key:
        return DEFAULT_ACCOUNT_ID
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


def _ensure_lambda_role(environ: dict[str, Any], account: str) -> None:
    """IAM is not enforced here (any role ARN works for jobs): a function's role is created when missing, so
    CreateFunction behaves as it does on an account where the role exists."""
    from moto.iam.models import iam_backends

    try:
        role_arn = str(json.loads(_read_body(environ) or b"{}").get("Role") or "")
    except ValueError:
        return
    if ":role/" not in role_arn:
        return
    backend = iam_backends[account]["global"]
    path_and_name = role_arn.split(":role/", 1)[1]
    name = path_and_name.rsplit("/", 1)[-1]
    path = "/" + path_and_name[: -len(name)] if "/" in path_and_name else "/"
    try:
        backend.get_role(name)
    except Exception:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        backend.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust),
            path=path,
            permissions_boundary=None,
            description="created by smpipe-local for a Lambda function",
            tags=[],
            max_session_duration="3600",
            linked_service=None,
        )


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    # Put it back for moto, which reads the stream itself.
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _s3_operation(environ: dict[str, Any]) -> str:
    method = environ.get("REQUEST_METHOD", "GET")
    has_key = len([p for p in environ.get("PATH_INFO", "/").split("/") if p]) > 1
    names = {
        "GET": ("GetObject", "ListObjects"),
        "PUT": ("PutObject", "CreateBucket"),
        "HEAD": ("HeadObject", "HeadBucket"),
        "DELETE": ("DeleteObject", "DeleteBucket"),
        "POST": ("PostObject", "PostBucket"),
    }
    pair = names.get(method, (method, method))
    return pair[0] if has_key else pair[1]


class LocalApp:
    """The WSGI application behind the endpoint."""

    def __init__(self, store: Store, executor: Executor, faults: FaultInjector, strict: bool) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.moto = DomainDispatcherApplication(create_backend_app)
        self.api = SageMakerApi(store, executor)
        self.store = store
        self.faults = faults
        self.strict = strict
        self.validation_errors: list[str] = []
        self._errors_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX) :])
        access_key, region, service = _request_identity(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        content_type = environ.get("CONTENT_TYPE", "")
        json_protocol = bool(target) or "amz-json" in content_type
        body = _read_body(environ) if json_protocol or "x-www-form-urlencoded" in content_type else b""
        query_protocol = not json_protocol and "x-www-form-urlencoded" in content_type
        if target:
            operation = target.rsplit(".", 1)[-1]
        elif query_protocol:
            operation = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        elif service == "s3":
            operation = _s3_operation(environ)
        else:
            operation = environ.get("REQUEST_METHOD", "")

        if environ.get(_INTERNAL_ENVIRON) != "1":
            fault = self.faults.decide(service, operation)
            if fault is not None:
                if fault.latency_s:
                    time.sleep(fault.latency_s)
                if fault.status:
                    return self._error(
                        start_response, fault.status, fault.code, fault.message, json_protocol, query_protocol
                    )

        if (
            service == "lambda"
            and environ.get("REQUEST_METHOD") == "POST"
            and path.rstrip("/").endswith("/functions")
        ):
            _ensure_lambda_role(environ, _account_for(access_key))
        if service == "sagemaker" and self.api.handles(operation):
            return self._sagemaker(environ, start_response, operation, body, access_key, region)
        if service == "sagemaker" and operation and not moto_serves_sagemaker(operation):
            return self._error(
                start_response,
                400,
                "UnknownOperationException",
                f"smpipe-local does not implement the SageMaker operation {operation} (neither the backend nor "
                "moto serves it); see docs/local-backend.md for what is emulated",
                True,
                False,
            )
        if service == "sagemaker" and operation in _PIPELINE_WRITES:
            return self._pipeline_write(environ, start_response, operation, body, access_key, region)
        if service == "logs" and operation == "FilterLogEvents":
            try:
                early = narrow_filter_request(environ, body, _account_for(access_key), region)
            except ApiError as err:
                return self._error(start_response, err.status, err.code, err.message, True, False)
            if early is not None:
                return self._respond(start_response, 200, json.dumps(early).encode())
        if self.strict and service == "sagemaker" and operation in _FORWARDED_CHECKED:
            return self._checked_forward(environ, start_response, operation)
        if json_protocol or query_protocol:
            return self._forward(environ, start_response, service, operation, json_protocol, query_protocol)
        return self.moto(environ, start_response)

    # --- SageMaker ------------------------------------------------------------------------------

    def _sagemaker(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        operation: str,
        body: bytes,
        access_key: str,
        region: str,
    ) -> Iterable[bytes]:
        try:
            request = json.loads(body or b"{}")
            result = self.api.call(operation, request, _account_for(access_key), region)
        except ApiError as err:
            return self._error(start_response, err.status, err.code, err.message, True, False)
        except Exception as err:
            log.exception("%s failed", operation)
            return self._error(
                start_response, 500, "InternalFailure", f"{type(err).__name__}: {err}", True, False
            )
        if result is None:  # not ours (e.g. a job created directly with moto): moto answers
            return (
                self._checked_forward(environ, start_response, operation)
                if self.strict
                else self.moto(environ, start_response)
            )
        payload = json.dumps(result, default=str).encode()
        problem = self._validate(operation, payload)
        if problem:
            return self._error(start_response, 500, "InternalFailure", problem, True, False)
        return self._respond(start_response, 200, payload)

    def _pipeline_write(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        operation: str,
        body: bytes,
        access_key: str,
        region: str,
    ) -> Iterable[bytes]:
        """Create/Update/DeletePipeline go to moto; the backend records the pipeline's versions (moto keeps
        none) and makes CreatePipeline idempotent on ``ClientRequestToken`` (moto ignores it)."""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        token = request.get("ClientRequestToken") if operation == "CreatePipeline" else None
        key = (operation, str(token))
        if token and key in self.store.tokens:
            return self._respond(start_response, 200, self.store.tokens[key])
        status, headers, payload = self._call_moto(environ)
        if status.startswith("200"):
            account = _account_for(access_key)
            name = str(request.get("PipelineName", ""))
            version = record_change(self.store, operation, name, account, region)
            if operation == "UpdatePipeline" and version is not None:
                answer = json.loads(payload or b"{}")
                answer["PipelineVersionId"] = version
                payload = json.dumps(answer).encode()
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(payload))))
            problem = self._validate(operation, payload)
            if problem:
                return self._error(start_response, 500, "InternalFailure", problem, True, False)
            if token:
                self.store.tokens[key] = payload
        start_response(status, headers)
        return [payload]

    def _call_moto(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        payload = b"".join(self.moto(environ, capture))
        return captured["status"], captured["headers"], payload

    def _forward(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        service: str,
        operation: str,
        json_protocol: bool,
        query_protocol: bool,
    ) -> Iterable[bytes]:
        """moto's answer, except that its HTML error page (an operation it lacks, or a bug) becomes an error
        botocore parses, naming the operation."""
        status, headers, payload = self._call_moto(environ)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if status.startswith("500") and "html" in content_type:
            return self._error(
                start_response,
                500,
                "InternalFailure",
                f"smpipe-local could not serve {service}:{operation}: moto failed on it or does not implement it",
                json_protocol,
                query_protocol,
            )
        start_response(status, headers)
        return [payload]

    def _checked_forward(
        self, environ: dict[str, Any], start_response: StartResponse, operation: str
    ) -> Iterable[bytes]:
        status, headers, payload = self._call_moto(environ)
        if status.startswith("200"):
            problem = self._validate(operation, payload)
            if problem:
                return self._error(start_response, 500, "InternalFailure", problem, True, False)
        start_response(status, headers)
        return [payload]

    def _validate(self, operation: str, payload: bytes) -> str | None:
        if not self.strict:
            return None
        try:
            data = json.loads(payload or b"{}")
        except ValueError:
            data = None
        problems = validate_output("sagemaker", operation, data)
        if not problems:
            return None
        message = f"strict mode: {operation} response does not match botocore's output shape: " + "; ".join(
            problems[:10]
        )
        with self._errors_lock:
            self.validation_errors.append(message)
        log.error("%s", message)
        return message

    # --- plumbing -------------------------------------------------------------------------------

    def _respond(self, start_response: StartResponse, status: int, payload: bytes) -> Iterable[bytes]:
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [payload]

    def _error(
        self,
        start_response: StartResponse,
        status: int,
        code: str,
        message: str,
        json_protocol: bool,
        query_protocol: bool,
    ) -> Iterable[bytes]:
        content_type, payload = error_body(code, message, json_protocol, query_protocol)
        reason = {400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Error")
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
                ("x-amzn-ErrorType", code),
            ],
        )
        return [payload]

    def _control(self, environ: dict[str, Any], start_response: StartResponse, what: str) -> Iterable[bytes]:
        """Small JSON control API: health, faults (GET/POST) and strict-mode findings."""
        if what == "health":
            result: Any = {"status": "ok"}
        elif what == "faults":
            if environ.get("REQUEST_METHOD") == "POST":
                try:
                    config = FaultConfig.from_dict(json.loads(_read_body(environ) or b"{}"))
                except (TypeError, ValueError) as err:
                    start_response("400 Bad Request", [("Content-Type", "application/json")])
                    return [json.dumps({"error": str(err)}).encode()]
                self.faults.configure(config)
            result = {**self.faults.config.to_dict(), "injected": dict(self.faults.injected)}
        elif what == "validation-errors":
            result = {"errors": list(self.validation_errors)}
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown control path"}']
        payload = json.dumps(result).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        )
        return [payload]


class LocalBackend:
    """The local SageMaker Pipelines backend, served from a thread of the current process.

    ::

        with LocalBackend(port=0) as backend:
            sm = boto3.client("sagemaker", endpoint_url=backend.endpoint_url, region_name="us-east-1")

    moto keeps its state in module globals, so backends in one process share S3, IAM, logs and
    pipelines; executions and jobs belong to the backend that started them.

    :param host: interface to bind (127.0.0.1).
    :param port: TCP port; 0 picks a free one (see :attr:`endpoint_url`).
    :param state_dir: where job workspaces go; a temporary directory, removed on stop, by default.
    :param faults: fault injection; defaults to the ``SMPIPE_LOCAL_*`` environment variables.
    :param strict: validate every SageMaker response against botocore's output shapes and answer
        HTTP 500 on a mismatch (also recorded in :attr:`validation_errors`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4566,
        state_dir: str | Path | None = None,
        faults: FaultConfig | None = None,
        strict: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="smpipe-local-")
            state_dir = self._tempdir.name
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store()
        self.faults = FaultInjector(faults if faults is not None else FaultConfig.from_env())
        self.executor = Executor(self.store, lambda: self.endpoint_url, self.state_dir, self.faults)
        self.app = LocalApp(self.store, self.executor, self.faults, strict)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the backend is not started")
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def validation_errors(self) -> list[str]:
        return list(self.app.validation_errors)

    def start(self) -> LocalBackend:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            # One access-log line per call would drown the job logs on the console.
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="smpipe-local", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop running executions (killing their jobs), then the HTTP server."""
        self.executor.shutdown()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def client(self, service: str, region: str = "us-east-1", **kwargs: Any) -> Any:
        """A boto3 client for this endpoint with dummy credentials."""
        import boto3

        kwargs.setdefault("aws_access_key_id", "testing")
        kwargs.setdefault("aws_secret_access_key", "testing")
        session: Any = boto3.session.Session()
        return session.client(service, endpoint_url=self.endpoint_url, region_name=region, **kwargs)

    def __enter__(self) -> LocalBackend:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
