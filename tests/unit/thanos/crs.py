"""``Thanos`` custom resources as the API returns them, for the render and defect tests."""

from __future__ import annotations

from typing import Any


def cr(spec: dict[str, Any], name: str = "t") -> dict[str, Any]:
    """A ``Thanos`` object ``ns/<name>`` (with a uid, so children carry owner references) of ``spec``."""
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
        "spec": spec,
    }
