"""Where a running step trigger keeps its log cursor, so that a rebuilt trigger resumes without loss or repeats."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

#: XCom key under which a running trigger keeps its log cursor.
LOG_CURSOR_XCOM_KEY = "smpipe_log_cursor"
#: Environment variable naming the directory of the file-based log cursor store.
LOG_CURSOR_DIR_ENV = "SMPIPE_LOG_CURSOR_DIR"


class LogCursorStore(Protocol):
    """Where a running trigger keeps its log cursor so that a rebuilt trigger resumes from it."""

    async def load(self, job_name: str) -> dict[str, Any] | None:
        """Return the saved cursor of ``job_name`` or None."""
        ...

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        """Save the cursor of ``job_name``."""
        ...

    async def owned(self, job_name: str) -> bool:
        """Whether this reader may still show ``job_name``'s lines (no later reader took them over)."""
        ...


class XComLogCursorStore:
    """
    Keep the cursor in an XCom of the deferred task instance (key ``smpipe_log_cursor``).

    The triggerer's supervisor serves GetXCom/SetXCom for trigger code, so this works on every triggerer host.
    The value carries the job name and try number: a new try, or another job, starts from the beginning.

    It also names its writer: a trigger that another triggerer took over (its own triggerer lost its heartbeat
    and recovers, so for a moment the trigger runs twice) sees the later claim through :meth:`owned` and stops
    showing lines the new owner shows.

    :param dag_id: DAG id.
    :param run_id: Run id.
    :param task_id: Task id.
    :param map_index: Map index.
    :param try_number: The task instance's try number.
    """

    def __init__(self, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> None:
        self.ids = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
        self.try_number = try_number
        #: This reader (one trigger instance) and when it started: a later reader's claim wins.
        self.owner = uuid.uuid4().hex
        self.claimed_at = time.time()
        self._saved: dict[str, Any] | None = None

    async def _read(self, job_name: str) -> Mapping[str, Any] | None:
        from airflow.sdk.execution_time.xcom import XCom

        value = await XCom.aget_one(key=LOG_CURSOR_XCOM_KEY, **self.ids)
        if (
            isinstance(value, Mapping)
            and value.get("job_name") == job_name
            and value.get("try_number") == self.try_number
        ):
            return value
        return None

    async def load(self, job_name: str) -> dict[str, Any] | None:
        """Return the saved cursor of ``job_name`` for this try, or None."""
        value = await self._read(job_name)
        return dict(value.get("cursor") or {}) if value is not None else None

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        """Save the cursor of ``job_name`` for this try, as this reader's."""
        from airflow.sdk.execution_time.xcom import XCom

        value = {
            "job_name": job_name,
            "try_number": self.try_number,
            "cursor": cursor,
            "owner": self.owner,
            "claimed_at": self.claimed_at,
        }
        await XCom.aset(LOG_CURSOR_XCOM_KEY, value, **self.ids)
        self._saved = cursor

    async def owned(self, job_name: str) -> bool:
        """False once a reader that started later saved the cursor (it took this job's lines over)."""
        value = await self._read(job_name)
        if value is None or value.get("owner") in (None, self.owner):
            return True
        if float(value.get("claimed_at") or 0) < self.claimed_at:
            # An earlier reader wrote after this one's claim (its triggerer was stalled): claim again.
            if self._saved is not None:
                await self.save(job_name, self._saved)
            return True
        return False


def default_cursor_dir() -> Path:
    """Return ``$SMPIPE_LOG_CURSOR_DIR`` or ``$AIRFLOW_HOME/smpipe/log-cursors``."""
    explicit = os.environ.get(LOG_CURSOR_DIR_ENV)
    if explicit:
        return Path(explicit)
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home) / "smpipe" / "log-cursors"


class FileLogCursorStore:
    """
    Keep the cursor in a small JSON file per (execution, step, try, job): survives restarts on one host only.

    :param directory: The state directory.
    :param scope: Identifies the watcher: execution ARN (or run key), step name and try number.
    """

    def __init__(self, directory: Path, scope: str) -> None:
        self.directory = directory
        self.scope = scope

    def _path(self, job_name: str) -> Path:
        digest = hashlib.sha256(f"{self.scope}\0{job_name}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    async def load(self, job_name: str) -> dict[str, Any] | None:
        """Return the saved cursor of ``job_name``, or None."""

        def read() -> dict[str, Any] | None:
            try:
                data = json.loads(self._path(job_name).read_text())
            except (OSError, ValueError):
                return None
            return data.get("cursor") if data.get("job_name") == job_name else None

        return await asyncio.to_thread(read)

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        """Atomically save the cursor of ``job_name``."""

        def write() -> None:
            path = self._path(job_name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"job_name": job_name, "scope": self.scope, "cursor": cursor}))
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def owned(self, job_name: str) -> bool:
        """Always True: a file is one host's, whose triggerer runs a trigger once."""
        return True


class _FallbackCursorStore:
    """Use the primary store; if it fails, log once and use the fallback from then on."""

    def __init__(self, primary: LogCursorStore, fallback: LogCursorStore, logger: Any) -> None:
        self.primary, self.fallback, self.log = primary, fallback, logger
        self.failed = False

    async def load(self, job_name: str) -> dict[str, Any] | None:
        if not self.failed:
            try:
                found = await self.primary.load(job_name)
            except Exception:
                self._fail()
            else:
                return found if found is not None else await self.fallback.load(job_name)
        return await self.fallback.load(job_name)

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        if not self.failed:
            try:
                await self.primary.save(job_name, cursor)
                return
            except Exception:
                self._fail()
        await self.fallback.save(job_name, cursor)

    async def owned(self, job_name: str) -> bool:
        if self.failed:
            return True
        try:
            return await self.primary.owned(job_name)
        except Exception:
            # Cannot tell: keep showing the lines (a line shown twice beats a line never shown).
            return True

    def _fail(self) -> None:
        self.failed = True
        self.log.warning("Cannot keep the log cursor in XCom; using a local file instead", exc_info=True)
