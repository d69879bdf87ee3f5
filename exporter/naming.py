"""Prometheus naming and escaping rules, and Panopticon's family-name convention.

Family name = ``<group with '.' and '-' -> '_'>_<lowercase kind>_<metric name>``, the core
group spelled ``core`` (``v1 Pod`` + ``info`` -> ``core_pod_info``). Names must match the
Prometheus data model (prometheus/docs ``docs/concepts/data_model.md``): metric names
``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names ``[a-zA-Z_][a-zA-Z0-9_]*`` and not starting with
``__``. Label values are escaped for both the text format and OpenMetrics (``\\``, ``\"``,
``\n``). Pure functions.
"""

from __future__ import annotations

import re

from exporter.types import TargetRef

__all__ = [
    "default_label_keys",
    "escape_label_value",
    "family_name",
    "family_prefix",
    "label_name_problem",
    "metric_name_problem",
]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def family_prefix(target: TargetRef) -> str:
    group = target.group or "core"
    return f"{group.replace('.', '_').replace('-', '_')}_{target.kind.lower()}_"


def family_name(target: TargetRef, metric: str) -> str:
    return family_prefix(target) + metric


def default_label_keys(target: TargetRef) -> tuple[str, str]:
    """The labels every series carries: ``namespace`` (namespaced objects) and the kind's name."""
    return ("namespace", target.kind.lower())


def metric_name_problem(name: str) -> str | None:
    if _METRIC_NAME.fullmatch(name) is None:
        return f"{name!r} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
    return None


def label_name_problem(name: str) -> str | None:
    if _LABEL_NAME.fullmatch(name) is None:
        return f"{name!r} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith("__"):
        return f"{name!r}: label names starting with '__' are reserved"
    return None


def escape_label_value(value: str) -> str:
    """Label value escaping, identical in text 0.0.4 and OpenMetrics: ``\\``, ``"``, newline."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value
