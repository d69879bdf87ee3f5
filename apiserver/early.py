"""What ``panopticon serve`` sends before it imports its components: the exporter's first LISTs.

``apiserver.cli`` calls ``start_early_lists`` right after parsing the flags, before importing
``apiserver.commands.serve`` (aiohttp, pydantic, the compiler, the store: most of the process's
start-up). On a thread of its own it resolves the kind of each ``--config`` MetricsConfiguration
through discovery and sends the LIST its informer will send (``kube.earlylist``); the informer
then consumes that answer instead of asking again. The kube-apiserver encodes a large LIST
before it sends the first byte, so that encoding now overlaps the imports and the set-up.

Only the plain case is guessed: the exporter runs against a cluster (no ``--source``), the
configuration comes from ``--config`` (not from the cluster's MetricsConfigurations, which
have to be listed first), its ``targetRef`` names only ``apiVersion`` and ``kind`` (no
selector, no namespaces) and ``--namespaces`` is not set, so the informer lists the whole
collection with ``resourceVersion=0``. A guess that does not match what the informer asks is
never used (the request key is exact) and is dropped. Anything going wrong here is ignored:
the exporter then simply sends its own request.
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from kube.config import ClientConfig

log = logging.getLogger(__name__)

# The exporter's KubeClient (apiserver.commands.serve: KubeClientComponent) and its informer.
USER_AGENT = "panopticon"
LIST_QUERY = {"resourceVersion": "0"}
# How long ``panopticon serve`` waits for its early LISTs to be sent before it goes on importing.
SEND_WAIT = 0.5


def early_targets(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(group, version, kind) of every ``--config`` target the informer will list cluster-wide."""
    controllers = {c.strip() for c in (getattr(args, "controllers", "") or "").split(",")}
    if getattr(args, "source", None) or "exporter" not in controllers or getattr(args, "namespaces", ""):
        return []
    files = getattr(args, "config", None) or []
    if not files:
        return []
    from exporter.sources import is_config, load_documents

    targets = []
    for doc in load_documents(files):
        data = doc.data
        if not is_config(data):
            continue
        ref = (data.get("spec") or {}).get("targetRef")
        if not isinstance(ref, dict) or set(ref) != {"apiVersion", "kind"}:
            continue
        api_version, kind = ref.get("apiVersion"), ref.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            continue
        group, _, version = api_version.rpartition("/")
        targets.append((group, version, kind))
    return sorted(set(targets))


def start_early_lists(args: argparse.Namespace, *, wait: float = SEND_WAIT) -> threading.Thread | None:
    """Start the thread that resolves ``early_targets`` and sends their LISTs (best effort).

    Returns once every LIST is on the wire, or after ``wait`` seconds: the thread's few
    milliseconds of work (one discovery GET, one request) would otherwise be stretched by the
    imports that follow, which hold the GIL almost all the time (the LIST left 0.30 s after the
    start instead of 0.15-0.17 s at 10,000 Widgets, bench/README.md)."""
    try:
        targets = early_targets(args)
        if not targets:
            return None
        from kube.config import load_config

        config = load_config(kubeconfig=getattr(args, "kubeconfig", None))
    except Exception as err:  # the components report these problems properly later
        log.debug("no early LIST: %s", err)
        return None
    sent = threading.Event()
    thread = threading.Thread(target=_resolve_and_list, args=(config, targets, sent), name="early-lists",
                              daemon=True)
    thread.start()
    sent.wait(wait)
    return thread


def _headers(config: ClientConfig) -> dict[str, str]:
    """What ``KubeClient`` sends (``_headers``), without Accept-Encoding (the client adds it)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    token = config.token
    if config.token_file:
        try:
            with open(config.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError:
            pass
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _resolve_and_list(config: ClientConfig, targets: list[tuple[str, str, str]],
                      sent: threading.Event) -> None:
    """Resolve each target's resource through discovery and send its LIST; ``sent`` is set once
    every LIST is on the wire (each at most ``SEND_WAIT`` later) or given up."""
    from kube.earlylist import get_json, start_early_list
    from kube.paths import group_version_path, resource_path
    from kube.resourcelist import find_kind

    try:
        headers = _headers(config)
        documents: dict[str, Any] = {}
        idle: list[Any] = []  # open connections the discovery GETs left (the next LIST reuses one)
        for group, version, kind in targets:
            try:
                path = group_version_path(group=group, version=version)
                if path not in documents:
                    documents[path] = get_json(config, path, headers=headers, keep=idle)
                found = find_kind(documents[path], kind) if documents[path] else None
                if found is None:
                    continue
                early = start_early_list(
                    config, path=resource_path(group=group, version=version, resource=found[0]),
                    query=LIST_QUERY, headers=headers, connection=idle.pop() if idle else None)
                early.sent.wait(SEND_WAIT)
            except Exception as err:  # best effort: the informer lists on its own
                log.debug("no early LIST of %s/%s %s: %s", group, version, kind, err)
        for conn in idle:
            conn.close()
    finally:
        sent.set()

