"""Pydantic models of ``MetricsConfiguration`` (``metrics.appscode.com/v1alpha1``).

The YAML names are exactly Panopticon's (kmodules/custom-resources ``apis/metrics/v1alpha1``).
Validation is strict at this boundary: unknown fields and wrong types are errors, and
``parse_config`` turns every pydantic error into a ``Problem`` whose path is the field's own
(``spec.metrics[2].field.type``). Semantics (precedence, paths, expressions) are the compiler's
job (exporter/compiler.py); the models only describe shape. ``status`` is our extension, written
by the live controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictStr, ValidationError

from exporter.types import Problem

__all__ = [
    "Aggregate",
    "Field_",
    "Label",
    "Metric",
    "MetricValue",
    "MetricsConfiguration",
    "MetricsConfigurationSpec",
    "Param",
    "State",
    "StateValue",
    "TargetRef",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SelectorRequirement(_Strict):
    key: StrictStr = Field(min_length=1)
    operator: StrictStr
    values: list[StrictStr] = Field(default_factory=list)


class LabelSelector(_Strict):
    matchLabels: dict[str, StrictStr] = Field(default_factory=dict)
    matchExpressions: list[SelectorRequirement] = Field(default_factory=list)


class TargetRef(_Strict):
    apiVersion: StrictStr = Field(min_length=1)
    kind: StrictStr = Field(min_length=1)
    # extensions (exporter/scoping.py): which objects of the kind are read
    selector: LabelSelector | None = None
    namespaces: list[StrictStr] = Field(default_factory=list)
    excludeNamespaces: list[StrictStr] = Field(default_factory=list)


class Label(_Strict):
    key: StrictStr = Field(min_length=1)
    value: StrictStr | None = None
    valuePath: StrictStr | None = None
    # extension: the label's value is the map key (or array index) its last [*] walks
    keyFromPath: StrictStr | None = None


class Param(_Strict):
    key: StrictStr = Field(min_length=1)
    value: StrictStr | None = None
    valuePath: StrictStr | None = None


class Field_(_Strict):
    path: StrictStr = Field(min_length=1)
    # extensions "Entries" / "Elements": kube-state-metrics' walks of each.path (exporter/compiler.py)
    type: Literal["Integer", "DateTime", "Array", "String", "Entries", "Elements"] | None = None


class MetricValue(_Strict):
    value: StrictFloat | None = None
    valueFromPath: StrictStr | None = None
    valueFromExpression: StrictStr | None = None
    nilIsZero: StrictBool | None = None  # extension (kube-state-metrics' name): missing or null -> 0


class StateValue(_Strict):
    labelValue: StrictStr
    metricValue: MetricValue


class State(_Strict):
    labelKey: StrictStr = Field(min_length=1)
    values: list[StateValue] = Field(min_length=1)


class Aggregate(_Strict):
    """Extension (exporter/aggregates.py): one series per group of ``by`` label values."""

    op: Literal["count", "sum"]
    by: list[StrictStr] = Field(default_factory=list)


class Metric(_Strict):
    name: StrictStr = Field(min_length=1)
    help: StrictStr
    type: Literal["gauge"]
    field: Field_ | None = None
    labels: list[Label] = Field(default_factory=list)
    params: list[Param] = Field(default_factory=list)
    states: State | None = None
    metricValue: MetricValue | None = None
    fullName: StrictStr | None = Field(default=None, min_length=1)  # extension: the family's whole name
    aggregate: Aggregate | None = None  # extension: count or sum the series by label values


class MetricsConfigurationSpec(_Strict):
    targetRef: TargetRef
    commonLabels: list[Label] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)
    # extensions (docs/metrics-configuration.md "Extensions"): object labels/annotations to copy
    metricNamePrefix: StrictStr | None = None  # extension: replaces "<group>_<kind>" ("" = none)
    labelsAllowlist: list[StrictStr] = Field(default_factory=list)
    annotationsAllowlist: list[StrictStr] = Field(default_factory=list)
    # extension (docs/ksm.md): render series as kube-state-metrics' Custom Resource State does
    compatibility: Literal["Panopticon", "KubeStateMetrics"] | None = None


class ObjectMeta(BaseModel):
    """Loose metadata: ``name`` is required, everything else Kubernetes puts there is kept."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: StrictStr = Field(min_length=1)


class MetricsConfiguration(_Strict):
    apiVersion: Literal["metrics.appscode.com/v1alpha1"]
    kind: Literal["MetricsConfiguration"]
    metadata: ObjectMeta
    spec: MetricsConfigurationSpec
    status: dict[str, Any] | None = None


def parse_config(data: Mapping[str, Any]) -> tuple[MetricsConfiguration | None, list[Problem]]:
    """Validate one document; on failure return every problem with its field path."""
    try:
        return MetricsConfiguration.model_validate(data), []
    except ValidationError as exc:
        return None, [Problem(path=_path_of(error["loc"]), message=_message_of(error))
                      for error in exc.errors(include_url=False)]


def _path_of(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item).startswith(("function-", "literal[", "float", "str", "dict", "none")) and parts:
            continue  # pydantic's union-branch tags are not fields
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(document)"


def _message_of(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected} (got {error.get('input')!r})"
    message = str(error.get("msg", "invalid value"))
    if "input" in error and kind not in ("missing",):
        value = error["input"]
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{message} (got {shown})"
    return message
