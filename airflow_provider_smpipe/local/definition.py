"""Parsing of a pipeline definition into steps, dependencies and typed parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_smpipe.local.errors import validation_error
from airflow_provider_smpipe.local.expressions import step_references

SUPPORTED_STEP_TYPES = frozenset({"Processing", "Training", "Condition", "Fail"})


@dataclass
class StepDef:
    """One step of the definition, flattened out of condition branches.

    :param branch: ``(condition step, True/False)`` when the step sits in IfSteps/ElseSteps.
    :param depends_on: explicit DependsOn plus steps its arguments refer to.
    """

    name: str
    type: str
    arguments: dict[str, Any]
    raw: dict[str, Any]
    depends_on: set[str] = field(default_factory=set)
    branch: tuple[str, bool] | None = None
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PipelineDef:
    steps: dict[str, StepDef]
    parameters: list[dict[str, Any]]


def parse_definition(text: str) -> PipelineDef:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as err:
        raise validation_error(f"Pipeline definition is not valid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise validation_error("Pipeline definition must be a JSON object")
    steps: dict[str, StepDef] = {}
    _collect(doc.get("Steps") or [], None, steps)
    for step in steps.values():
        unknown = step.depends_on - steps.keys()
        if unknown:
            raise validation_error(f"Step {step.name} depends on undefined steps {sorted(unknown)}")
    return PipelineDef(steps=steps, parameters=list(doc.get("Parameters") or []))


def _collect(raw_steps: list[Any], branch: tuple[str, bool] | None, out: dict[str, StepDef]) -> None:
    for raw in raw_steps:
        if not isinstance(raw, dict) or not isinstance(raw.get("Name"), str) or "Type" not in raw:
            raise validation_error(f"Invalid step in pipeline definition: {str(raw)[:200]}")
        name = raw["Name"]
        if name in out:
            raise validation_error(f"Step name {name} is used more than once")
        arguments = raw.get("Arguments") or {}
        step = StepDef(name=name, type=str(raw["Type"]), arguments=arguments, raw=raw, branch=branch)
        step.depends_on.update(str(dep) for dep in raw.get("DependsOn") or [])
        if step.type == "Condition":
            # Only the conditions are this step's inputs; nested steps carry their own references.
            step.depends_on.update(step_references(arguments.get("Conditions", [])))
        else:
            step.depends_on.update(step_references(arguments))
        step.depends_on.discard(name)
        for prop in raw.get("PropertyFiles") or []:
            step.property_files[prop.get("PropertyFileName")] = prop
        # RetryPolicies and CacheConfig are read by the executor (local/retries.py, local/caching.py).
        out[name] = step
        if step.type == "Condition":
            _collect(arguments.get("IfSteps") or [], (name, True), out)
            _collect(arguments.get("ElseSteps") or [], (name, False), out)


def resolve_parameters(definition: PipelineDef, overrides: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Defaults overridden by the execution's PipelineParameters, converted by declared type."""
    declared = {str(p.get("Name")): p for p in definition.parameters}
    given: dict[str, Any] = {}
    for item in overrides or []:
        name = str(item.get("Name"))
        if name not in declared:
            raise validation_error(f"Parameter {name} is not defined in the pipeline definition")
        given[name] = item.get("Value")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        kind = spec.get("Type", "String")
        if name in given:
            values[name] = _convert(name, kind, given[name])
        elif "DefaultValue" in spec:
            values[name] = _convert(name, kind, spec["DefaultValue"])
        else:
            raise validation_error(f"Parameter {name} has no default value and no value was given")
    return values


def _convert(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "Integer":
            return int(value) if not isinstance(value, str) else int(float(value))
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false"):
                raise ValueError(value)
            return text == "true"
    except (TypeError, ValueError) as err:
        raise validation_error(f"Value {value!r} of parameter {name} is not a valid {kind}") from err
    return str(value)
