"""Output parameters: declared names and types, and values as SageMaker stores and reads them."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.output_parameters import (
    OutputParameterRef,
    output_specs,
    output_value_text,
    typed_output_value,
)


def test_declarations() -> None:
    assert output_specs("t", {"a": "Integer", "b": bool, "c": float, "d": str}) == (
        ("a", "Integer"),
        ("b", "Boolean"),
        ("c", "Float"),
        ("d", "String"),
    )
    assert output_specs("t", ["x", "y"]) == (("x", "String"), ("y", "String"))
    assert output_specs("t", None) == ()
    with pytest.raises(PipelineDefinitionError, match="task 't' field 'outputs'"):
        output_specs("t", 5)


@pytest.mark.parametrize(
    ("kind", "value", "text"),
    [
        ("Boolean", True, "true"),
        ("Boolean", "False", "false"),
        ("Integer", 7, "7"),
        ("Integer", 7.0, "7"),
        ("Integer", " 12 ", "12"),
        ("Float", 0.5, "0.5"),
        ("Float", "2", "2.0"),
        ("Float", 3, "3.0"),
        ("String", "s3://b/k", "s3://b/k"),
        ("String", 5, "5"),
        ("String", {"a": 1}, '{"a": 1}'),
    ],
)
def test_values_are_stored_as_the_declared_type(kind: str, value: Any, text: str) -> None:
    assert output_value_text("o", kind, value) == text


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("Boolean", 1),
        ("Boolean", "yes"),
        ("Integer", True),
        ("Integer", 1.5),
        ("Integer", "1.5"),
        ("Float", "nan"),
        ("Float", "x"),
        ("Float", True),
        ("String", "x" * 1025),
    ],
)
def test_values_not_of_the_declared_type_are_refused(kind: str, value: Any) -> None:
    with pytest.raises(ValueError, match="output 'o'"):
        output_value_text("o", kind, value)


def test_stored_values_read_back_typed() -> None:
    assert typed_output_value("Integer", "12") == 12
    assert typed_output_value("Float", "0.5") == 0.5
    assert typed_output_value("Boolean", "true") is True
    assert typed_output_value("String", "12") == "12"
    assert typed_output_value("Integer", "many") == "many"  # left as sent


def test_reference_renders_like_the_sdk_outputs_property() -> None:
    ref = OutputParameterRef.of("ml.approve", "approved")
    assert (ref.task_id, ref.path, ref.output_name) == ("ml.approve", "Outputs['approved']", "approved")
    assert ref.step_task_ids() == ("ml.approve",)
    assert str(ref) == "output parameter 'approved' of 'ml.approve'"
