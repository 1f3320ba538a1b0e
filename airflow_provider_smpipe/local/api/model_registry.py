"""Models and the model registry: moto keeps the records, these handlers answer in SageMaker's shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local import model_registry as registry
from airflow_provider_smpipe.local.api.base import ApiContext, epoch, moto_sagemaker, operation, paginate
from airflow_provider_smpipe.local.errors import validation_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def _listed(
    records: Iterable[Any],
    body: dict[str, Any],
    *,
    name: Callable[[Any], str],
    default_order: str,
    default_max: int,
) -> tuple[list[Any], str | None]:
    """Filter by NameContains and creation time, sort by Name or CreationTime, and page."""
    contains = body.get("NameContains")
    after, before = epoch(body.get("CreationTimeAfter")), epoch(body.get("CreationTimeBefore"))
    chosen = [
        r
        for r in records
        if (not contains or contains in name(r))
        and (after is None or (epoch(r.creation_time) or 0) > after)
        and (before is None or (epoch(r.creation_time) or 0) < before)
    ]
    key: Callable[[Any], Any] = name if body.get("SortBy") == "Name" else (lambda r: epoch(r.creation_time))
    chosen.sort(key=key, reverse=body.get("SortOrder", default_order) == "Descending")
    return paginate(chosen, body, default_max)


def _page(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {key: items}
    if token:
        out["NextToken"] = token
    return out


# -- models ----------------------------------------------------------------------------------------------


@operation("CreateModel")
def create_model(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    name = body.get("ModelName")
    if not name:
        raise validation_error("ModelName is required")
    return {"ModelArn": registry.create_model(account, region, str(name), body).arn}


@operation("DescribeModel")
def describe_model(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    return registry.describe_model(registry.find_model(account, region, str(body.get("ModelName", ""))))


@operation("ListModels")
def list_models(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    records = moto_sagemaker(account, region)._models.values()
    page, token = _listed(
        records, body, name=lambda m: m.model_name, default_order="Descending", default_max=10
    )
    return _page("Models", [registry.model_summary(m) for m in page], token)


# -- model package groups --------------------------------------------------------------------------------


@operation("CreateModelPackageGroup")
def create_model_package_group(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    group = registry.create_group(
        account,
        region,
        str(body.get("ModelPackageGroupName", "")),
        body.get("ModelPackageGroupDescription"),
        body.get("Tags"),
    )
    return {"ModelPackageGroupArn": group.arn}


@operation("DescribeModelPackageGroup")
def describe_model_package_group(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    group = registry.find_group(account, region, str(body.get("ModelPackageGroupName", "")))
    return registry.describe_group(group)


@operation("ListModelPackageGroups")
def list_model_package_groups(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    records = moto_sagemaker(account, region).model_package_groups.values()
    page, token = _listed(
        records, body, name=lambda g: g.model_package_group_name, default_order="Ascending", default_max=10
    )
    return _page("ModelPackageGroupSummaryList", [registry.group_summary(g) for g in page], token)


# -- model packages --------------------------------------------------------------------------------------


@operation("CreateModelPackage")
def create_model_package(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    package = registry.create_package(account, region, body, create_missing_group=False)
    return {"ModelPackageArn": package.arn}


@operation("DescribeModelPackage")
def describe_model_package(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    package = registry.find_package(account, region, str(body.get("ModelPackageName", "")))
    return registry.describe_package(package)


@operation("ListModelPackages")
def list_model_packages(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    group = body.get("ModelPackageGroupName")
    group = registry.group_name(str(group)) if group else None
    # With a group, its versions; otherwise the type asked for (SageMaker's default: unversioned packages).
    kind = "Versioned" if group else body.get("ModelPackageType", "Unversioned")
    status = body.get("ModelApprovalStatus")
    records = [
        p
        for p in registry.packages(account, region)
        if (group is None or p.model_package_group_name == group)
        and (status is None or p.model_approval_status == status)
        and (kind == "Both" or (p.model_package_version is not None) == (kind == "Versioned"))
    ]
    page, token = _listed(
        records, body, name=lambda p: p.model_package_name, default_order="Ascending", default_max=10
    )
    return _page("ModelPackageSummaryList", [registry.package_summary(p) for p in page], token)


@operation("UpdateModelPackage")
def update_model_package(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    return {"ModelPackageArn": registry.update_package(account, region, body).arn}
