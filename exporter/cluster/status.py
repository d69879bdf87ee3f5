"""The ``status`` a MetricsConfiguration should have (pure functions of its state and counts).

``ready_condition`` says what the ``Ready`` condition is (status, reason, message) from the
configuration's state, ``paths_condition`` what the ``PathsValid`` condition is from the typo
check of its paths (a warning: it never changes ``Ready``); ``config_status`` builds the whole
status: the conditions (each with a ``lastTransitionTime`` that moves only when its status
changes; ``PathsValid`` only once the paths were checked), ``observedGeneration``,
``resolvedResource`` and this process's object and series counts. Writing it is
``exporter.cluster.status_writer``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.cluster.state import (
    COMPILED,
    LIST_ERROR,
    PATHS_VALID,
    SCHEMA_MATCHED,
    SCHEMA_UNAVAILABLE,
    SYNCING,
    UNKNOWN_PATH,
    ConfigState,
    PathCheck,
)
from exporter.schemacheck import SchemaIndex, config_paths
from kube.conditions import remove_condition, set_condition
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
    paths: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """The ``status`` of one MetricsConfiguration (pure; ``now`` only used on transitions).

    ``paths`` is the ``PathsValid`` condition (``paths_condition``); ``None`` leaves it out."""
    conditions = set_condition(
        previous, type_="Ready", status=ready, reason=reason, message=message,
        observed_generation=generation, now=now,
    )
    if paths is None:
        conditions = remove_condition(conditions, PATHS_VALID)
    else:
        conditions = set_condition(
            conditions, type_=PATHS_VALID, status=paths[0], reason=paths[1], message=paths[2],
            observed_generation=generation, now=now,
        )
    return {
        "observedGeneration": generation,
        "conditions": conditions,
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


def path_check(
    *, key: tuple[Any, ...], config: Mapping[str, Any], target: tuple[str, str], index: SchemaIndex | None,
    source: str, error: str = "",
) -> PathCheck:
    """The typo check of ``config``'s paths against ``target``'s schema in ``index`` (``None``:
    no schema was found in ``source``, or reading it failed with ``error``)."""
    if index is None or index.schema_for(*target) is None:
        why = error or f"no schema for {target[0]} {target[1]} in {source}"
        return PathCheck(key=key, source=source, unavailable=why)
    problems = tuple(str(p) for p in index.check(config, target=target))
    return PathCheck(key=key, source=source, checked=sum(1 for _ in config_paths(config)), problems=problems)


MAX_PATH_PROBLEMS = 10  # listed in the condition's message; the rest are counted


def paths_condition(check: PathCheck | None) -> tuple[str, str, str] | None:
    """(status, reason, message) of the ``PathsValid`` condition; ``None`` when not checked."""
    if check is None:
        return None
    if check.unavailable:
        return "Unknown", SCHEMA_UNAVAILABLE, check.unavailable
    if check.problems:
        shown = "; ".join(check.problems[:MAX_PATH_PROBLEMS])
        more = len(check.problems) - MAX_PATH_PROBLEMS
        return "False", UNKNOWN_PATH, shown + (f"; and {more} more" if more > 0 else "")
    return "True", SCHEMA_MATCHED, f"{check.checked} paths match the schema of {check.source}"


def desired_status(
    state: ConfigState, *, ready: tuple[str, str, str], objects: int, series: int, now: str
) -> dict[str, Any]:
    """The status to write for ``state`` with the condition ``ready`` (see ``ready_condition``)."""
    status, reason, message = ready
    previous = state.written["conditions"] if state.written else state.conditions
    return config_status(
        previous=previous, generation=state.generation, ready=status, reason=reason, message=message,
        resource=state.resource, objects=objects, series=series, now=now,
        paths=paths_condition(state.path_check),
    )
