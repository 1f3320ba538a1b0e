"""``python -m airflow_provider_smpipe.demo run|up|down``: the example pipeline on a local Airflow stack.

- ``run``: start the stack, trigger ``churn_pipeline``, print every task state change as it happens and a final
  table, stop everything; exit 0 only if the run succeeded.
- ``up``: start the stack and trigger the DAG, then leave it running (PIDs in ``<home>/stack.json``).
- ``down``: stop what ``up`` started.

``--db postgres``, ``--executor celery`` and ``--triggerers N`` run the deployment of ``docker-compose.yaml``
(PostgreSQL, Redis + a Celery worker, several triggerers) as local processes; the default is SQLite, the
LocalExecutor and one triggerer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.demo.stack import (
    DATABASES,
    EXECUTORS,
    AirflowStack,
    StackError,
    StateChange,
    free_port,
    port_is_free,
    stop_from_state,
)

if TYPE_CHECKING:
    from types import FrameType

DEFAULT_HOME = Path(".demo") / "airflow"
DEFAULT_DAG = "churn_pipeline"


def _stamp(at: float | None = None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at if at is not None else time.time()))


def say(message: str) -> None:
    print(f"{_stamp()}  {message}", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_smpipe.demo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "start the stack, run the DAG once, follow it, stop the stack"),
        ("up", "start the stack, trigger the DAG and leave it running"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--home", type=Path, default=DEFAULT_HOME, help="AIRFLOW_HOME (default %(default)s)"
        )
        command.add_argument(
            "--port", type=int, default=8080, help="UI/API port; 0 or a taken port: a free one"
        )
        command.add_argument("--host", default="127.0.0.1", help="interface the UI/API binds")
        command.add_argument("--dag-id", default=DEFAULT_DAG)
        command.add_argument("--conf", type=json.loads, default={}, help="run parameters as JSON")
        command.add_argument("--password", default="admin", help="UI password of user 'admin'")
        command.add_argument(
            "--db",
            choices=DATABASES,
            default=None,
            help="metadata database (default: sqlite; postgres with --executor celery)",
        )
        command.add_argument("--executor", choices=tuple(EXECUTORS), default="local", help="default: local")
        command.add_argument("--triggerers", type=int, default=1, help="triggerer processes (default 1)")
        if name == "run":
            command.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the run")
        else:
            command.add_argument("--no-trigger", action="store_true", help="only start the stack")
    down = commands.add_parser("down", help="stop what `up` started")
    down.add_argument("--home", type=Path, default=DEFAULT_HOME)
    return parser


def _stack(args: argparse.Namespace) -> AirflowStack:
    port = args.port
    if port == 0:
        port = free_port()
    elif not port_is_free(port, "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host):
        port = free_port()
        say(f"port {args.port} is taken; using {port}")
    db = args.db or ("postgres" if args.executor == "celery" else "sqlite")
    return AirflowStack(
        args.home,
        api_port=port,
        api_host=args.host,
        password=args.password,
        echo=say,
        db=db,
        executor=args.executor,
        triggerers=args.triggerers,
    )


def _state_path(home: Path) -> Path:
    return home / "stack.json"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def describe_change(change: StateChange) -> str:
    if change.is_run:
        return f"run {change.new.upper() if change.new else change.new}"
    attempt = f" (try {change.try_number})" if change.try_number and change.try_number > 1 else ""
    return f"{change.task_id:<28} {change.old or '-':>16} -> {change.new}{attempt}"


def final_table(instances: list[dict[str, Any]]) -> str:
    rows = [("task", "state", "try", "seconds")]
    for ti in sorted(instances, key=lambda t: (t.get("start_date") or "9999", t["task_id"])):
        duration = ti.get("duration")
        rows.append(
            (
                ti["task_id"],
                str(ti["state"]),
                str(ti.get("try_number", "")),
                f"{duration:.1f}" if isinstance(duration, int | float) else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


def _explain_failures(stack: AirflowStack, dag_id: str, run_id: str, instances: list[dict[str, Any]]) -> None:
    for ti in instances:
        if ti["state"] not in ("failed", "upstream_failed"):
            continue
        if ti["state"] == "upstream_failed":
            continue
        try:
            text = stack.task_log(dag_id, run_id, ti["task_id"], max(1, int(ti.get("try_number") or 1)))
        except StackError as error:
            text = f"(log unavailable: {error})"
        tail = "\n".join("    " + line for line in text.splitlines()[-25:])
        print(f"\n--- last lines of {ti['task_id']}'s log ---\n{tail}", flush=True)


def _start_and_trigger(stack: AirflowStack, args: argparse.Namespace) -> str:
    stack.start()
    say(f"timings: {json.dumps({k: round(v, 1) for k, v in stack.timings.items()})}")
    stack.wait_for_dag(args.dag_id)
    stack.unpause(args.dag_id)
    run_id = stack.trigger(args.dag_id, conf=args.conf)
    say(f"triggered {args.dag_id} run {run_id}")
    return run_id


def command_run(args: argparse.Namespace) -> int:
    stack = _stack(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        run_id = _start_and_trigger(stack, args)
        say(f"UI: {stack.ui_url(args.dag_id, run_id)}  (login admin / {args.password})")
        say(f"task logs: {stack.log_folder}/dag_id={args.dag_id}/run_id={run_id}/")
        say(f"service logs: {stack.service_log_folder}/")
        started = time.monotonic()
        final = None
        for change in stack.wait_for_run(args.dag_id, run_id, timeout=args.timeout):
            print(f"{_stamp(change.at)}  {describe_change(change)}", flush=True)
            if change.is_run:
                final = change.new
        instances = stack.task_instances(args.dag_id, run_id)
        print("\n" + final_table(instances), flush=True)
        say(f"run {run_id} ended {final} after {time.monotonic() - started:.0f}s")
        if final != "success":
            _explain_failures(stack, args.dag_id, run_id, instances)
        say(f"task logs are kept in {stack.log_folder}; stopping the stack (`make up` keeps it running)")
        return 0 if final == "success" else 1
    except KeyboardInterrupt:
        say("interrupted: stopping the stack")
        return 130
    except (StackError, TimeoutError) as error:
        say(f"error: {error}")
        return 1
    finally:
        stack.stop()
        if "stop" in stack.timings:
            say(f"stopped everything in {stack.timings['stop']:.0f}s")


def command_up(args: argparse.Namespace) -> int:
    state_path = _state_path(args.home)
    if state_path.exists():
        say(f"{state_path} exists: the stack may already be up; run `make down` first")
        return 1
    stack = _stack(args)
    try:
        if args.no_trigger:
            stack.start()
        else:
            run_id = _start_and_trigger(stack, args)
            say(f"follow the run: {stack.ui_url(args.dag_id, run_id)}")
        state_path.write_text(json.dumps(stack.state(), indent=2))
    except BaseException:
        stack.stop()
        raise
    stack.detach()
    say(f"Airflow UI: {stack.api_url}  login: {stack.username} / {args.password}")
    say(f"local AWS endpoint: {stack.endpoint_url}")
    say(f"logs: {stack.log_folder} (tasks), {stack.service_log_folder} (services)")
    say(f"stop it with `make down` (PIDs in {state_path})")
    return 0


def command_down(args: argparse.Namespace) -> int:
    state_path = _state_path(args.home)
    if not state_path.exists():
        say(f"nothing to stop ({state_path} does not exist)")
        return 0
    state = json.loads(state_path.read_text())
    stopped = stop_from_state(state)
    say(f"stopped {', '.join(stopped) if stopped else 'nothing (no recorded process was still running)'}")
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": command_run, "up": command_up, "down": command_down}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
