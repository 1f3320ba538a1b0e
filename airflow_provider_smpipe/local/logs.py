"""Writes job output to moto's CloudWatch Logs backend, as SageMaker does, while the job runs."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

from airflow_provider_smpipe.local.errors import ApiError

# moto's log streams are not thread-safe; every writer in this process goes through this lock.
_LOGS_LOCK = threading.Lock()
MAX_EVENT_CHARS = 256 * 1024 - 26


def _logs_backend(account: str, region: str) -> Any:
    from moto.logs.models import logs_backends

    return logs_backends[account][region]


class JobLogStream:
    """One stream ``<job-name>/algo-<n>-<epoch seconds>`` in a SageMaker log group.

    Lines are buffered and flushed every ``interval`` seconds by a background thread; the stream
    is created on the first line, like on AWS where it appears once the container prints.
    """

    def __init__(self, account: str, region: str, group: str, stream: str, interval: float = 0.5) -> None:
        self.account = account
        self.region = region
        self.group = group
        self.stream = stream
        self.interval = interval
        self._pending: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._last_ts = 0
        self._created = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"logs-{stream}", daemon=True)
        self._thread.start()

    def write(self, line: str, timestamp_ms: int | None = None) -> None:
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        with self._lock:
            # Events must be in chronological order; stdout and stderr readers race by a few ms.
            ts = max(ts, self._last_ts)
            self._last_ts = ts
            for start in range(0, max(len(line), 1), MAX_EVENT_CHARS):
                self._pending.append((ts, line[start : start + MAX_EVENT_CHARS]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            events, self._pending = self._pending, []
        if not events:
            return
        backend = _logs_backend(self.account, self.region)
        with _LOGS_LOCK:
            if not self._created:
                if self.group not in backend.groups:
                    backend.create_log_group(self.group, tags={})
                if self.stream not in backend.groups[self.group].streams:
                    backend.create_log_stream(self.group, self.stream)
                self._created = True
            for start in range(0, len(events), 5000):
                chunk = events[start : start + 5000]
                backend.put_log_events(
                    self.group, self.stream, [{"timestamp": ts, "message": msg} for ts, msg in chunk]
                )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def narrow_filter_request(
    environ: dict[str, Any], body: bytes, account: str, region: str
) -> dict[str, Any] | None:
    """FilterLogEvents with ``logStreamNamePrefix``, which moto ignores (it answers every stream's events).

    The request is rewritten in place to name the matching streams (``logStreamNames``); when no stream matches,
    the answer is returned here (no events), since moto reads an empty list as "every stream".
    """
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    prefix = request.get("logStreamNamePrefix")
    if not isinstance(prefix, str):
        return None
    if request.get("logStreamNames"):
        raise ApiError(
            "InvalidParameterException", "logStreamNames and logStreamNamePrefix are mutually exclusive"
        )
    group_name = request.get("logGroupName") or str(request.get("logGroupIdentifier", "")).split(":")[-1]
    with _LOGS_LOCK:
        group = _logs_backend(account, region).groups.get(group_name)
        names = sorted(name for name in group.streams if name.startswith(prefix)) if group else None
    if names is None:
        return None  # moto answers ResourceNotFoundException
    if not names:
        return {"events": [], "searchedLogStreams": []}
    del request["logStreamNamePrefix"]
    request["logStreamNames"] = names
    data = json.dumps(request).encode()
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    return None
