"""The state-metrics engine: MetricsConfiguration models, compiler, renderer, store, exposition.

Flow: ``MetricsConfiguration`` --compile--> ``Plan`` (paths and expressions precompiled once);
a target object (raw JSON dict) --``Plan.render``--> one pre-rendered byte chunk per family;
the ``MetricsStore`` keeps those chunks per object UID; a scrape concatenates them.
Nothing here does network I/O; ``exporter.sources`` reads local files for the offline mode.
"""
