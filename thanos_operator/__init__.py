"""Thanos operator: PaodinMonitoring-compatible ``Thanos`` models, pure renderers and the reconciler.

``render(thanos) -> [desired objects]`` is pure and deterministic; the reconciler applies the
result through ``kube`` with server-side apply and prunes what is no longer wanted.
"""
