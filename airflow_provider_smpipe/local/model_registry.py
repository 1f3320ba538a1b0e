"""Models and the model registry on moto's SageMaker backend, rendered the way SageMaker answers.

moto 5.2.5 stores models, model package groups and model packages, but its responses do not match botocore's
output shapes (``Tags`` in DescribeModel, no ``ModelPackageName`` for a versioned package, full descriptions in
List* summaries, ``null`` tokens) and UpdateModelPackage drops the customer metadata it is not given. The model
and register-model step runners and the API handlers of :mod:`airflow_provider_smpipe.local.api.model_registry`
share what is here.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.api.base import epoch, moto_sagemaker
from airflow_provider_smpipe.local.errors import ApiError, validation_error

if TYPE_CHECKING:
    from collections.abc import Iterator

APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")
# Versions of one group are numbered in creation order: one creation at a time.
_CREATE_LOCK = threading.Lock()

_MODEL_FIELDS = (
    "ModelName",
    "PrimaryContainer",
    "Containers",
    "ExecutionRoleArn",
    "VpcConfig",
    "CreationTime",
    "ModelArn",
    "EnableNetworkIsolation",
)
_PACKAGE_FIELDS = (
    "ModelPackageName",
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "ModelPackageDescription",
    "CreationTime",
    "InferenceSpecification",
    "SourceAlgorithmSpecification",
    "ValidationSpecification",
    "ModelPackageStatus",
    "ModelPackageStatusDetails",
    "CertifyForMarketplace",
    "ModelApprovalStatus",
    "CreatedBy",
    "MetadataProperties",
    "ModelMetrics",
    "LastModifiedTime",
    "LastModifiedBy",
    "ApprovalDescription",
    "Domain",
    "Task",
    "SamplePayloadUrl",
    "CustomerMetadataProperties",
    "DriftCheckBaselines",
    "AdditionalInferenceSpecifications",
    "SkipModelValidation",
    "SourceUri",
    "SecurityConfig",
    "ModelCard",
    "ModelLifeCycle",
)
_PACKAGE_SUMMARY_FIELDS = (
    "ModelPackageName",
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "ModelPackageDescription",
    "CreationTime",
    "ModelPackageStatus",
    "ModelApprovalStatus",
    "ModelLifeCycle",
)
_GROUP_FIELDS = (
    "ModelPackageGroupName",
    "ModelPackageGroupArn",
    "ModelPackageGroupDescription",
    "CreationTime",
    "CreatedBy",
    "ModelPackageGroupStatus",
)
_GROUP_SUMMARY_FIELDS = tuple(f for f in _GROUP_FIELDS if f != "CreatedBy")
#: CreateModelPackage fields moto does not keep, kept on its record under their snake_case names.
_EXTRA_PACKAGE_FIELDS = ("SkipModelValidation", "SourceUri", "SecurityConfig", "ModelCard", "ModelLifeCycle")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _attribute(record: Any, field: str) -> Any:
    if field in ("ModelArn", "ModelPackageArn", "ModelPackageGroupArn"):
        return getattr(record, "arn", None)
    return getattr(record, _snake(field), None)


def _render(record: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        value = _attribute(record, field)
        if isinstance(value, datetime):
            value = epoch(value)
        if value is None or value == {} or value == []:
            continue
        out[field] = value
    return out


def service_error(error: Exception) -> ApiError:
    """A moto service exception as the backend's own API error."""
    return ApiError(str(getattr(error, "code", "ValidationException")), str(getattr(error, "message", error)))


def group_name(name_or_arn: str) -> str:
    """A model package group's name from its name or ARN."""
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


# -- models ----------------------------------------------------------------------------------------------


def describe_model(model: Any) -> dict[str, Any]:
    """DescribeModel's response for a moto model."""
    return _render(model, _MODEL_FIELDS)


def model_summary(model: Any) -> dict[str, Any]:
    return _render(model, ("ModelName", "ModelArn", "CreationTime"))


def find_model(account: str, region: str, name: str) -> Any:
    model = moto_sagemaker(account, region)._models.get(name)
    if model is None:
        arn = f"arn:aws:sagemaker:{region}:{account}:model/{name.lower()}"
        raise validation_error(f'Could not find model "{arn}".')
    return model


def create_model(account: str, region: str, name: str, request: dict[str, Any]) -> Any:
    """Create a model in moto's backend (what a model step does), refusing an existing name as SageMaker does."""
    backend = moto_sagemaker(account, region)
    if name in backend._models:
        raise validation_error(f'Cannot create already existing model "{backend._models[name].arn}".')
    model = backend.create_model(
        model_name=name,
        execution_role_arn=request.get("ExecutionRoleArn"),
        primary_container=request.get("PrimaryContainer"),
        vpc_config=request.get("VpcConfig"),
        containers=request.get("Containers"),
        tags=request.get("Tags"),
    )
    model.enable_network_isolation = bool(request.get("EnableNetworkIsolation", False))
    return model


# -- model package groups --------------------------------------------------------------------------------


def describe_group(group: Any) -> dict[str, Any]:
    return _render(group, _GROUP_FIELDS)


def group_summary(group: Any) -> dict[str, Any]:
    return _render(group, _GROUP_SUMMARY_FIELDS)


def find_group(account: str, region: str, name_or_arn: str) -> Any:
    name = group_name(name_or_arn)
    group = moto_sagemaker(account, region).model_package_groups.get(name)
    if group is None:
        arn = f"arn:aws:sagemaker:{region}:{account}:model-package-group/{name.lower()}"
        raise validation_error(f"ModelPackageGroup {arn} does not exist.")
    return group


def create_group(
    account: str, region: str, name: str, description: str | None = None, tags: Any = None
) -> Any:
    backend = moto_sagemaker(account, region)
    if name in backend.model_package_groups:
        raise validation_error(
            f"Model Package Group already exists: {backend.model_package_groups[name].arn}"
        )
    backend.create_model_package_group(name, description, tags=tags)
    return backend.model_package_groups[name]


# -- model packages --------------------------------------------------------------------------------------


def describe_package(package: Any) -> dict[str, Any]:
    """DescribeModelPackage's response (a versioned package's name is its group's name, as in SageMaker)."""
    out = _render(package, _PACKAGE_FIELDS)
    # moto names the statuses by ARN (longer than the 63 characters allowed); nothing is validated or scanned
    # here, so only a package with a validation specification reports one (completed) validation.
    validated = (
        [{"Name": package.model_package_name, "Status": "Completed"}]
        if package.validation_specification
        else []
    )
    out["ModelPackageStatusDetails"] = {"ValidationStatuses": validated, "ImageScanStatuses": []}
    return out


def package_summary(package: Any) -> dict[str, Any]:
    return _render(package, _PACKAGE_SUMMARY_FIELDS)


def packages(account: str, region: str) -> Iterator[Any]:
    return iter(list(moto_sagemaker(account, region).model_packages.values()))


def find_package(account: str, region: str, name_or_arn: str) -> Any:
    backend = moto_sagemaker(account, region)
    key = backend.model_package_name_mapping.get(name_or_arn, name_or_arn)
    package = backend.model_packages.get(key)
    if package is None:
        raise validation_error(f"ModelPackage {name_or_arn} does not exist.")
    return package


def check_approval_status(status: Any) -> None:
    if status not in APPROVAL_STATUSES:
        raise validation_error(
            f"Value '{status}' at 'modelApprovalStatus' failed to satisfy constraint: Member must satisfy enum "
            f"value set: [{', '.join(APPROVAL_STATUSES)}]"
        )


def create_package(account: str, region: str, request: dict[str, Any], *, create_missing_group: bool) -> Any:
    """Create a model package (a new version when it names a group); return moto's record.

    :param create_missing_group: Create the group when it does not exist (a pipeline's register-model step
        does); otherwise refuse, as CreateModelPackage does.
    """
    backend = moto_sagemaker(account, region)
    group = request.get("ModelPackageGroupName")
    name = group_name(str(group)) if group else None
    status = request.get("ModelApprovalStatus")
    if status is None and name:
        status = "PendingManualApproval"  # versioned packages start pending unless told otherwise
    if status is not None:
        check_approval_status(status)
    with _CREATE_LOCK:
        if name and name not in backend.model_package_groups:
            if not create_missing_group:
                raise validation_error(f"Model Package Group {name} does not exist.")
            backend.create_model_package_group(name, None, tags=None)
        try:
            arn = backend.create_model_package(
                model_package_name=request.get("ModelPackageName"),
                model_package_group_name=name,
                model_package_description=request.get("ModelPackageDescription"),
                inference_specification=request.get("InferenceSpecification"),
                validation_specification=request.get("ValidationSpecification"),
                source_algorithm_specification=request.get("SourceAlgorithmSpecification"),
                certify_for_marketplace=bool(request.get("CertifyForMarketplace", False)),
                tags=request.get("Tags"),
                model_approval_status=status,
                metadata_properties=request.get("MetadataProperties"),
                model_metrics=request.get("ModelMetrics"),
                client_token=request.get("ClientToken"),
                customer_metadata_properties=request.get("CustomerMetadataProperties"),
                drift_check_baselines=request.get("DriftCheckBaselines"),
                domain=request.get("Domain"),
                task=request.get("Task"),
                sample_payload_url=request.get("SamplePayloadUrl"),
                additional_inference_specifications=request.get("AdditionalInferenceSpecifications"),
            )
        except ApiError:
            raise
        except Exception as err:
            if hasattr(err, "code"):
                raise service_error(err) from err
            raise
    package = backend.model_packages[arn]
    for field in _EXTRA_PACKAGE_FIELDS:
        if field in request:
            setattr(package, _snake(field), request[field])
    return package


def update_package(account: str, region: str, request: dict[str, Any]) -> Any:
    """UpdateModelPackage: change only what the request names; customer metadata is merged, as in SageMaker."""
    package = find_package(account, region, str(request.get("ModelPackageArn", "")))
    if "ModelApprovalStatus" in request:
        check_approval_status(request["ModelApprovalStatus"])
        package.model_approval_status = request["ModelApprovalStatus"]
    if "ApprovalDescription" in request:
        package.approval_description = request["ApprovalDescription"]
    metadata = dict(package.customer_metadata_properties or {})
    metadata.update(request.get("CustomerMetadataProperties") or {})
    for key in request.get("CustomerMetadataPropertiesToRemove") or ():
        metadata.pop(key, None)
    package.customer_metadata_properties = metadata or None
    if request.get("AdditionalInferenceSpecificationsToAdd"):
        package.additional_inference_specifications = [
            *(package.additional_inference_specifications or ()),
            *request["AdditionalInferenceSpecificationsToAdd"],
        ]
    if "InferenceSpecification" in request:
        package.inference_specification = request["InferenceSpecification"]
    for field in ("SourceUri", "ModelCard", "ModelLifeCycle"):
        if field in request:
            setattr(package, _snake(field), request[field])
    package.modifications_done()
    return package
