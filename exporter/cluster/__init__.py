"""The live exporter: MetricsConfigurations and their target objects from a real cluster.

Flow:

    MetricsConfiguration (informer) --compile--> Plan --discovery--> resource (plural, scope)
        --> Binding: one shared informer per watched collection --> MetricsStore[config][uid]
    status <-- conditions, observedGeneration, resolved resource, object and series counts

The modules, by job (I/O marks the ones that talk to the API server; the rest are pure data
and functions, or in-memory event plumbing):

- ``controller`` (I/O): ``ClusterExporter``, the informers, the work queue, reconcile.
- ``binding``: the atomic hand-off of one plan to its collections (join, buffer, replay, swap).
- ``state``: ``ConfigState`` and the reasons of the ``Ready`` condition.
- ``status``: the status a configuration should have (pure).
- ``status_writer`` (I/O): rate-limited JSON merge patches of the ``status`` subresource.
- ``resolution`` (I/O): re-resolving kinds when CustomResourceDefinitions change (or every
  ``resolve_interval`` when they cannot be watched).
- ``sharding`` (I/O): shard and total from the own StatefulSet, re-sharding when it scales.
- ``telemetry``: the controller's own metrics.
- ``options``: ``ExporterOptions``, the settings with their defaults.

Configurations that do not compile (``CompileError``), whose kind is not served
(``TargetNotFound``), or that clash with another configuration export nothing and say why in
``status``; everything else keeps being served. ``docs/live-exporter.md`` has the details.
"""

from exporter.cluster.controller import ClusterExporter
from exporter.cluster.options import ExporterOptions
from exporter.cluster.sharding import statefulset_of_pod
from exporter.cluster.state import compile_message
from exporter.cluster.status import config_status

__all__ = ["ClusterExporter", "ExporterOptions", "compile_message", "config_status", "statefulset_of_pod"]
