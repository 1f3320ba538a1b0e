"""The batch agent of a transform job: one input object in, one ``.out`` object out.

What SageMaker does around the model container, per input object:

1. decompress it (``CompressionType`` Gzip) and split it into records (``SplitType``: None = the whole object,
   Line, RecordIO, TFRecord);
2. apply ``InputFilter`` to each record (CSV rows and JSON documents only);
3. send the records to the model: one per request (``SingleRecord``, the default here) or as many as fit in
   ``MaxPayloadInMB`` (``MultiRecord``, Line records joined with newlines);
4. with ``JoinSource`` Input, split each response back into one result per record and join it to the original
   record (CSV: the result's columns appended; JSON: a ``SageMakerOutput`` attribute, or
   ``{"SageMakerInput", "SageMakerOutput"}`` for a record that is not an object); apply ``OutputFilter``;
5. assemble the results: ``AssembleWith`` Line puts each on its own line, None concatenates them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_smpipe.local.serving.jsonpath import JsonPath, JsonPathError, parse

DEFAULT_MAX_PAYLOAD_MB = 6
_RECORDIO_MAGIC = 0xCED7230A


class TransformDataError(Exception):
    """The input or the model's results do not fit the job's settings (a ClientError on SageMaker)."""


Invoke = Callable[[bytes], bytes]


@dataclass(frozen=True)
class TransformSettings:
    """The ``CreateTransformJob`` settings the agent follows (SageMaker's values, ``"None"`` when unset)."""

    content_type: str | None = None
    accept: str | None = None
    split_type: str = "None"
    compression: str = "None"
    batch_strategy: str = "SingleRecord"
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    assemble_with: str = "None"
    join_source: str = "None"
    input_filter: str | None = None
    output_filter: str | None = None

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> TransformSettings:
        """The settings of a ``CreateTransformJob`` request."""
        transform_input = request.get("TransformInput") or {}
        output = request.get("TransformOutput") or {}
        processing = request.get("DataProcessing") or {}
        payload = request.get("MaxPayloadInMB")
        return cls(
            content_type=transform_input.get("ContentType") or None,
            accept=output.get("Accept") or None,
            split_type=transform_input.get("SplitType") or "None",
            compression=transform_input.get("CompressionType") or "None",
            batch_strategy=request.get("BatchStrategy") or "SingleRecord",
            max_payload_mb=DEFAULT_MAX_PAYLOAD_MB if payload is None else int(payload),
            assemble_with=output.get("AssembleWith") or "None",
            join_source=processing.get("JoinSource") or "None",
            input_filter=processing.get("InputFilter") or None,
            output_filter=processing.get("OutputFilter") or None,
        )

    def check(self) -> None:
        """Raise :class:`TransformDataError` for settings the local agent cannot follow."""
        for text in (self.input_filter, self.output_filter):
            if text:
                try:
                    parse(text)
                except JsonPathError as err:
                    raise TransformDataError(str(err)) from None
        needs_format = self.join_source == "Input" or bool(
            _not_root(self.input_filter) or _not_root(self.output_filter)
        )
        if needs_format and record_format(self.content_type) is None:
            raise TransformDataError(
                "JoinSource and InputFilter/OutputFilter work on CSV and JSON records only: set ContentType to "
                f"text/csv, application/json or application/jsonlines (got {self.content_type!r})"
            )

    @property
    def max_payload_bytes(self) -> int | None:
        """None: no limit (``MaxPayloadInMB`` 0)."""
        return self.max_payload_mb * 1024 * 1024 if self.max_payload_mb > 0 else None


def _not_root(text: str | None) -> bool:
    return bool(text) and str(text).strip() != "$"


def record_format(content_type: str | None) -> str | None:
    """``"csv"``, ``"jsonlines"`` or ``"json"`` for the MIME types joins and filters understand."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base == "text/csv":
        return "csv"
    if base in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        return "jsonlines"
    if base == "application/json":
        return "json"
    return None


# -- splitting ----------------------------------------------------------------------------------------


def split_records(data: bytes, split_type: str) -> list[bytes]:
    """The records of one (decompressed) object."""
    if split_type == "None":
        return [data]
    if split_type == "Line":
        return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]
    if split_type == "RecordIO":
        return list(_recordio_records(data))
    if split_type == "TFRecord":
        return list(_tfrecord_records(data))
    raise TransformDataError(f"SplitType {split_type!r} is not one of None, Line, RecordIO, TFRecord")


def _recordio_records(data: bytes) -> Iterator[bytes]:
    """MXNet RecordIO: magic, (flag << 29 | length), payload padded to 4 bytes; yields whole frames."""
    position = 0
    while position < len(data):
        if len(data) - position < 8:
            raise TransformDataError("RecordIO data ends in the middle of a record header")
        magic, header = struct.unpack_from("<II", data, position)
        if magic != _RECORDIO_MAGIC:
            raise TransformDataError(f"not RecordIO data: bad magic number at byte {position}")
        length = header & ((1 << 29) - 1)
        end = position + 8 + length + (-length % 4)
        if end > len(data):
            raise TransformDataError("RecordIO data ends in the middle of a record")
        yield data[position:end]
        position = end


def _tfrecord_records(data: bytes) -> Iterator[bytes]:
    """TFRecord: uint64 length, uint32 length CRC, payload, uint32 payload CRC; yields whole frames."""
    position = 0
    while position < len(data):
        if len(data) - position < 12:
            raise TransformDataError("TFRecord data ends in the middle of a record header")
        (length,) = struct.unpack_from("<Q", data, position)
        end = position + 12 + length + 4
        if end > len(data):
            raise TransformDataError("TFRecord data ends in the middle of a record")
        yield data[position:end]
        position = end


# -- rows: what filters and joins see --------------------------------------------------------------


def _decode_row(raw: bytes, fmt: str) -> Any:
    text = raw.decode("utf-8")
    if fmt == "csv":
        return next(csv.reader([text]), [])
    try:
        return json.loads(text)
    except ValueError as err:
        raise TransformDataError(f"a record is not valid JSON ({err}): {text[:100]!r}") from None


def _encode_row(value: Any, fmt: str) -> bytes:
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(value if isinstance(value, list) else [value])
        return buffer.getvalue().encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _rows(record: bytes, fmt: str) -> list[bytes]:
    """CSV and JSON Lines records are rows of lines; a JSON record is one document."""
    if fmt == "json":
        return [record]
    return [line.rstrip(b"\r") for line in record.split(b"\n") if line.strip()]


def _filter_record(record: bytes, path: JsonPath, fmt: str) -> bytes:
    return b"\n".join(_encode_row(path.apply(_decode_row(row, fmt)), fmt) for row in _rows(record, fmt))


# -- the agent ------------------------------------------------------------------------------------------


@dataclass
class ObjectResult:
    """What became of one input object."""

    records: int
    requests: int
    body: bytes


class BatchAgent:
    """Turns input objects into output objects through ``invoke`` (one model request per call)."""

    def __init__(self, settings: TransformSettings, invoke: Invoke) -> None:
        settings.check()
        self.settings = settings
        self.invoke = invoke
        self.input_filter = _path(settings.input_filter)
        self.output_filter = _path(settings.output_filter)
        self.format = record_format(settings.content_type)
        self.output_format = record_format(settings.accept) or "csv"

    def transform(self, name: str, data: bytes) -> ObjectResult:
        """Transform the object ``name`` (for messages) holding ``data``."""
        s = self.settings
        if s.compression == "Gzip":
            try:
                data = gzip.decompress(data)
            except OSError as err:
                raise TransformDataError(
                    f"{name}: CompressionType is Gzip but the object is not: {err}"
                ) from None
        records = split_records(data, s.split_type)
        pieces: list[bytes] = []
        requests = 0
        for batch in self._batches(name, records):
            sent = [self._filtered(r) for r in batch]
            response = self.invoke(_request_body(sent, s.split_type))
            requests += 1
            if s.join_source == "Input" or self.output_filter is not None:
                pieces.extend(self._joined(name, batch, response))
            else:
                pieces.append(response)
        if s.assemble_with == "Line":
            body = b"".join(piece.rstrip(b"\r\n") + b"\n" for piece in pieces)
        else:
            body = b"".join(pieces)
        return ObjectResult(records=len(records), requests=requests, body=body)

    def _filtered(self, record: bytes) -> bytes:
        if self.input_filter is None or self.format is None:
            return record
        try:
            return _filter_record(record, self.input_filter, self.format)
        except JsonPathError as err:
            raise TransformDataError(f"InputFilter {err}") from None

    def _batches(self, name: str, records: list[bytes]) -> Iterator[list[bytes]]:
        limit = self.settings.max_payload_bytes
        for record in records:
            if limit is not None and len(record) > limit:
                raise TransformDataError(
                    f"{name}: a record of {len(record)} bytes is larger than MaxPayloadInMB="
                    f"{self.settings.max_payload_mb}; split the input (SplitType) or raise MaxPayloadInMB"
                )
        if self.settings.batch_strategy != "MultiRecord" or self.settings.split_type == "None":
            for record in records:
                yield [record]
            return
        batch: list[bytes] = []
        size = 0
        separator = 1 if self.settings.split_type == "Line" else 0
        for record in records:
            extra = len(record) + (separator if batch else 0)
            if batch and limit is not None and size + extra > limit:
                yield batch
                batch, size, extra = [], 0, len(record)
            batch.append(record)
            size += extra
        if batch:
            yield batch

    def _joined(self, name: str, batch: list[bytes], response: bytes) -> list[bytes]:
        fmt = self.format or "csv"
        inputs = [row for record in batch for row in _rows(record, fmt)]
        results = _response_rows(response, self.output_format, len(inputs))
        if len(results) != len(inputs):
            raise TransformDataError(
                f"{name}: the model returned {len(results)} results for a request of {len(inputs)} records; "
                "JoinSource and OutputFilter need one result per record (one line each, or a JSON array)"
            )
        joining = self.settings.join_source == "Input"
        # A joined record keeps the input's format; a result alone keeps the model's.
        out_fmt = fmt if joining else ("csv" if self.output_format == "csv" else "json")
        out: list[bytes] = []
        for raw, result in zip(inputs, results, strict=True):
            value: Any = _join(_decode_row(raw, fmt), result, fmt) if joining else result
            if self.output_filter is not None:
                try:
                    value = self.output_filter.apply(value)
                except JsonPathError as err:
                    raise TransformDataError(f"OutputFilter {err}") from None
            out.append(_encode_row(value, out_fmt))
        return [b"\n".join(out)] if self.settings.assemble_with == "None" else out


def _path(text: str | None) -> JsonPath | None:
    return parse(text) if text and _not_root(text) else None


def _request_body(records: list[bytes], split_type: str) -> bytes:
    if split_type == "Line":
        return b"\n".join(records)
    return b"".join(records)


def _response_rows(response: bytes, fmt: str, expected: int) -> list[Any]:
    """One decoded result per record: CSV rows as field lists, JSON values as they are."""
    text = response.decode("utf-8", errors="replace")
    if fmt == "json":
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        else:
            if expected == 1:
                return [document]
            if isinstance(document, list) and len(document) == expected:
                return document
    lines = [line for line in text.splitlines() if line.strip()]
    if fmt == "csv":
        return [next(csv.reader([line])) for line in lines]
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            rows.append(line)
    return rows


def _join(record: Any, result: Any, fmt: str) -> Any:
    if fmt == "csv":
        fields = record if isinstance(record, list) else [record]
        extra = result if isinstance(result, list) else [result]
        return [*fields, *extra]
    if isinstance(record, dict):
        return {**record, "SageMakerOutput": result}
    return {"SageMakerInput": record, "SageMakerOutput": result}
