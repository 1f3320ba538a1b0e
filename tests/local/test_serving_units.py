"""The local transform harness without a backend: JSONPath subset, splitting, batching, joins, handlers."""

from __future__ import annotations

import gzip
import json
import struct
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_smpipe.local.jobs.transform import output_name
from airflow_provider_smpipe.local.serving import compat
from airflow_provider_smpipe.local.serving.handlers import (
    HandlerError,
    InvocationTimeout,
    ScriptModel,
    response_bytes,
)
from airflow_provider_smpipe.local.serving.jsonpath import JsonPathError, parse
from airflow_provider_smpipe.local.serving.records import (
    BatchAgent,
    TransformDataError,
    TransformSettings,
    split_records,
)

if TYPE_CHECKING:
    from pathlib import Path

ROW = ["7", "1.5", "2.5", "x"]
DOC = {"id": 7, "features": [1, 2], "meta": {"source": "web"}}


@pytest.mark.parametrize(
    ("path", "record", "expected"),
    [
        ("$", ROW, ROW),
        ("$[0]", ROW, "7"),
        ("$[-1]", ROW, "x"),
        ("$[1:]", ROW, ["1.5", "2.5", "x"]),
        ("$[:2]", ROW, ["7", "1.5"]),
        ("$[1:-1]", ROW, ["1.5", "2.5"]),
        ("$[0,-1]", ROW, ["7", "x"]),
        ("$[0,2:]", ROW, ["7", "2.5", "x"]),
        ("$[*]", ROW, ROW),
        ("$.features", DOC, [1, 2]),
        ("$['features']", DOC, [1, 2]),
        ("$.meta.source", DOC, "web"),
        ("$.features[1:]", DOC, [2]),
        ("$['id','features']", DOC, {"id": 7, "features": [1, 2]}),
        ('$["id", "meta"]', DOC, {"id": 7, "meta": {"source": "web"}}),
        ("$.*", {"a": 1, "b": 2}, [1, 2]),
    ],
)
def test_jsonpath_subset(path: str, record: Any, expected: Any) -> None:
    assert parse(path).apply(record) == expected


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("features", "must start with '$'"),
        ("$..id", "recursive descent"),
        ("$[?(@.id > 1)]", "filter expressions"),
        ("$[::2]", "slice steps"),
        ("$[1:].x", "last step only"),
        ("$[0", "unclosed"),
        ("$.", "expected a name"),
    ],
)
def test_jsonpath_refuses_what_is_not_supported(path: str, words: str) -> None:
    with pytest.raises(JsonPathError, match=None) as error:
        parse(path)
    assert words in str(error.value)


def test_jsonpath_errors_on_records_that_do_not_fit() -> None:
    with pytest.raises(JsonPathError, match="outside a record of 4 fields"):
        parse("$[9]").apply(ROW)
    with pytest.raises(JsonPathError, match="no attribute 'label'"):
        parse("$.label").apply(DOC)


def _recordio(payload: bytes) -> bytes:
    return struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4)


def _tfrecord(payload: bytes) -> bytes:
    return struct.pack("<Q", len(payload)) + b"crc!" + payload + b"crc!"


def test_split_types() -> None:
    assert split_records(b"a,1\r\nb,2\n\nc,3", "Line") == [b"a,1", b"b,2", b"c,3"]
    assert split_records(b"whole\nobject", "None") == [b"whole\nobject"]
    frames = [_recordio(b"abc"), _recordio(b"defgh")]
    assert split_records(b"".join(frames), "RecordIO") == frames
    records = [_tfrecord(b"one"), _tfrecord(b"three")]
    assert split_records(b"".join(records), "TFRecord") == records
    with pytest.raises(TransformDataError, match="bad magic"):
        split_records(b"not recordio data", "RecordIO")


def _echo_agent(requests: list[bytes], **settings: Any) -> BatchAgent:
    def invoke(body: bytes) -> bytes:
        requests.append(body)
        # One result line per request line: the sum of the numeric fields.
        lines = body.decode().split("\n")
        return "".join(f"{sum(float(v) for v in line.split(',') if v)}\n" for line in lines).encode()

    return BatchAgent(TransformSettings(**settings), invoke)


def test_single_record_assembled_with_lines() -> None:
    requests: list[bytes] = []
    agent = _echo_agent(requests, content_type="text/csv", split_type="Line", assemble_with="Line")
    result = agent.transform("part.csv", b"1,2\n3,4\n5,6\n")
    assert requests == [b"1,2", b"3,4", b"5,6"]
    assert result.body == b"3.0\n7.0\n11.0\n"
    assert (result.records, result.requests) == (3, 3)


def test_multi_record_batches_up_to_the_payload_limit() -> None:
    requests: list[bytes] = []
    agent = _echo_agent(
        requests,
        content_type="text/csv",
        split_type="Line",
        batch_strategy="MultiRecord",
        max_payload_mb=1,
        assemble_with="Line",
    )
    row = b"1," + b"0" * (300 * 1024)  # ~300 KB: three fit in 1 MB, the fourth starts a new request
    result = agent.transform("big.csv", b"\n".join([row] * 5))
    assert [body.count(b"\n") + 1 for body in requests] == [3, 2]
    assert result.body.count(b"\n") == 5
    with pytest.raises(TransformDataError, match="larger than MaxPayloadInMB=1"):
        agent.transform("huge.csv", b"1," + b"0" * (2 * 1024 * 1024))


def test_assemble_none_concatenates_and_gzip_is_decompressed() -> None:
    requests: list[bytes] = []
    agent = _echo_agent(requests, content_type="text/csv", split_type="Line", compression="Gzip")
    result = agent.transform("part.csv.gz", gzip.compress(b"1,1\n2,2\n"))
    assert result.body == b"2.0\n4.0\n"
    with pytest.raises(TransformDataError, match="not"):
        agent.transform("plain.csv", b"1,1\n")


def test_csv_input_filter_join_and_output_filter() -> None:
    requests: list[bytes] = []
    agent = _echo_agent(
        requests,
        content_type="text/csv",
        accept="text/csv",
        split_type="Line",
        batch_strategy="MultiRecord",
        assemble_with="Line",
        input_filter="$[1:]",
        join_source="Input",
        output_filter="$[0,-1]",
    )
    result = agent.transform("ids.csv", b"id-1,1,2\nid-2,3,4\n")
    assert requests == [b"1,2\n3,4"]  # the id column never reaches the model
    assert result.body == b"id-1,3.0\nid-2,7.0\n"


def test_json_lines_join_keeps_objects_and_wraps_other_records() -> None:
    def invoke(body: bytes) -> bytes:
        return json.dumps(sum(json.loads(body))).encode()

    settings = TransformSettings(
        content_type="application/jsonlines",
        accept="application/json",
        split_type="Line",
        assemble_with="Line",
        input_filter="$.features",
        join_source="Input",
        output_filter="$['id','SageMakerOutput']",
    )
    agent = BatchAgent(settings, invoke)
    lines = [json.dumps({"id": i, "features": [i, i]}).encode() for i in range(3)]
    result = agent.transform("in.jsonl", b"\n".join(lines))
    assert [json.loads(line) for line in result.body.splitlines()] == [
        {"id": i, "SageMakerOutput": 2 * i} for i in range(3)
    ]
    plain = BatchAgent(
        TransformSettings(content_type="application/json", accept="application/json", join_source="Input"),
        lambda body: b"[1]",
    )
    assert json.loads(plain.transform("list.json", b"[5, 6]").body) == {
        "SageMakerInput": [5, 6],
        "SageMakerOutput": [1],
    }


def test_join_needs_one_result_per_record() -> None:
    agent = BatchAgent(
        TransformSettings(
            content_type="text/csv", split_type="Line", batch_strategy="MultiRecord", join_source="Input"
        ),
        lambda body: b"only-one\n",
    )
    with pytest.raises(TransformDataError, match="returned 1 results for a request of 2 records"):
        agent.transform("x.csv", b"1\n2\n")


def test_filters_need_csv_or_json_and_a_supported_path() -> None:
    with pytest.raises(TransformDataError, match="CSV and JSON records only"):
        BatchAgent(TransformSettings(content_type="image/png", join_source="Input"), lambda b: b)
    with pytest.raises(TransformDataError, match="recursive descent"):
        BatchAgent(TransformSettings(content_type="text/csv", input_filter="$..x"), lambda b: b)


def test_settings_from_a_create_transform_job_request() -> None:
    settings = TransformSettings.from_request(
        {
            "TransformInput": {"ContentType": "text/csv", "SplitType": "Line", "CompressionType": "Gzip"},
            "TransformOutput": {"S3OutputPath": "s3://o/", "Accept": "text/csv", "AssembleWith": "Line"},
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 0,
            "DataProcessing": {"JoinSource": "Input", "InputFilter": "$[1:]"},
        }
    )
    assert settings.max_payload_bytes is None  # 0: no limit
    assert (settings.split_type, settings.batch_strategy, settings.join_source) == (
        "Line",
        "MultiRecord",
        "Input",
    )
    defaults = TransformSettings.from_request({"TransformInput": {}, "TransformOutput": {}})
    assert (defaults.batch_strategy, defaults.max_payload_mb, defaults.split_type) == (
        "SingleRecord",
        6,
        "None",
    )


@pytest.mark.parametrize(
    ("prefix", "key", "name"),
    [
        ("data/batch", "data/batch/part-0.csv", "part-0.csv"),
        ("data/batch/", "data/batch/sub/part-1.csv", "sub/part-1.csv"),
        ("data/batch/part", "data/batch/part-0.csv", "part-0.csv"),
        ("data/batch/one.csv", "data/batch/one.csv", "one.csv"),
        ("", "top.csv", "top.csv"),
    ],
)
def test_output_names_keep_the_layout_below_the_prefix(prefix: str, key: str, name: str) -> None:
    assert output_name(prefix, key) == name


def _script(tmp_path: Path, name: str, code: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    return name


@pytest.fixture
def fresh_modules(tmp_path: Path) -> Any:
    """Forget the scripts a test imported (and the stand-in modules), as a new job process would."""
    path = list(sys.path)
    yield
    for name, module in list(sys.modules.items()):
        origin = str(getattr(module, "__file__", "") or "")
        if origin.startswith(str(tmp_path)) or getattr(module, "__smpipe_stand_in__", False):
            del sys.modules[name]
    sys.path[:] = path


@pytest.mark.usefixtures("fresh_modules")
def test_script_handlers_defaults_and_context(tmp_path: Path) -> None:
    program = _script(
        tmp_path,
        "scale_inference",
        """
        class Doubler:
            def predict(self, data):
                return data * 2

        def model_fn(model_dir, context):
            assert context is None
            return Doubler()
        """,
    )
    model = ScriptModel(str(tmp_path), f"{program}.py", str(tmp_path))
    assert model.found == ["model_fn"]
    # Default input_fn: CSV -> float32 array; default output_fn: the Accept type.
    assert model.invoke(b"1,2\n3,4", "text/csv", "application/json") == b"[[2.0, 4.0], [6.0, 8.0]]"
    assert model.invoke(b"[1, 2]", "application/json", None) == b"[2.0, 4.0]"  # Accept defaults to JSON
    assert model.invoke(b"1,2", "text/csv", "text/csv") == b"2.0\n4.0\n"


@pytest.mark.usefixtures("fresh_modules")
def test_script_without_model_fn_or_with_a_failing_handler(tmp_path: Path) -> None:
    _script(tmp_path, "no_model_fn", "def predict_fn(data, model):\n    return data\n")
    with pytest.raises(HandlerError, match=r"no_model_fn\.py defines no model_fn"):
        ScriptModel(str(tmp_path), "no_model_fn.py", str(tmp_path))
    _script(
        tmp_path,
        "broken",
        """
        def model_fn(model_dir):
            return object()

        def input_fn(body, content_type):
            return body

        def predict_fn(data, model):
            raise ValueError(f"cannot score {data!r}")

        def output_fn(prediction, accept):
            return prediction
        """,
    )
    model = ScriptModel(str(tmp_path), "broken", str(tmp_path))
    with pytest.raises(HandlerError, match=r"predict_fn in broken\.py raised ValueError: cannot score '1,2'"):
        model.invoke(b"1,2", "text/csv", "text/csv")


@pytest.mark.usefixtures("fresh_modules")
def test_framework_container_helpers_are_stood_in(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "sklearn_style",
        """
        from sagemaker_containers.beta.framework import encoders, worker
        from sagemaker_inference import content_types, decoder

        def model_fn(model_dir):
            return None

        def input_fn(body, content_type):
            return decoder.decode(body, content_types.CSV)

        def predict_fn(data, model):
            return data.reshape(-1, 3).sum(axis=1)

        def output_fn(prediction, accept):
            return worker.Response(encoders.encode(prediction, accept), mimetype=accept)
        """,
    )
    model = ScriptModel(str(tmp_path), "sklearn_style.py", str(tmp_path))
    assert model.invoke(b"1,2,3", "text/csv", "text/csv") == b"6.0\n"


def test_response_bytes_accepts_the_shapes_handlers_return() -> None:
    assert response_bytes(b"x", "s.py") == b"x"
    assert response_bytes("x", "s.py") == b"x"
    assert response_bytes(("x", "text/csv"), "s.py") == b"x"
    assert response_bytes(compat.Response("x", mimetype="text/csv"), "s.py") == b"x"
    with pytest.raises(HandlerError, match="must be bytes or str"):
        response_bytes([1, 2], "s.py")


@pytest.mark.usefixtures("fresh_modules")
def test_invocation_timeout(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "slow",
        """
        import time

        def model_fn(model_dir):
            return None

        def transform_fn(model, body, content_type, accept):
            time.sleep(5)
            return body
        """,
    )
    model = ScriptModel(str(tmp_path), "slow.py", str(tmp_path), timeout=0.2)
    with pytest.raises(InvocationTimeout, match=r"InvocationsTimeoutInSeconds=0\.2"):
        model.invoke(b"1", "text/csv", "text/csv")
