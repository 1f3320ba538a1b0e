"""``python -m airflow_provider_smpipe.local.serving <config.json>``: one instance of a local transform job.

The job kind (:mod:`airflow_provider_smpipe.local.jobs.transform`) writes the configuration: the model's
serving code (script or mapped server command), the job's settings (``CreateTransformJob`` request) and this
instance's share of the input objects, already downloaded. Results go to ``<output_dir>/<object>.out``; on
failure the reason goes to ``/opt/ml/output/failure`` and the exit code is 1.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from airflow_provider_smpipe.local.serving.handlers import (
    HandlerError,
    InvocationTimeout,
    ModelServerError,
    ScriptModel,
    ServerModel,
)
from airflow_provider_smpipe.local.serving.records import BatchAgent, TransformDataError, TransformSettings

FAILURE_FILE = "/opt/ml/output/failure"
PREFIX = "smpipe-local transform:"


def say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def _load_model(config: dict[str, Any]) -> ScriptModel | ServerModel:
    timeout = config.get("invocation_timeout")
    if config["mode"] == "server":
        command = [str(part) for part in config["server_command"]]
        say(f"starting the model server mapped to image {config.get('image')!r}: {' '.join(command)}")
        return ServerModel(command, timeout=timeout)
    code_dir, program = str(config["code_dir"]), str(config["program"])
    requirements = Path(code_dir) / "requirements.txt"
    if requirements.is_file():
        say(
            f"{requirements} is not installed locally: the script runs with the local backend's own Python "
            "packages (install what it needs there)"
        )
    say(
        f"loading model {config.get('model_name')!r} with {code_dir}/{program} (model_fn on {config['model_dir']})"
    )
    model = ScriptModel(code_dir, program, str(config["model_dir"]), timeout=timeout)
    defaults = [n for n in ("input_fn", "predict_fn", "output_fn") if n not in model.found]
    if "transform_fn" in model.found:
        say("handlers: model_fn, transform_fn")
    else:
        say(
            "handlers: "
            + ", ".join(n for n in model.found if n != "transform_fn")
            + (f"; defaults for {', '.join(defaults)}" if defaults else "")
        )
    return model


def run(config: dict[str, Any]) -> None:
    settings = TransformSettings.from_request(config["request"])
    settings.check()
    model = _load_model(config)
    try:
        agent = BatchAgent(settings, lambda body: model.invoke(body, settings.content_type, settings.accept))
        output_dir = Path(config["output_dir"])
        total = 0
        for item in config["objects"]:
            name = str(item["name"])
            data = Path(item["path"]).read_bytes()
            try:
                result = agent.transform(name, data)
            except (HandlerError, InvocationTimeout, ModelServerError, TransformDataError) as err:
                if not str(err).startswith(f"{name}:"):
                    err.args = (f"{err} (input object {name})",)
                raise
            target = output_dir / f"{name}.out"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(result.body)
            total += result.records
            say(f"{name}: {result.records} records in {result.requests} requests -> {name}.out")
        say(f"done: {len(config['objects'])} objects, {total} records")
    finally:
        if isinstance(model, ServerModel):
            model.close()


def _print_script_traceback(error: BaseException) -> None:
    """The traceback from the script's frames on (the harness's own frames say nothing to its author)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename.startswith(here):
        frames = frames.tb_next
    traceback.print_exception(type(error), error, frames or error.__traceback__, file=sys.stderr)


def _fail(message: str) -> None:
    try:
        os.makedirs(os.path.dirname(FAILURE_FILE), exist_ok=True)
        Path(FAILURE_FILE).write_text(message[:1000])
    except OSError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m airflow_provider_smpipe.local.serving <config.json>", file=sys.stderr)
        return 2
    config = json.loads(Path(argv[0]).read_text())
    try:
        run(config)
    except HandlerError as err:
        _print_script_traceback(err.error)
        _fail(str(err))
        return 1
    except (TransformDataError, InvocationTimeout, ModelServerError) as err:
        print(f"{PREFIX} {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        _fail(str(err))
        return 1
    except Exception as err:
        traceback.print_exc()
        _fail(f"{type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
