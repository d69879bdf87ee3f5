"""``panopticon import ksm FILE``: a kube-state-metrics ``CustomResourceStateMetrics`` file as
MetricsConfigurations (YAML on stdout, one document per resource).

The conversion is ``exporter/ksmconvert.py`` (mapping in docs/ksm.md); the file edge and the
compile check are ``exporter/ksmsource.py``. Anything that cannot be expressed is one
``FILE:LINE: NAME: field.path: message`` line on stderr and exit code 1 (the resources that did
convert are still printed), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

# Only the standard library at module level: ``panopticon``'s parser imports this module for
# ``add_parser``, and every command (``serve``'s early LIST first, apiserver/early.py) waits for
# the parser. The conversion's imports (aiohttp, the compiler, pydantic) come in ``run``.

HELP = """\
Convert a kube-state-metrics Custom Resource State configuration (the file of
--custom-resource-state-config-file, kind: CustomResourceStateMetrics) into MetricsConfigurations,
one per spec.resources[] entry, printed as YAML on stdout.

The configurations use spec.compatibility: KubeStateMetrics, so for the same objects
`panopticon render` (and `serve`) print what kube-state-metrics prints: family names
<metricNamePrefix>_<name> (default kube_customresource_<name>), the customresource_group /
customresource_version / customresource_kind labels, labelsFromPath and commonLabels, Gauge /
StateSet / Info, valueFrom, labelFromKey, nilIsZero, and KSM's value conversions.

  panopticon import ksm crs-config.yaml > configs.yaml
  panopticon render -c configs.yaml -f objects.yaml
  kubectl apply -f configs.yaml                     # or: panopticon serve --ksm-config crs-config.yaml

A wildcard groupVersionKind (version: "*" and/or kind: "*") is resolved as kube-state-metrics does,
from the installed CustomResourceDefinitions of the group: pass --kubeconfig; every matched
version/kind becomes one configuration, all feeding the same families.

What has no equivalent ('key=value' object-field segments, one family fed by several resources,
a wildcard without --kubeconfig, ...) is reported as FILE:LINE: NAME: field.path: message, exit code 1.
Mapping and limits: docs/ksm.md.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import", help="convert other exporters' configurations into MetricsConfigurations",
                       description="Convert other exporters' configurations into MetricsConfigurations.")
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT",
                               help="the format of FILE: ksm (kube-state-metrics)")
    ksm = formats.add_parser("ksm", help="a kube-state-metrics CustomResourceStateMetrics file",
                             description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksm.add_argument("file", metavar="FILE", nargs="+",
                     help="the CustomResourceStateMetrics YAML ('-': stdin)")
    ksm.add_argument("--kubeconfig", metavar="K",
                     help="read the cluster's CustomResourceDefinitions, so a wildcard groupVersionKind "
                          "(version: '*', kind: '*') expands into one configuration per installed kind")
    ksm.add_argument("--context", help="the kubeconfig context (default: its current-context)")
    p.set_defaults(module="importksm")


def run(args: argparse.Namespace) -> int:
    import asyncio

    import aiohttp
    import yaml

    from exporter.ksmsource import load_ksm, needs_crds
    from kube.client import ApiError
    from kube.config import ConfigError

    installed = None
    if args.kubeconfig and needs_crds(args.file):
        try:
            installed = asyncio.run(_installed(args.kubeconfig, args.context))
        except (ConfigError, ApiError, OSError, aiohttp.ClientError) as exc:
            print(f"--kubeconfig {args.kubeconfig}: cannot list CustomResourceDefinitions: {exc}",
                  file=sys.stderr)
            return 1
    configs, problems = load_ksm(args.file, installed=installed)
    for line in problems:
        print(line, file=sys.stderr)
    if configs:
        sys.stdout.write(yaml.safe_dump_all([doc.data for doc in configs], sort_keys=False, width=110))
    return 1 if problems else 0


async def _installed(kubeconfig: str, context: str | None) -> list[tuple[str, str, str]]:
    from exporter.ksmsource import crd_kinds
    from kube.client import KubeClient
    from kube.config import load_config

    async with KubeClient(load_config(kubeconfig=kubeconfig, context=context)) as client:
        return await crd_kinds(client)
