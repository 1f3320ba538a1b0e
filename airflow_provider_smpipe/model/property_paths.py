"""Step property paths (``Steps.<step>.<path>``) checked against the Describe* response of the step's kind.

SageMaker resolves ``step_property("ProcessingJobStatus")`` from the response of the Describe* call of the
step's job (``DescribeProcessingJob`` for a processing step...), as the SDK's ``Properties`` model it from
botocore's service model. The same shapes are read here, so a path the step kind does not have is refused when
the DAG is parsed.

Cost: nothing unless a DAG uses a step property. Then the shapes the step kinds' responses are made of (about
430 of the model's 3,100, 55 KB) are read from a per-user cache file keyed by the botocore version (under a
millisecond); only the first parse after installing botocore loads the whole service model (0.1-0.3 s) and writes
that file. Within a process they are kept in memory.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_PATH_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


#: The response shapes of the step kinds whose properties are known when the DAG is parsed (cached on disk).
CACHED_ROOTS = (
    "DescribeProcessingJobResponse",
    "DescribeTrainingJobResponse",
    "DescribeHyperParameterTuningJobResponse",
    "ListTrainingJobsForHyperParameterTuningJobResponse",
    "DescribeModelOutput",
    "DescribeModelPackageOutput",
    "DescribeTransformJobResponse",
)


@functools.cache
def _service_shapes() -> dict[str, Any]:
    import botocore.loaders

    return dict(botocore.loaders.Loader().load_service_model("sagemaker", "service-2")["shapes"])


def _cache_file() -> Path:
    import botocore

    roots = hashlib.sha256(" ".join(CACHED_ROOTS).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"airflow-provider-smpipe-{os.getuid()}"
    return folder / f"sagemaker-properties-{botocore.__version__}-{roots}.json"


def _subgraph(shapes: dict[str, Any], roots: Iterable[str]) -> dict[str, Any]:
    """The shapes reachable from ``roots``, with only what paths are walked with."""
    kept: dict[str, Any] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in kept:
            continue
        shape = shapes[name]
        slim: dict[str, Any] = {"type": shape.get("type")}
        if "members" in shape:
            slim["members"] = {key: {"shape": value["shape"]} for key, value in shape["members"].items()}
            stack.extend(value["shape"] for value in shape["members"].values())
        for part in ("member", "key", "value"):
            if part in shape:
                slim[part] = {"shape": shape[part]["shape"]}
                stack.append(shape[part]["shape"])
        kept[name] = slim
    return kept


@functools.cache
def _shapes() -> dict[str, Any]:
    cache = _cache_file()
    try:
        with open(cache) as handle:
            cached = json.load(handle)
        if isinstance(cached, dict) and all(root in cached for root in CACHED_ROOTS):
            return cached
    except (OSError, ValueError):
        pass
    shapes = _subgraph(_service_shapes(), CACHED_ROOTS)
    try:  # best effort: a read-only temporary folder only costs the next parse the full load again
        cache.parent.mkdir(mode=0o700, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(shapes))
        os.replace(partial, cache)
    except OSError:
        pass
    return shapes


def _shape(name: str) -> dict[str, Any]:
    shapes = _shapes()
    return shapes[name] if name in shapes else _service_shapes()[name]


def _operation(shape_name: str) -> str:
    return re.sub(r"(Response|Output)$", "", shape_name)


def property_type(shape_names: Sequence[str], path: str) -> str:
    """The botocore type (``string``, ``integer``, ``structure``...) of the property at ``path``.

    :param shape_names: The response shapes whose members are the step's properties, e.g.
        ``("DescribeProcessingJobResponse",)``.
    :param path: ``"ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"``; lists are indexed by position
        or, as the SDK allows, by the name of an item (``FinalMetricDataList['accuracy']``).
    :raises ValueError: when the path is not one of the step's properties, saying why in one line.
    """
    where = " or ".join(_operation(name) for name in shape_names)
    current: list[dict[str, Any]] = [_shape(name) for name in shape_names]
    position = 0
    walked = ""
    if not path:
        raise ValueError("the property path is empty")
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if match is None or (position == 0 and path.startswith((".", "["))):
            raise ValueError(f"cannot read the property path {path!r} at {path[position:]!r}")
        attribute, key, key2, index = match.groups()
        if attribute is not None:
            members: dict[str, Any] = {}
            for shape in current:
                if shape.get("type") == "structure":
                    members.update(shape.get("members") or {})
            if attribute not in members:
                if not members:
                    raise ValueError(f"{walked!r} is a {_type_of(current)}, it has no property {attribute!r}")
                close = difflib.get_close_matches(attribute, list(members), n=1)
                inside = f"{walked!r} of {where}" if walked else where
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{inside} has no property {attribute!r}{hint}")
            current = [_shape(members[attribute]["shape"])]
        else:
            shape = current[0]
            kind = shape.get("type")
            if kind == "list":
                current = [_shape(shape["member"]["shape"])]
            elif kind == "map":
                current = [_shape(shape["value"]["shape"])]
            else:
                item = key if key is not None else key2 if key2 is not None else index
                raise ValueError(
                    f"{walked!r} is a {_type_of(current)}, not a list or map to index with [{item}]"
                )
        walked = path[: match.end()].lstrip(".")
        position = match.end()
    return _type_of(current)


def _type_of(shapes: list[dict[str, Any]]) -> str:
    return str(shapes[0].get("type", "structure")) if shapes else "structure"
