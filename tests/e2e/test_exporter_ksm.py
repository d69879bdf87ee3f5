"""kube-state-metrics configurations on the real kube-apiserver (docs/ksm.md): the configurations
``panopticon import ksm`` converts are accepted by the CRD schema (``kubectl apply
--dry-run=server``), and the live exporter serves them for a CRD's objects, both as applied
MetricsConfiguration objects and straight from the KSM file (``serve --ksm-config``), printing
KSM's series (names, ``customresource_*`` labels, sorted labels, Gauge over a map with
``labelFromKey``, StateSet, Info with a ``label_*`` map copy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    ROOT,
    apply_crd,
    free_port,
    install_config_crd,
    serve,
    unique_group,
    wait_for,
    widget_crd,
)


def ksm_config(group: str, prefix: str) -> dict[str, Any]:
    return {"kind": "CustomResourceStateMetrics", "spec": {"resources": [{
        "groupVersionKind": {"group": group, "version": "v1", "kind": "Widget"},
        "metricNamePrefix": prefix,
        "labelsFromPath": {"name": ["metadata", "name"], "namespace": ["metadata", "namespace"]},
        "metrics": [
            {"name": "capacity", "help": "Capacity by resource.",
             "each": {"type": "Gauge", "gauge": {"path": ["spec", "capacity"], "labelFromKey": "resource"}}},
            {"name": "phase", "help": "Widget phase.",
             "each": {"type": "StateSet", "stateSet": {"path": ["status", "phase"], "labelName": "phase",
                                                       "list": ["Pending", "Running"]}}},
            {"name": "labels_info", "help": "Widget labels.",
             "each": {"type": "Info", "info": {"labelsFromPath": {"label_*": ["metadata", "labels"]}}}},
        ],
    }]}}


def widget(group: str, namespace: str, name: str, phase: str) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "shop"}},
            "spec": {"capacity": {"cpu": "500m", "memory": "1Gi"}}, "status": {"phase": phase}}


def expected(group: str, prefix: str, namespace: str, phase: str) -> set[str]:
    gvk = f'customresource_group="{group}",customresource_kind="Widget",customresource_version="v1"'
    who = f'name="w1",namespace="{namespace}"'
    running = "1" if phase == "Running" else "0"
    return {
        f'{prefix}_capacity{{{gvk},{who},resource="cpu"}} 0.5',
        f'{prefix}_capacity{{{gvk},{who},resource="memory"}} 1.073741824e+09',
        f'{prefix}_phase{{{gvk},{who},phase="Pending"}} {1 - int(running)}',
        f'{prefix}_phase{{{gvk},{who},phase="Running"}} {running}',
        f'{prefix}_labels_info{{{gvk},label_app_kubernetes_io_name="shop",{who}}} 1',
    }


def imported(path: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "apiserver.cli", "import", "ksm", str(path)],
                            capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_converted_configurations_are_accepted_and_served(kube_cluster: KubeCluster, kube_namespace: str,
                                                          tmp_path: Path) -> None:
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    install_config_crd(kube_cluster)
    prefix = f"ksm_{group.split('.')[0]}"
    source = tmp_path / "crs.yaml"
    source.write_text(yaml.safe_dump(ksm_config(group, prefix)))
    converted = tmp_path / "converted.yaml"
    converted.write_text(imported(source))
    name = yaml.safe_load(converted.read_text())["metadata"]["name"]

    dry = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(converted)).stdout
    assert name in dry and "server dry run" in dry

    kube_cluster.apply(widget(group, kube_namespace, "w1", "Pending"))
    kube_cluster.kubectl("apply", "-f", str(converted))
    try:
        with serve(kube_cluster, tmp_path) as proc:  # the applied MetricsConfiguration object
            wait_for(lambda: proc.samples(f"{prefix}_") == expected(group, prefix, kube_namespace, "Pending"),
                     timeout=30, what=lambda: f"{proc.samples(prefix)}\n{proc.log_tail()}")
            kube_cluster.apply(widget(group, kube_namespace, "w1", "Running"))
            wait_for(lambda: proc.samples(f"{prefix}_") == expected(group, prefix, kube_namespace, "Running"),
                     timeout=10, what=lambda: f"{proc.samples(prefix)}\n{proc.log_tail()}")
    finally:
        kube_cluster.kubectl("delete", "metricsconfigurations.metrics.appscode.com", name,
                             "--ignore-not-found")

    with serve(kube_cluster, tmp_path, f"--ksm-config={source}") as proc:  # straight from the KSM file
        wait_for(lambda: proc.samples(f"{prefix}_") == expected(group, prefix, kube_namespace, "Running"),
                 timeout=30, what=lambda: f"{proc.samples(prefix)}\n{proc.log_tail()}")


def test_serve_stops_on_a_ksm_file_that_does_not_convert(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    """A wildcard that matches no installed CRD (serve resolves it through the cluster's CRDs)."""
    source = tmp_path / "bad.yaml"
    source.write_text(yaml.safe_dump({"kind": "CustomResourceStateMetrics", "spec": {"resources": [{
        "groupVersionKind": {"group": "nothing-installed.example.com", "version": "*", "kind": "Widget"},
        "metrics": [{"name": "m", "help": "h", "each": {"type": "Gauge", "gauge": {"path": ["spec"]}}}]}]}}))
    command = [sys.executable, "-m", "apiserver.cli", "serve", f"--kubeconfig={kube_cluster.kubeconfig}",
               "--controllers=exporter", f"--metrics-address=127.0.0.1:{free_port()}",
               f"--ksm-config={source}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"{source}:" in result.stderr and (
        "spec.resources[0].groupVersionKind: group 'nothing-installed.example.com' version '*' kind 'Widget' "
        "matches no installed CustomResourceDefinition") in result.stderr
    assert "Traceback" not in result.stderr


def myteam_crd(kind: str) -> dict[str, Any]:
    plural = f"{kind.lower()}s"
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.myteam.io"},
            "spec": {"group": "myteam.io", "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": f"{kind}List"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_wildcard_group_version_kind_through_the_installed_crds(kube_cluster: KubeCluster,
                                                                kube_namespace: str, tmp_path: Path) -> None:
    """KSM's "Wildcard matching of version and kind fields": with a Foo and a Bar CRD in
    myteam.io, ``import ksm --kubeconfig`` gives one configuration per kind (accepted by the CRD
    schema), and both ``render`` and the live ``serve --ksm-config`` print one family with the
    document's Foo series and the Bar's beside it, under one header."""
    for kind in ("Foo", "Bar"):
        apply_crd(kube_cluster, myteam_crd(kind))
    install_config_crd(kube_cluster)
    source = ROOT / "tests" / "golden" / "ksm" / "wildcard.ksm.yaml"
    result = subprocess.run([sys.executable, "-m", "apiserver.cli", "import", "ksm", str(source),
                             f"--kubeconfig={kube_cluster.kubeconfig}"],
                            capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    converted = tmp_path / "converted.yaml"
    converted.write_text(result.stdout)
    configs = list(yaml.safe_load_all(result.stdout))
    assert [(c["metadata"]["name"], c["spec"]["targetRef"]) for c in configs] == [
        ("myteam-io-bar-v1", {"apiVersion": "myteam.io/v1", "kind": "Bar"}),
        ("myteam-io-foo-v1", {"apiVersion": "myteam.io/v1", "kind": "Foo"})]
    dry = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(converted)).stdout
    assert all(f"{c['metadata']['name']} created (server dry run)" in dry for c in configs), dry

    objects = [{"apiVersion": "myteam.io/v1", "kind": kind,
                "metadata": {"name": name, "namespace": kube_namespace}}
               for kind, name in (("Foo", "foo"), ("Bar", "bar"))]
    kube_cluster.apply(*objects)
    gvk = 'customresource_group="myteam.io",customresource_kind="{}",customresource_version="v1"'
    # the document's line (namespace "ns" there), and the Bar the wildcard also matches
    lines = [f'kube_customresource_myobject_info{{{gvk.format(kind)},namespace="{kube_namespace}",'
             f'object="{name}"}} 1' for kind, name in (("Bar", "bar"), ("Foo", "foo"))]
    header = ("# HELP kube_customresource_myobject_info Foo Bar Baz\n"
              "# TYPE kube_customresource_myobject_info gauge\n")
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    rendered = subprocess.run([sys.executable, "-m", "apiserver.cli", "render", "-c", str(converted),
                               "-f", str(tmp_path / "objects.yaml")],
                              capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == header + "".join(line + "\n" for line in lines)

    with serve(kube_cluster, tmp_path, f"--ksm-config={source}") as proc:  # resolved by the live exporter
        family = "kube_customresource_myobject_info"
        wait_for(lambda: {s for s in proc.samples(family) if kube_namespace in s} == set(lines),
                 timeout=30, what=lambda: f"{proc.samples(family)}\n{proc.log_tail()}")
        body = proc.metrics()
        assert body.count(f"# HELP {family} ") == 1 and body.count(f"# TYPE {family} ") == 1
        assert all(line in body for line in lines)


def test_crd_accepts_every_converted_example(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    """docs/ksm.md's example and every worked example of KSM's document, as converted."""
    install_config_crd(kube_cluster)
    sources = [ROOT / "examples" / "ksm" / "crs-config.yaml",
               *sorted((ROOT / "tests" / "golden" / "ksm").glob("*.ksm.yaml"))]
    names = []
    for index, source in enumerate(s for s in sources if s.name != "wildcard.ksm.yaml"):
        docs = list(yaml.safe_load_all(imported(source)))
        for doc in docs:
            doc["metadata"]["name"] = f"ksm-example-{index}-{doc['metadata']['name']}"[:63].rstrip("-")
            names.append(doc["metadata"]["name"])
        (tmp_path / f"{index}.yaml").write_text(yaml.safe_dump_all(docs))
    out = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(tmp_path)).stdout
    assert len(names) == 15 and all(f"{name} created (server dry run)" in out for name in names), out
