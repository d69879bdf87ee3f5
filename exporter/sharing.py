"""Families fed by several configurations: when two ``FamilyHeader``s with one name may share it.

Two configurations may produce the same family name (``fullName``, ``metricNamePrefix``, or the
expansions of one kube-state-metrics wildcard) when the families agree: the same TYPE, the same
HELP and the same label-key set (``FamilyHeader.label_keys``, computed by the compiler: default
labels, commonLabels, the metric's labels, the states label, the allow-list labels as name
patterns such as ``label_app_kubernetes_io_*``; an aggregate's keys are its ``by``). Anything
else is a conflict, reported at compile time by ``exporter.compiler.find_conflicts`` and refused
by the store (``MetricsStore.set_plan``). The exposition then writes one header and the series
of every contributing configuration together (``exporter.store.MetricsStore.family_chunks``).

The store does not deduplicate: the configurations' series must differ by some label (KSM's
``customresource_kind``, a constant label), as the series of one configuration must.
Pure functions.
"""

from __future__ import annotations

from exporter.types import FamilyHeader

__all__ = ["disagreement"]


def disagreement(first: FamilyHeader, second: FamilyHeader) -> str | None:
    """Why ``second`` cannot feed ``first``'s family (None: they agree). Same name assumed;
    the text names both configurations (``FamilyHeader.configuration``)."""
    a, b = repr(first.configuration), repr(second.configuration)
    if first.type != second.type:
        return f"TYPE differs: {first.type!r} in {a}, {second.type!r} in {b}"
    if first.help != second.help:
        return f"HELP differs: {first.help!r} in {a}, {second.help!r} in {b}"
    mine, theirs = first.label_keys, second.label_keys
    if mine is None or theirs is None:
        return f"the label keys of {a if mine is None else b} are not known at compile time"
    if mine != theirs:
        parts = []
        if only := sorted(mine - theirs):
            parts.append(f"only in {a}: " + ", ".join(only))
        if only := sorted(theirs - mine):
            parts.append(f"only in {b}: " + ", ".join(only))
        return "label keys differ (" + "; ".join(parts) + ")"
    return None
