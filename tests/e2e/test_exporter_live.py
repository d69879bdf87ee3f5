"""The live exporter (`panopticon serve`) on the real kube-apiserver: issue 3, criteria 1, 2 and 6.

Each test starts `panopticon serve --controllers=exporter` as a subprocess against the session's
cluster and drives it only through the Kubernetes API (kubectl), reading `/metrics` and the
MetricsConfiguration status like a user would.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    apply_crd,
    config_status,
    dump,
    family_prefix,
    install_config_crd,
    metrics_config,
    ready_condition,
    serve,
    unique_group,
    wait_for,
    widget,
    widget_crd,
)

FOLLOW_SECONDS = 2.0  # the exposition must follow an event within this
STATUS_SECONDS = 15.0  # status is written at most every few seconds


def expected_series(group: str, ns: str, name: str, *, replicas: int, color: str, phase: str) -> set[str]:
    p = family_prefix(group)
    labels = f'namespace="{ns}",widget="{name}"'
    out = {f"{p}replicas{{{labels}}} {replicas}", f'{p}info{{{labels},color="{color}"}} 1'}
    for state in ("Pending", "Running", "Failed"):
        out.add(f'{p}status_phase{{{labels},phase="{state}"}} {int(state == phase)}')
    return out


def test_objects_and_config_followed_within_2s_with_status(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    install_config_crd(kube_cluster)
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    ns_a, ns_b = kube_namespace, f"{kube_namespace}-b"
    kube_cluster.ensure_namespace(ns_b)
    config_name = f"widgets-{group.split('.')[0]}"
    prefix = family_prefix(group)
    with serve(kube_cluster, tmp_path) as proc:
        kube_cluster.apply(
            widget(group, ns_a, "w1", replicas=1, color="red", phase="Running"),
            widget(group, ns_a, "w2", replicas=2, color="blue", phase="Pending"),
            widget(group, ns_b, "w3", replicas=3, color="green", phase="Failed"),
            metrics_config(config_name, group),
        )
        want = (
            expected_series(group, ns_a, "w1", replicas=1, color="red", phase="Running")
            | expected_series(group, ns_a, "w2", replicas=2, color="blue", phase="Pending")
            | expected_series(group, ns_b, "w3", replicas=3, color="green", phase="Failed")
        )
        wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=20,
            what=lambda: f"{sorted(proc.samples(prefix))}\n{proc.log_tail()}",
        )
        body = proc.metrics()
        assert f"# HELP {prefix}replicas Desired replicas.\n# TYPE {prefix}replicas gauge\n" in body

        # update an object
        kube_cluster.apply(widget(group, ns_a, "w1", replicas=7, color="red", phase="Failed"))
        want = (
            want - expected_series(group, ns_a, "w1", replicas=1, color="red", phase="Running")
        ) | expected_series(group, ns_a, "w1", replicas=7, color="red", phase="Failed")
        took = wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=FOLLOW_SECONDS,
            what=lambda: f"update not followed: {sorted(proc.samples(prefix))}",
        )
        print(f"object update followed in {took:.3f}s")

        # delete an object
        kube_cluster.kubectl("delete", f"widgets.{group}", "w2", "-n", ns_a, "--wait=false")
        want -= expected_series(group, ns_a, "w2", replicas=2, color="blue", phase="Pending")
        took = wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=FOLLOW_SECONDS,
            what=lambda: f"delete not followed: {sorted(proc.samples(prefix))}",
        )
        print(f"object delete followed in {took:.3f}s")

        # status: Ready/Compiled, generation, resolved resource, counts
        wait_for(
            lambda: config_status(kube_cluster, config_name).get("series") == len(want),
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)) + proc.log_tail(),
        )
        status = config_status(kube_cluster, config_name)
        cond = ready_condition(kube_cluster, config_name)
        observed = (cond["status"], cond["reason"], cond["observedGeneration"])
        assert observed == ("True", "Compiled", 1), dump(status)
        assert status["observedGeneration"] == 1 and status["objects"] == 2
        assert status["resolvedResource"] == {
            "group": group,
            "version": "v1",
            "resource": "widgets",
            "kind": "Widget",
            "namespaced": True,
        }
        ready_since = cond["lastTransitionTime"]

        # update the config: drop two families, the rest re-rendered
        kube_cluster.apply(
            metrics_config(
                config_name,
                group,
                metrics=[
                    {
                        "name": "replicas",
                        "help": "Desired replicas.",
                        "type": "gauge",
                        "field": {"path": ".spec.replicas", "type": "Integer"},
                        "metricValue": {"valueFromPath": ".spec.replicas"},
                    }
                ],
            )
        )
        want = {
            f'{prefix}replicas{{namespace="{ns_a}",widget="w1"}} 7',
            f'{prefix}replicas{{namespace="{ns_b}",widget="w3"}} 3',
        }
        took = wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=FOLLOW_SECONDS,
            what=lambda: f"config update not followed: {sorted(proc.samples(prefix))}",
        )
        print(f"config update followed in {took:.3f}s")
        wait_for(
            lambda: (
                config_status(kube_cluster, config_name).get("observedGeneration") == 2
                and config_status(kube_cluster, config_name).get("series") == 2
            ),
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)),
        )
        cond = ready_condition(kube_cluster, config_name)
        assert cond["observedGeneration"] == 2 and cond["lastTransitionTime"] == ready_since

        # delete the config: its series go at once
        kube_cluster.kubectl("delete", "metricsconfigurations.metrics.appscode.com", config_name)
        took = wait_for(
            lambda: proc.samples(prefix) == set(),
            timeout=FOLLOW_SECONDS,
            what=lambda: f"config delete not followed: {sorted(proc.samples(prefix))}",
        )
        print(f"config delete followed in {took:.3f}s")
        assert f"# HELP {prefix}replicas" not in proc.metrics()
        assert proc.get("/readyz")[0] == 200


def test_config_before_its_crd_becomes_ready_without_restart(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    install_config_crd(kube_cluster)
    group = unique_group()
    config_name = f"early-{group.split('.')[0]}"
    prefix = family_prefix(group)
    with serve(kube_cluster, tmp_path) as proc:
        kube_cluster.apply(metrics_config(config_name, group))
        wait_for(
            lambda: ready_condition(kube_cluster, config_name).get("reason") == "TargetNotFound",
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)),
        )
        cond = ready_condition(kube_cluster, config_name)
        assert cond["status"] == "False" and f"{group}/v1" in cond["message"]
        assert proc.get("/readyz")[0] == 200  # a pending config does not make the process unready

        apply_crd(kube_cluster, widget_crd(group))
        kube_cluster.apply(widget(group, kube_namespace, "late", replicas=4))
        want = expected_series(group, kube_namespace, "late", replicas=4, color="red", phase="Running")
        wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=20,
            what=lambda: f"{sorted(proc.samples(prefix))}\n{proc.log_tail()}",
        )
        wait_for(
            lambda: ready_condition(kube_cluster, config_name).get("reason") == "Compiled",
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)),
        )
        assert proc.process.poll() is None

        # and the CRD going away takes the series with it; the config is pending again
        kube_cluster.kubectl("delete", "crd", f"widgets.{group}", "--timeout=60s")
        wait_for(lambda: proc.samples(prefix) == set(), timeout=20, what=proc.log_tail)
        wait_for(
            lambda: ready_condition(kube_cluster, config_name).get("reason") == "TargetNotFound",
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)),
        )
        assert "resolvedResource" not in config_status(kube_cluster, config_name)
        assert proc.process.poll() is None
        kube_cluster.kubectl("delete", "metricsconfigurations.metrics.appscode.com", config_name)


def test_bad_config_unknown_kind_and_wrong_type_leave_the_rest_serving(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    install_config_crd(kube_cluster)
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    tag = group.split(".")[0]
    good, bad, unknown = f"good-{tag}", f"bad-{tag}", f"unknown-{tag}"
    prefix = family_prefix(group)
    with serve(kube_cluster, tmp_path) as proc:
        kube_cluster.apply(
            widget(group, kube_namespace, "ok", replicas=2),
            widget(group, kube_namespace, "wrong", replicas="two"),
            metrics_config(good, group),
            metrics_config(
                bad,
                group,
                metrics=[
                    {
                        "name": "broken",
                        "help": "x",
                        "type": "gauge",
                        "metricValue": {"valueFromExpression": "int(("},
                    }
                ],
            ),
            metrics_config(unknown, f"missing-{group}"),
        )
        want = expected_series(group, kube_namespace, "ok", replicas=2, color="red", phase="Running")
        # "wrong" keeps its other series; only its replicas sample is dropped
        want |= expected_series(group, kube_namespace, "wrong", replicas=0, color="red", phase="Running")
        want.discard(f'{prefix}replicas{{namespace="{kube_namespace}",widget="wrong"}} 0')
        wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=20,
            what=lambda: f"{sorted(proc.samples(prefix))}\n{proc.log_tail()}",
        )

        wait_for(
            lambda: (
                ready_condition(kube_cluster, bad).get("reason") == "CompileError"
                and ready_condition(kube_cluster, unknown).get("reason") == "TargetNotFound"
                and ready_condition(kube_cluster, good).get("reason") == "Compiled"
            ),
            timeout=STATUS_SECONDS,
            what=lambda: dump([config_status(kube_cluster, n) for n in (good, bad, unknown)]),
        )
        bad_message = ready_condition(kube_cluster, bad)["message"]
        assert "spec.metrics[0].metricValue.valueFromExpression" in bad_message, bad_message

        body = proc.metrics()
        assert f'panopticon_configuration_ready{{configuration="{bad}",reason="CompileError"}} 0.0' in body
        assert f'{{configuration="{unknown}",reason="TargetNotFound"}} 0.0' in body
        assert f'panopticon_configuration_ready{{configuration="{good}",reason="Compiled"}} 1.0' in body
        errors = [
            line
            for line in body.splitlines()
            if line.startswith("panopticon_series_errors_total{") and f'configuration="{good}"' in line
        ]
        assert errors and float(errors[0].rsplit(" ", 1)[1]) >= 1, body[-3000:]
        assert proc.get("/readyz")[0] == 200 and proc.process.poll() is None
        for name in (good, bad, unknown):
            kube_cluster.kubectl("delete", "metricsconfigurations.metrics.appscode.com", name)


def test_pinned_version_no_longer_served_falls_back(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    install_config_crd(kube_cluster)
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group, versions=("v1beta1", "v1"), storage="v1"))
    config_name = f"pinned-{group.split('.')[0]}"
    prefix = family_prefix(group)
    with serve(kube_cluster, tmp_path) as proc:
        kube_cluster.apply(
            widget(group, kube_namespace, "w", replicas=5),
            metrics_config(config_name, group, version="v1beta1"),
        )
        want = expected_series(group, kube_namespace, "w", replicas=5, color="red", phase="Running")
        wait_for(lambda: proc.samples(prefix) == want, timeout=20, what=lambda: proc.log_tail())
        wait_for(
            lambda: ready_condition(kube_cluster, config_name).get("reason") == "Compiled",
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)),
        )

        crd = widget_crd(group, versions=("v1beta1", "v1"), storage="v1")
        crd["spec"]["versions"][0]["served"] = False
        kube_cluster.apply(crd)
        wait_for(
            lambda: ready_condition(kube_cluster, config_name).get("reason") == "VersionFallback",
            timeout=STATUS_SECONDS,
            what=lambda: dump(config_status(kube_cluster, config_name)),
        )
        status = config_status(kube_cluster, config_name)
        assert status["resolvedResource"]["version"] == "v1"
        message = ready_condition(kube_cluster, config_name)["message"]
        assert f"{group}/v1beta1 is not served; using {group}/v1" in message
        kube_cluster.apply(widget(group, kube_namespace, "w", replicas=6))
        want = expected_series(group, kube_namespace, "w", replicas=6, color="red", phase="Running")
        wait_for(lambda: proc.samples(prefix) == want, timeout=FOLLOW_SECONDS, what=lambda: proc.log_tail())
        kube_cluster.kubectl("delete", "metricsconfigurations.metrics.appscode.com", config_name)
