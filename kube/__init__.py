"""Kubernetes plumbing shared by the exporter, the API server and the Thanos operator.

Client configuration (kubeconfig or in-cluster), a raw JSON REST client, list/watch informers,
discovery (GVK <-> resource), server-side apply, status conditions and leases. Everything here
speaks raw JSON (orjson) rather than kubernetes_asyncio model objects: it is faster and keeps
less memory on the hot path.
"""
