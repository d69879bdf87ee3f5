"""The ``panopticon`` command line: argument parsing and dispatch, nothing else.

Each subcommand's work lives in its own module (``apiserver.commands.<name>``), imported only
when that subcommand runs, so ``panopticon check`` does not pay for the server's imports.
Every subcommand returns a process exit code; errors the user can fix are printed as one clear
message (never a traceback) and give exit code 1 (2 for usage errors, as argparse does).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

DESCRIPTION = """\
Panopticon for Python: Kubernetes state metrics from MetricsConfiguration objects, served as
Prometheus text and as an aggregated Kubernetes API, plus a Thanos operator.

Without a cluster:
  panopticon render -c config.yaml -f objects.yaml     print the exposition for local objects
  panopticon check  -c config.yaml [-f sample.yaml]    validate configurations
  panopticon serve  --source examples/                 serve /metrics for a directory of YAML
  panopticon import ksm crs-config.yaml                convert a kube-state-metrics CRS config
With a cluster:
  panopticon serve [--kubeconfig PATH]                 exporter + extension API server + Thanos operator
"""


def _add_family_lists(p: argparse._ActionsContainer) -> None:
    p.add_argument("--metric-allowlist", default="", metavar="REGEX,...",
                   help="only families whose whole name matches one of these regexes (as kube-state-metrics)")
    p.add_argument("--metric-denylist", default="", metavar="REGEX,...",
                   help="drop families whose whole name matches one of these regexes (exclusive with the "
                        "allowlist)")


def _add_label_lists(p: argparse._ActionsContainer) -> None:
    where = ("RESOURCE is the plural (pods), the lowercase kind or <plural>.<group> of a configuration's "
             "targetRef, * every configuration; KEY a key or a glob (app.kubernetes.io/*, * for all)")
    p.add_argument("--metric-labels-allowlist", default="", metavar="RESOURCE=[KEY,...],...",
                   help="copy object labels into every series of the configurations of RESOURCE as "
                        "label_<key> (sanitized: app.kubernetes.io/name -> label_app_kubernetes_io_name), "
                        "as kube-state-metrics, e.g. 'pods=[app,app.kubernetes.io/*],deployments=[*]'; "
                        f"{where}; added to each configuration's spec.labelsAllowlist, a collision with "
                        "its labels is a compile error")
    p.add_argument("--metric-annotations-allowlist", default="", metavar="RESOURCE=[KEY,...],...",
                   help="the same for annotations (annotation_<key>; spec.annotationsAllowlist), e.g. "
                        "'pods=[owner]'")


def _add_render(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "render",
        help="print the exposition for objects in local files",
        description="Render the metrics that MetricsConfigurations produce for objects read from local "
        "YAML/JSON files (multi-document, List kinds allowed), and print them.",
    )
    p.add_argument("-c", "--config", action="append", required=True, metavar="FILE",
                   help="MetricsConfiguration file (repeatable; directories are read recursively)")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                   help="file with target objects (repeatable; directories are read recursively; "
                        "- for stdin)")
    p.add_argument("--format", choices=["text", "openmetrics"], default="text",
                   help="exposition format (default: Prometheus text 0.0.4)")
    p.add_argument("-n", "--namespace", help="only series of objects in this namespace")
    _add_family_lists(p)
    _add_label_lists(p)


def _add_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="validate MetricsConfigurations and Thanos objects",
        description="Validate MetricsConfigurations (schema, paths, expressions, names, duplicates) and "
        "Thanos objects, and print every problem with its field path (the admission webhook's "
        "messages). Exit code 1 when there are problems.",
    )
    p.add_argument("-c", "--config", action="append", required=True, metavar="FILE",
                   help="MetricsConfiguration or Thanos file (repeatable; directories are read recursively)")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                   help="sample objects to render as a smoke test (repeatable)")
    p.add_argument("--schema", action="append", default=[], metavar="FILE",
                   help="CRD or OpenAPI v2 document (kubectl get --raw /openapi/v2) of the target kinds: "
                        "report paths the schema cannot have, with a did-you-mean (repeatable)")
    p.add_argument("--kubeconfig", metavar="PATH",
                   help="also check paths against the cluster's schemas (/openapi/v2 and every CRD)")


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the exporter, the extension API server and the Thanos operator",
        description="Serve state metrics. With --source DIR no cluster is needed: configs and objects "
        "are read from DIR and reloaded when files change. Otherwise the process talks to the cluster "
        "(in-cluster config, or --kubeconfig).",
    )
    g = p.add_argument_group("sources")
    g.add_argument("--source", metavar="DIR",
                   help="offline mode: read MetricsConfigurations and objects from YAML/JSON files in DIR")
    g.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: in-cluster config)")
    g.add_argument("--controllers", default="exporter,thanos",
                   help="comma-separated controllers to run: exporter, thanos (default: both)")
    g.add_argument("--ksm-config", action="append", default=[], metavar="FILE",
                   help="also serve the MetricsConfigurations converted from a kube-state-metrics "
                        "CustomResourceStateMetrics FILE, as `panopticon import ksm` converts it "
                        "(repeatable; cluster and --source modes; docs/ksm.md)")
    g.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="cluster mode: read MetricsConfigurations from FILE (repeatable; directories "
                   "recursively) instead of watching the CRD, so a namespaced Role suffices (sidecar)")
    g.add_argument("--namespaces", default="",
                   help="comma-separated namespaces the exporter and the Thanos operator watch (default: "
                        "all); lets a namespaced Role suffice")
    g.add_argument("--namespace-selector", default="",
                   help="label selector on Namespaces whose objects are exported (as Panopticon)")
    _add_family_lists(g)
    _add_label_lists(g)
    g.add_argument("--shard", type=int, default=0, help="this instance's shard (0-based)")
    g.add_argument("--total-shards", type=int, default=1, help="number of shards")
    g.add_argument("--pod", default="", help="StatefulSet pod name: derive --shard from its ordinal")
    g.add_argument("--pod-namespace", default="",
                   help="namespace of --pod (to read the StatefulSet replicas)")
    g.add_argument("--write-status", action=argparse.BooleanOptionalAction, default=True,
                   help="write MetricsConfiguration status (--no-write-status: read-only RBAC suffices)")
    g.add_argument("--status-interval", type=float, default=None, metavar="SECONDS",
                   help="at most one status write per MetricsConfiguration this often (default 3)")
    g.add_argument("--resolve-interval", type=float, default=None, metavar="SECONDS",
                   help="re-resolve kinds not served yet this often when CRDs cannot be watched (default 30)")
    g.add_argument("--watch-timeout", type=int, default=None, metavar="SECONDS",
                   help="timeoutSeconds of the exporter's WATCH requests (default 300)")
    g.add_argument("--request-timeout", type=float, default=None, metavar="SECONDS",
                   help="timeout of every API request (default 30)")

    h = p.add_argument_group("plain HTTP")
    h.add_argument("--metrics-bind-address", "--metrics-address", dest="metrics_address",
                   default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="plain HTTP /metrics, /healthz, /livez, /readyz "
                        "(default 127.0.0.1:8080; '' to disable; --metrics-address is the old name)")
    h.add_argument("--state-metrics-on-plain", action=argparse.BooleanOptionalAction, default=True,
                   help="serve the state metrics on the plain /metrics (--no-state-metrics-on-plain: only "
                        "own telemetry there; state metrics only through the authorized API)")

    s = p.add_argument_group("extension API server (HTTPS)")
    s.add_argument("--secure-port", type=int, default=0,
                   help="HTTPS port of the aggregated API (0 = disabled; 8443 in the Deployment)")
    s.add_argument("--bind-address", default="0.0.0.0", metavar="HOST",
                   help="address the HTTPS server listens on, with --secure-port (default 0.0.0.0)")
    s.add_argument("--tls-cert-file", metavar="FILE", help="serving certificate (self-signed when omitted)")
    s.add_argument("--tls-private-key-file", metavar="FILE", help="serving key")
    s.add_argument("--client-ca-file", metavar="FILE",
                   help="CA for x509 client certificates (default: from extension-apiserver-authentication)")
    s.add_argument("--requestheader-client-ca-file", metavar="FILE",
                   help="front-proxy CA (default: from extension-apiserver-authentication)")
    s.add_argument("--requestheader-allowed-names", default=None,
                   help="comma-separated CNs allowed to front-proxy (default: from the ConfigMap)")
    s.add_argument("--authorization-always-allow-paths", default="/healthz,/livez,/readyz",
                   help="paths that skip authorization")
    s.add_argument("--authn-cache-ttl", type=float, default=10.0, metavar="SECONDS",
                   help="TokenReview answers are cached this long (default 10)")
    s.add_argument("--authz-cache-ttl", type=float, default=10.0, metavar="SECONDS",
                   help="SubjectAccessReview answers are cached this long (default 10)")
    s.add_argument("--peer-service", default="", metavar="NAME",
                   help="with --total-shards > 1: the headless Service whose EndpointSlices list the other "
                        "shards; every reply is then the union of all shards (apiserver/peers.py)")
    s.add_argument("--peer-timeout", type=float, default=5.0,
                   help="seconds every shard has to answer a union request before it fails with 503")
    s.add_argument("--peer-cache-seconds", type=float, default=2.0,
                   help="how long the peers' EndpointSlices are cached")
    s.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="open HTTPS connections at most; more are closed before the TLS handshake "
                        "(default 4096)")
    s.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                   help="a connection without a request in flight is closed after this (default 90)")
    s.add_argument("--write-timeout", type=float, default=None, metavar="SECONDS",
                   help="a client that takes no response data (or watch event) for this long is "
                        "disconnected (default 60)")

    a = p.add_argument_group("admission webhooks (on --secure-port; docs/admission.md)")
    a.add_argument("--admission-allowed-users", default="", metavar="USER,...",
                   help="only these authenticated users may call the webhooks (default: any caller)")
    a.add_argument("--admission-schema-timeout", type=float, default=1.0, metavar="SECONDS",
                   help="longest wait for a target CRD's schema before reviewing without it")
    t = p.add_argument_group("Thanos operator")
    t.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="use a coordination.k8s.io Lease so only one replica reconciles")
    t.add_argument("--leader-elect-namespace", default="", help="namespace of the Lease (default: own)")
    t.add_argument("--leader-elect-lease-duration", type=float, default=None, metavar="SECONDS",
                   help="Lease duration; renewals every duration/7.5, given up after 2/3 of it (default 15)")
    t.add_argument("--resync-period", type=float, default=None, metavar="SECONDS",
                   help="reconcile every Thanos object again this often (reads only when converged; "
                        "default 300)")
    t.add_argument("--watch-namespace", default="",
                   help="deprecated, use --namespaces: only reconcile Thanos objects in this namespace")
    t.add_argument("--thanos-default-image", default="", metavar="IMAGE",
                   help="Thanos image when a CR sets none (default: quay.io/thanos/thanos:v0.37.2)")
    t.add_argument("--envoy-default-image", default="", metavar="IMAGE",
                   help="envoy sidecar image when a CR sets none (default: envoyproxy/envoy:v1.40.0)")

    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="log level (default info)")


def _add_certs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "certs",
        help="create a CA and a serving certificate for the APIService",
        description="Create a CA and a serving certificate (SANs NAME, NAME.NS, NAME.NS.svc, "
        "NAME.NS.svc.cluster.local) and print the APIService caBundle.",
    )
    p.add_argument("--service", required=True, help="Service name")
    p.add_argument("--namespace", required=True, help="Service namespace")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (keys written mode 0600)")
    p.add_argument("--days", type=int, default=365, help="validity of the serving certificate")


def _add_crds(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("crds", help="print the CRD manifests generated from the models")
    p.add_argument("--out", metavar="DIR", help="write one file per CRD into DIR instead of stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panopticon", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_render, _add_check, _add_serve, _add_certs, _add_crds, _add_import):
        add(sub)
    return parser


def _add_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from apiserver.commands.importksm import add_parser  # its help text lives with the command

    add_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        # Before the (heavy) serve module: the exporter's first LISTs (apiserver.early).
        from apiserver.early import start_early_lists

        start_early_lists(args)
        # Off through the imports and the initial sync; serve turns it on (serve(freeze_gc=True)).
        gc.disable()
    module = importlib.import_module(f"apiserver.commands.{getattr(args, 'module', args.command)}")
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
