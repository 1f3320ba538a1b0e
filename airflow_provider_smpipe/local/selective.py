"""Selective executions (``SelectiveExecutionConfig`` on StartPipelineExecution), as SageMaker runs them.

Only the selected steps run. Steps upstream of them that were not selected are not run again: they reuse the
source execution's results (its metadata and properties, so ``Steps.<x>`` references and property files read
the source's outputs) and appear in ListPipelineExecutionSteps with ``SelectiveExecutionResult``
(``SourcePipelineExecutionArn``). Steps downstream of the selection, or unrelated to it, do not run and do not
appear. As on SageMaker the selected steps must be connected (every step on a path between two selected steps is
selected), the source execution must belong to the same pipeline and have ended Succeeded or Failed, and it is
required when a selected step depends on a step that is not selected.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.errors import validation_error
from airflow_provider_smpipe.local.state import StepRun

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.definition import PipelineDef
    from airflow_provider_smpipe.local.state import Execution, Store


def _upstream(pdef: PipelineDef) -> dict[str, set[str]]:
    """Direct upstream steps of each step: dependencies, and the condition a branch step sits in."""
    direct = {name: set(step.depends_on) for name, step in pdef.steps.items()}
    for name, step in pdef.steps.items():
        if step.branch is not None:
            direct[name].add(step.branch[0])
    return direct


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        for other in edges.get(name, ()):
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def check_selection(
    config: dict[str, Any], pdef: PipelineDef, pipeline_arn: str, store: Store
) -> tuple[set[str], Execution | None]:
    """The selected step names and the source execution; ValidationException when SageMaker would refuse."""
    selected = {str(item.get("StepName")) for item in config.get("SelectedSteps") or []}
    if not selected:
        raise validation_error("SelectiveExecutionConfig.SelectedSteps must name at least one step")
    unknown = sorted(selected - pdef.steps.keys())
    if unknown:
        raise validation_error(f"Selected steps {unknown} are not steps of the pipeline definition")
    upstream = _upstream(pdef)
    downstream: dict[str, set[str]] = {name: set() for name in pdef.steps}
    for name, ups in upstream.items():
        for up in ups:
            downstream.setdefault(up, set()).add(name)
    between = _closure(selected, downstream) & _closure(selected, upstream)
    missing = sorted(between - selected)
    if missing:
        raise validation_error(
            f"Selected steps must be connected: steps {missing} lie on a path between selected steps and must be "
            "selected too"
        )
    source_arn = config.get("SourcePipelineExecutionArn")
    needed = _closure(selected, upstream) - selected
    source = None
    if source_arn:
        source = store.executions.get(str(source_arn))
        if source is None or source.pipeline_arn != pipeline_arn:
            raise validation_error(
                f"Source pipeline execution {source_arn} does not exist or is not an execution of this pipeline"
            )
        if source.status not in ("Succeeded", "Failed"):
            raise validation_error(
                f"Source pipeline execution {source_arn} has status {source.status}; it must be Succeeded or Failed"
            )
        not_run = sorted(
            n for n in needed if (run := source.steps.get(n)) is None or run.status != "Succeeded"
        )
        if not_run:
            raise validation_error(
                f"Steps {not_run} that the selected steps depend on did not succeed in source execution {source_arn}"
            )
    elif needed:
        raise validation_error(
            f"SourcePipelineExecutionArn is required: the selected steps depend on steps {sorted(needed)} that are "
            "not selected"
        )
    return selected, source


def reuse_source_results(execution: Execution, pdef: PipelineDef, store: Store) -> set[str]:
    """Put the reused steps into ``execution``; return the names of the steps that must not run."""
    config = execution.selective_execution_config or {}
    selected, source = check_selection(config, pdef, execution.pipeline_arn, store)
    needed = _closure(selected, _upstream(pdef)) - selected
    for name in sorted(needed, key=lambda n: source.steps[n].start_time if source else 0):
        assert source is not None
        earlier = source.steps[name]
        run = StepRun(
            name=name,
            type=earlier.type,
            status="Succeeded",
            metadata=copy.deepcopy(earlier.metadata),
            display_name=earlier.display_name,
            description=earlier.description,
            properties=earlier.properties,
            outcome=earlier.outcome,
            selective_execution_result={"SourcePipelineExecutionArn": source.arn},
        )
        run.finish("Succeeded")
        execution.steps[name] = run
        execution.step_order.append(name)
    return set(pdef.steps) - selected
