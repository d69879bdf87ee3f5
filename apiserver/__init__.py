"""The application: CLI, HTTPS extension API server (authn -> authz -> handlers) and wiring.

This is the top of the dependency graph: it imports ``exporter``, ``thanos_operator``, ``kube``
and ``certs``; nothing imports it.
"""
