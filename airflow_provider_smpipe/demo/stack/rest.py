"""The stack's REST API client: log in, unpause and trigger DAGs, follow a run, read task logs and jobs."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_smpipe.demo.stack.errors import ApiNotFound, StackError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
TERMINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


@dataclasses.dataclass(frozen=True)
class StateChange:
    """One change seen while following a run: a task's state (``task_id`` set) or the run's own state."""

    at: float
    task_id: str | None
    old: str | None
    new: str | None
    try_number: int | None = None

    @property
    def is_run(self) -> bool:
        return self.task_id is None


class AirflowRestApi:
    """Airflow 3's public REST API (``/api/v2``) as the stack's admin user.

    :param api_url: The api-server's base URL.
    :param username: The user (simple auth manager).
    :param password: Its password.
    :param log_folder: The stack's task log folder (for :meth:`task_log_files`).
    """

    def __init__(self, api_url: str, username: str, password: str, log_folder: Path) -> None:
        self.api_url = api_url
        self.username = username
        self.password = password
        self.log_folder = log_folder
        self._http: httpx.Client | None = None
        self._token: str | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.api_url, timeout=30.0)
        return self._http

    def token(self) -> str:
        """A JWT for the REST API (the same login the UI uses)."""
        if self._token is None:
            response = self._client().post(
                "/auth/token", json={"username": self.username, "password": self.password}
            )
            _raise_for_status(response)
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2<path>`` as the admin user; JSON answers are decoded."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
            response = self._client().request(method, f"/api/v2{path}", headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            _raise_for_status(response)
            if response.headers.get("content-type", "").startswith("application/json"):
                return response.json()
            return response.text
        raise AssertionError("unreachable")

    def health(self) -> dict[str, Any]:
        response = self._client().get("/api/v2/monitor/health")
        _raise_for_status(response)
        return dict(response.json())

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id``; fail at once on an import error of its file."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ApiNotFound):
                return dict(self.api("GET", f"/dags/{dag_id}"))
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            for item in errors:
                if Path(str(item.get("filename", ""))).stem == dag_id or dag_id in str(item.get("filename")):
                    raise StackError(f"DAG file of {dag_id} does not import:\n{item.get('stack_trace')}")
            if time.monotonic() > deadline:
                raise StackError(f"DAG {dag_id} not parsed within {timeout:.0f}s (import errors: {errors})")
            time.sleep(1.0)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Start a manual run of ``dag_id`` (with ``conf`` as its params); returns the run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return list(answer["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {
            ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id) if ti["map_index"] < 1
        }

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 1200.0, poll_interval: float = 2.0
    ) -> Iterator[StateChange]:
        """Follow a run: yield every task state change, then the run's final state; ``TimeoutError`` after
        ``timeout`` seconds (the run is left as it is)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, tuple[str | None, int | None]] = {}
        run_state: str | None = None
        while True:
            for ti in self.task_instances(dag_id, run_id):
                if ti["map_index"] >= 1:
                    continue
                current = (ti["state"], ti.get("try_number"))
                previous = seen.get(ti["task_id"])
                if previous != current:
                    seen[ti["task_id"]] = current
                    old = previous[0] if previous else None
                    if previous is None and current[0] is None:
                        continue
                    yield StateChange(time.time(), ti["task_id"], old, current[0], current[1])
            state = self.run_state(dag_id, run_id)
            if state != run_state:
                if state in TERMINAL_RUN_STATES:
                    yield StateChange(time.time(), None, run_state, state)
                    return
                run_state = state
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout:.0f}s")
            time.sleep(poll_interval)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as the UI shows it (task process and trigger lines), one line per entry.

        Raises :class:`ApiNotFound` while the task instance has no such try yet.
        """
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        return "\n".join(_format_log_entry(entry) for entry in answer.get("content", []))

    def task_log_files(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[Path]:
        """The task's log file and its trigger log files (``<file>.trigger.<triggerer id>.log``)."""
        folder = self.log_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob(f"attempt={try_number}.log*"))

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance as the API shows it (with ``trigger`` and ``triggerer_job`` while deferred)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return dict(self.api("GET", path))

    def jobs(self, job_type: str, *, alive_only: bool = False) -> list[dict[str, Any]]:
        """The jobs of one type (``TriggererJob``, ``SchedulerJob``...), oldest first; ``alive_only``: those
        whose heartbeat is recent (Airflow's own health check threshold)."""
        params: dict[str, Any] = {"job_type": job_type, "limit": 100, "order_by": "id"}
        if alive_only:
            # The API has no "only dead" filter: is_alive=false still returns the alive ones.
            params["is_alive"] = "true"
        return list(self.api("GET", "/jobs", params=params)["jobs"])


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        error = ApiNotFound if response.status_code == 404 else StackError
        raise error(
            f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:2000]}"
        )


def parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _format_log_entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    if "sources" in entry:
        return "\n".join(f"# source: {source}" for source in entry["sources"])
    parts = [
        str(entry.get("timestamp", "")),
        str(entry.get("level", "")).upper(),
        str(entry.get("event", "")),
    ]
    return " ".join(part for part in parts if part)
