"""The API group, version, kind and plural of the ``Thanos`` resource (one place, no imports)."""

API_GROUP = "monitoring.paodin.io"
API_VERSION = "v1alpha1"
KIND = "Thanos"
PLURAL = "thanos"
