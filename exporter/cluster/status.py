"""The ``status`` a MetricsConfiguration should have (pure functions of its state and counts).

``ready_condition`` says what the ``Ready`` condition is (status, reason, message) from the
configuration's state; ``config_status`` builds the whole status: the condition (with a
``lastTransitionTime`` that moves only when its status changes), ``observedGeneration``,
``resolvedResource`` and this process's object and series counts. Writing it is
``exporter.cluster.status_writer``'s job.
"""

from __future__ import annotations

from typing import Any

from exporter.cluster.state import COMPILED, LIST_ERROR, SYNCING, ConfigState
from kube.conditions import set_condition
from kube.discovery import VERSION_FALLBACK, ResolvedResource


def config_status(
    *,
    previous: list[dict[str, Any]] | None,
    generation: int | None,
    ready: str,
    reason: str,
    message: str,
    resource: ResolvedResource | None,
    objects: int,
    series: int,
    now: str,
) -> dict[str, Any]:
    """The ``status`` of one MetricsConfiguration (pure; ``now`` only used on transitions)."""
    return {
        "observedGeneration": generation,
        "conditions": set_condition(
            previous, type_="Ready", status=ready, reason=reason, message=message,
            observed_generation=generation, now=now,
        ),
        "resolvedResource": None if resource is None else {
            "group": resource.group, "version": resource.version, "resource": resource.resource,
            "kind": resource.kind, "namespaced": resource.namespaced,
        },
        "objects": objects,
        "series": series,
    }


def ready_condition(state: ConfigState, *, list_errors: list[str]) -> tuple[str, str, str]:
    """(status, reason, message) of the ``Ready`` condition; ``list_errors`` of a binding syncing."""
    if state.error_reason:
        return "False", state.error_reason, state.error_message
    if state.binding is None:
        if list_errors:
            return "False", LIST_ERROR, "; ".join(list_errors)
        return "Unknown", SYNCING, "listing target objects"
    if state.resolution_reason == VERSION_FALLBACK:
        return "True", VERSION_FALLBACK, state.resolution_message
    assert state.plan is not None and state.resource is not None
    # Never an empty message: kube-apiserver 1.20's JSON merge patch turns "" inside a list
    # into null, which the schema then rejects.
    resource = f"{state.resource.api_version} {state.resource.resource}"
    return "True", COMPILED, f"{len(state.plan.families)} families from {resource}"


def desired_status(
    state: ConfigState, *, ready: tuple[str, str, str], objects: int, series: int, now: str
) -> dict[str, Any]:
    """The status to write for ``state`` with the condition ``ready`` (see ``ready_condition``)."""
    status, reason, message = ready
    previous = state.written["conditions"] if state.written else state.conditions
    return config_status(
        previous=previous, generation=state.generation, ready=status, reason=reason, message=message,
        resource=state.resource, objects=objects, series=series, now=now,
    )
