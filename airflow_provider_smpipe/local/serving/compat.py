"""Encoders and stand-ins for the helper packages of SageMaker's serving containers.

Inference scripts written for the framework containers import helpers that only exist inside those images:
``sagemaker_containers.beta.framework`` (``encoders``, ``worker``, ``content_types``) and ``sagemaker_inference``
(``encoder``, ``decoder``, ``content_types``, ``errors``). When they are not installed, :func:`install` puts
small equivalents in ``sys.modules`` so such scripts import and run unchanged.
"""

from __future__ import annotations

import io
import json
import sys
import types
from typing import Any

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
UTF8_TYPES = [JSON, CSV]


class UnsupportedFormatError(Exception):
    """A content type the default handlers cannot decode or encode."""

    def __init__(self, content_type: str | None, **_: Any) -> None:
        super().__init__(
            f"Content type {content_type} is not supported by this framework. Implement input_fn to decode "
            "the request data or output_fn to encode the response."
        )
        self.content_type = content_type


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as err:  # the default handlers need numpy, as in the framework containers
        raise ImportError(
            "the default input_fn/output_fn need numpy, which is not installed in the local backend's Python; "
            "install it or define input_fn and output_fn in the inference script"
        ) from err
    return numpy


def decode(data: Any, content_type: str | None) -> Any:
    """text/csv, application/json or application/x-npy -> numpy array."""
    np = _numpy()
    if content_type == CSV:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        return np.genfromtxt(io.StringIO(text), delimiter=",")
    if content_type == JSON:
        return np.array(json.loads(data))
    if content_type == NPY:
        return np.load(io.BytesIO(data), allow_pickle=True)
    raise UnsupportedFormatError(content_type)


def encode(array_like: Any, content_type: str | None) -> bytes | str:
    """numpy array (or list, number) -> text/csv, application/json or application/x-npy."""
    if content_type == JSON:
        return json.dumps(array_like, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    np = _numpy()
    if content_type == CSV:
        stream = io.StringIO()
        np.savetxt(stream, array_like, delimiter=",", fmt="%s")
        return stream.getvalue()
    if content_type == NPY:
        buffer = io.BytesIO()
        np.save(buffer, array_like)
        return buffer.getvalue()
    raise UnsupportedFormatError(content_type)


class Response:
    """``worker.Response`` of sagemaker-containers (a Flask response): what ``output_fn`` may return."""

    def __init__(
        self,
        response: Any = None,
        status: int = 200,
        headers: Any = None,
        mimetype: str | None = None,
        content_type: str | None = None,
        **_: Any,
    ) -> None:
        if isinstance(status, str) and mimetype is None:  # Response(body, accept, mimetype=...) in the wild
            mimetype = status
            status = 200
        self.response = response if response is not None else b""
        self.status = status
        self.mimetype = mimetype or content_type
        self.content_type = content_type or mimetype
        self.headers = headers or {}

    def get_data(self) -> bytes:
        body = self.response
        return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _module(name: str, **members: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(members)
    module.__dict__["__smpipe_stand_in__"] = True
    return module


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install() -> list[str]:
    """Put the stand-ins in ``sys.modules`` for the packages that are not installed; return their names."""
    content_types = {"JSON": JSON, "CSV": CSV, "NPY": NPY, "OCTET_STREAM": OCTET_STREAM, "ANY": ANY}
    content_types["UTF8_TYPES"] = UTF8_TYPES  # type: ignore[assignment]
    installed: list[str] = []
    if not _importable("sagemaker_containers"):
        framework = {
            "content_types": _module("sagemaker_containers.beta.framework.content_types", **content_types),
            "encoders": _module(
                "sagemaker_containers.beta.framework.encoders",
                decode=decode,
                encode=encode,
                UnsupportedFormatError=UnsupportedFormatError,
            ),
            "worker": _module("sagemaker_containers.beta.framework.worker", Response=Response),
        }
        package = _module("sagemaker_containers", __path__=[])
        beta = _module("sagemaker_containers.beta", __path__=[])
        framework_module = _module("sagemaker_containers.beta.framework", __path__=[], **framework)
        package.beta = beta  # type: ignore[attr-defined]
        beta.framework = framework_module  # type: ignore[attr-defined]
        sys.modules.update(
            {
                "sagemaker_containers": package,
                "sagemaker_containers.beta": beta,
                "sagemaker_containers.beta.framework": framework_module,
                **{f"sagemaker_containers.beta.framework.{k}": v for k, v in framework.items()},
            }
        )
        installed.append("sagemaker_containers")
    if not _importable("sagemaker_inference"):
        parts = {
            "content_types": _module("sagemaker_inference.content_types", **content_types),
            "decoder": _module("sagemaker_inference.decoder", decode=decode),
            "encoder": _module("sagemaker_inference.encoder", encode=encode),
            "errors": _module(
                "sagemaker_inference.errors",
                UnsupportedFormatError=UnsupportedFormatError,
                BaseInferenceToolkitError=Exception,
            ),
        }
        package = _module("sagemaker_inference", __path__=[], **parts)
        sys.modules["sagemaker_inference"] = package
        sys.modules.update({f"sagemaker_inference.{k}": v for k, v in parts.items()})
        installed.append("sagemaker_inference")
    return installed
