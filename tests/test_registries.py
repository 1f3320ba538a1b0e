"""Every step kind is complete in every layer: a spec has its SDK builder, its step type a local runner, and the
registries find their entries by scanning their packages (adding a kind is adding files)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.local.api.base import OPERATIONS
from airflow_provider_smpipe.local.jobs import JOB_KINDS
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS
from airflow_provider_smpipe.model.spec import StepSpec
from airflow_provider_smpipe.registry import Registry
from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS

# Step types the local backend cannot emulate (documented in docs/local-backend.md), and the escape hatch,
# whose SageMaker type depends on what the factory builds.
NOT_RUN_LOCALLY = {"Custom"}


def _spec_classes() -> list[type[StepSpec]]:
    import airflow_provider_smpipe.model.steps as package

    classes = []
    for module in pkgutil.iter_modules(package.__path__):
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, StepSpec) and value.step_type:
                classes.append(value)
    return sorted(set(classes), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("spec_class", _spec_classes(), ids=lambda cls: cls.__name__)
def test_every_spec_has_an_sdk_builder(spec_class: type[StepSpec]) -> None:
    assert STEP_BUILDERS.get(spec_class) is not None


@pytest.mark.parametrize(
    "spec_class",
    [cls for cls in _spec_classes() if cls.step_type not in NOT_RUN_LOCALLY],
    ids=lambda cls: cls.__name__,
)
def test_every_step_type_runs_locally(spec_class: type[StepSpec]) -> None:
    assert spec_class.step_type in STEP_RUNNERS


def test_every_job_kind_gets_its_api_operations() -> None:
    for kind in JOB_KINDS:
        noun = JOB_KINDS[kind].api_noun
        assert {f"Describe{noun}", f"List{noun}s", f"Stop{noun}"} <= set(OPERATIONS)


def test_job_backed_step_kinds_name_a_known_job_kind() -> None:
    for key in STEP_KINDS:
        job_kind = STEP_KINDS[key].job_kind
        assert job_kind is None or job_kind in JOB_KINDS or job_kind == "tuning"


def test_registry_discovers_modules_and_refuses_double_registration() -> None:
    registry: Registry[str, object] = Registry("thing", "airflow_provider_smpipe.local.steps", skip=("base",))
    assert "Processing" not in registry._entries  # nothing imported yet for this fresh registry
    sentinel = object()
    registry.add("X", sentinel)
    registry.add("X", sentinel)  # the same value again is fine (a module imported twice)
    with pytest.raises(RuntimeError, match="two things registered"):
        registry.add("X", object())
    with pytest.raises(KeyError, match="no thing registered for 'Y'"):
        registry["Y"]
