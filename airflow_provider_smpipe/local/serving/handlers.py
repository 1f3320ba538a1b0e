"""How a model answers one request: its inference script's handlers, or a local server mapped to its image.

The script contract is the SageMaker inference toolkit's (and the scikit-learn, PyTorch, XGBoost framework
containers'): ``model_fn(model_dir)`` loads the model once; each request runs ``transform_fn(model, body,
content_type, accept)``, by default ``output_fn(predict_fn(input_fn(body, content_type), model), accept)``.
A handler may take one more argument, the request context (``None`` here). Missing handlers get the
toolkit's defaults: ``input_fn`` decodes text/csv, application/json and application/x-npy into a numpy array,
``predict_fn`` calls ``model.predict``, ``output_fn`` encodes to the Accept type; ``model_fn`` has no default.
The body is a ``str`` for text/csv and application/json, ``bytes`` otherwise.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.serving import compat

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
_MODEL_FN_DOCS = (
    "https://sagemaker.readthedocs.io/en/stable/frameworks/sklearn/using_sklearn.html#load-a-model"
)


class HandlerError(Exception):
    """A handler of the inference script raised: says which one."""

    def __init__(self, handler: str, module: str, error: BaseException) -> None:
        super().__init__(f"{handler} in {module} raised {type(error).__name__}: {error}")
        self.handler = handler
        self.error = error


class InvocationTimeout(Exception):
    """A request took longer than ``ModelClientConfig.InvocationsTimeoutInSeconds``."""


class ModelServerError(Exception):
    """The mapped model server did not start or answered an error."""


def default_accept(accept: str | None) -> str:
    """The Accept a request is served with: the job's, else the container's default (application/json)."""
    if not accept or accept == compat.ANY:
        return os.environ.get(DEFAULT_ACCEPT_ENV) or compat.JSON
    return accept


class ScriptModel:
    """The model served in this process by an inference script.

    :param code_dir: The directory of the script (put first on ``sys.path``, as the containers do).
    :param program: ``SAGEMAKER_PROGRAM``: the script (``inference.py``) or module (``inference``) name.
    :param model_dir: ``/opt/ml/model``.
    :param timeout: Seconds one request may take (None: no limit).
    """

    def __init__(self, code_dir: str, program: str, model_dir: str, timeout: float | None = None) -> None:
        compat.install()
        self.module_name = program[:-3] if program.endswith(".py") else program
        self.script = f"{self.module_name}.py"
        self.timeout = timeout
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
        try:
            module = importlib.import_module(self.module_name)
        except Exception as err:
            raise HandlerError("import", self.script, err) from err
        self.module = module
        self.found = [
            n
            for n in ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
            if hasattr(module, n)
        ]
        transform_fn = getattr(module, "transform_fn", None)
        if transform_fn is not None and {"input_fn", "predict_fn", "output_fn"} & set(self.found):
            raise HandlerError(
                "transform_fn",
                self.script,
                ValueError("transform_fn cannot be used together with input_fn, predict_fn or output_fn"),
            )
        model_fn = getattr(module, "model_fn", None)
        if model_fn is None:
            raise HandlerError(
                "model_fn",
                self.script,
                NotImplementedError(
                    f"{self.script} defines no model_fn(model_dir): there is no default way to load a model; "
                    f"define one that loads and returns it (see {_MODEL_FN_DOCS})"
                ),
            )
        self.transform_fn: Callable[..., Any] | None = transform_fn
        self.input_fn: Callable[..., Any] = getattr(module, "input_fn", default_input_fn)
        self.predict_fn: Callable[..., Any] = getattr(module, "predict_fn", default_predict_fn)
        self.output_fn: Callable[..., Any] = getattr(module, "output_fn", default_output_fn)
        self.model = self._call("model_fn", model_fn, model_dir)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> bytes:
        """One request: the body in, the response body out."""
        accept = default_accept(accept)
        data: bytes | str = body
        if content_type in compat.UTF8_TYPES:
            data = body.decode("utf-8")
        with _time_limit(self.timeout):
            if self.transform_fn is not None:
                result = self._call("transform_fn", self.transform_fn, self.model, data, content_type, accept)
            else:
                decoded = self._call("input_fn", self.input_fn, data, content_type)
                prediction = self._call("predict_fn", self.predict_fn, decoded, self.model)
                result = self._call("output_fn", self.output_fn, prediction, accept)
        return response_bytes(result, self.script)

    def _call(self, name: str, handler: Callable[..., Any], *args: Any) -> Any:
        try:
            return _with_optional_context(handler, args)
        except (HandlerError, InvocationTimeout):
            raise
        except Exception as err:
            raise HandlerError(name, self.script, err) from err


def _with_optional_context(handler: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call ``handler`` with ``args``, plus a ``None`` context when it takes one more argument."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return handler(*args)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) == len(args) + 1:
        return handler(*args, None)
    return handler(*args)


def response_bytes(result: Any, script: str) -> bytes:
    """A handler's response as bytes: bytes, str, a ``(body, content_type)`` tuple or a Response object."""
    if isinstance(result, tuple) and result:
        result = result[0]
    body = getattr(result, "response", None)
    if body is not None and not isinstance(result, str | bytes | bytearray):
        result = body
        if isinstance(result, list | tuple) and all(isinstance(part, bytes | str) for part in result):
            result = b"".join(p.encode() if isinstance(p, str) else p for p in result)
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8")
    raise HandlerError(
        "output_fn",
        script,
        TypeError(
            f"the response must be bytes or str (or a (body, content_type) tuple), got {type(result).__name__}"
        ),
    )


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise InvocationTimeout(f"the request took longer than InvocationsTimeoutInSeconds={seconds:g}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the inference toolkit's default handlers ------------------------------------------------------


def default_input_fn(input_data: Any, content_type: str | None) -> Any:
    """Decode the body into a numpy array (float32 for CSV and JSON), as the framework containers do."""
    array = compat.decode(input_data, content_type)
    if content_type in compat.UTF8_TYPES and hasattr(array, "astype"):
        return array.astype("float32")
    return array


def default_predict_fn(input_data: Any, model: Any) -> Any:
    """``model.predict(input_data)``."""
    predict = getattr(model, "predict", None)
    if predict is None:
        raise TypeError(
            f"the model model_fn returned ({type(model).__name__}) has no predict(); define predict_fn(data, model)"
        )
    return predict(input_data)


def default_output_fn(prediction: Any, accept: str) -> bytes:
    """Encode the prediction for the Accept type (text/csv, application/json, application/x-npy)."""
    encoded = compat.encode(prediction, accept)
    return encoded.encode("utf-8") if isinstance(encoded, str) else encoded


# -- a local command mapped to the model's image -------------------------------------------------


class ServerModel:
    """A model served over HTTP by a local command (``<command> serve``), as SageMaker runs an image.

    The command gets ``SAGEMAKER_BIND_TO_PORT`` and must answer ``GET /ping`` and ``POST /invocations`` there.

    :param command: The command, ``serve`` included.
    :param timeout: Seconds one request may take (None: 600, SageMaker's default).
    :param startup_timeout: Seconds the server may take to answer ``/ping``.
    """

    def __init__(
        self, command: list[str], timeout: float | None = None, startup_timeout: float = 120
    ) -> None:
        self.port = _free_port()
        self.timeout = timeout or 600.0
        env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(self.port), "SAGEMAKER_SAFE_PORT_RANGE": ""}
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ModelServerError(
                    f"the model server {command} exited with code {code} before answering /ping"
                )
            with contextlib.suppress(OSError):
                status, _ = self._request("GET", "/ping", None, {}, timeout=2)
                if status == 200:
                    break
            if time.monotonic() > deadline:
                self.close()
                raise ModelServerError(
                    f"the model server {command} did not answer /ping within {startup_timeout:g}s"
                )
            time.sleep(0.2)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> bytes:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        try:
            status, data = self._request("POST", "/invocations", body, headers, timeout=self.timeout)
        except TimeoutError as err:
            raise InvocationTimeout(
                f"the request took longer than InvocationsTimeoutInSeconds={self.timeout:g}"
            ) from err
        if status != 200:
            raise ModelServerError(
                f"POST /invocations answered {status}: {data[:500].decode(errors='replace')}"
            )
        return data

    def _request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
