"""Thanos Rule: a StatefulSet evaluating the rule files of the ConfigMaps and PrometheusRule
objects its ``ruleSelector`` selects, against Query, sending alerts to ``alertmanagers``, with its
headless Service.

The reconciler lists the selected ConfigMaps (``RenderContext.rule_config_maps``: name -> data);
each is mounted at ``/etc/thanos/rules/<name>/`` and every key read through the glob
``--rule-file=/etc/thanos/rules/*/*``. PrometheusRule objects (``RenderContext.prometheus_rules``,
listed only while their CRD is served) become rule files in our own ConfigMaps
``<t>-ruler-rulefiles-<i>`` (``render.prometheus_rules``), mounted the same way. Thanos Rule reads
rule files only at start (or on a reload request), so the pod template hashes their data: a
changed rule rolls the ruler. Query gets the ruler as an endpoint (rules API and StoreAPI over
the ruler's recent samples).
"""

from __future__ import annotations

from thanos_operator import names
from thanos_operator.models import Ruler
from thanos_operator.render.common import (
    POD_NAME_ENV,
    JsonObject,
    RenderContext,
    component_labels,
    config_map,
    content_hash,
    data_stateful_set,
    data_volume,
    log_args,
)
from thanos_operator.render.prometheus_rules import pack, rule_files


def render_ruler(ctx: RenderContext, ruler: Ruler) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    sts, svc = names.ruler(t), names.ruler_service(t)
    labels = component_labels(ctx, "ruler")
    flags = [
        f"--data-dir={names.DATA_DIR}",
        f"--grpc-address=0.0.0.0:{names.GRPC_PORT}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        f"--query=dns+{names.query_service(t)}:{names.HTTP_PORT}",
        f"--rule-file={names.RULES_DIR}/*/*",
        f'--label={names.RULER_REPLICA_LABEL}="$(NAME)"',
        *log_args(ruler, defaults),
    ]
    flags += [f"--alertmanagers.url={url}" for url in ruler.alertmanagers or []]
    if ruler.eval_interval:
        flags.append(f"--eval-interval={ruler.eval_interval}")
    if ruler.retention:
        flags.append(f"--tsdb.retention={ruler.retention}")
    rule_maps = dict(sorted(ctx.rule_config_maps.items()))
    rendered = [
        config_map(ctx, name=names.ruler_rule_files(t, i), labels=labels, data=files)
        for i, files in enumerate(pack(rule_files(ctx.prometheus_rules)))
        if ctx.prometheus_rules
    ]
    objects = data_stateful_set(
        ctx,
        fields=ruler,
        subcommand="rule",
        flags=flags,
        names_=(sts, svc),
        labels=labels,
        data=data_volume(sts, ruler.data_volume),
        object_storage_config=ruler.object_storage_config,
        ports=[("grpc", names.GRPC_PORT), ("http", names.HTTP_PORT)],
        env=[POD_NAME_ENV],
        component="rule",
    )
    pod = objects[0]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    mounted = [(f"rules-{name}"[:63].rstrip("-."), name) for name in rule_maps]
    mounted += [(f"prometheus-rules-{i}", cm["metadata"]["name"]) for i, cm in enumerate(rendered)]
    for volume, name in mounted:
        pod["spec"].setdefault("volumes", []).append({"name": volume, "configMap": {"name": name}})
        container.setdefault("volumeMounts", []).append(
            {"name": volume, "mountPath": f"{names.RULES_DIR}/{name}", "readOnly": True}
        )
    pod["spec"]["volumes"] = sorted(pod["spec"].get("volumes", []), key=lambda v: v["name"])
    container["volumeMounts"] = sorted(container.get("volumeMounts", []), key=lambda m: m["mountPath"])
    # Without PrometheusRules the hash covers the ConfigMaps' data alone, as before they existed.
    hashed: object = rule_maps
    if rendered:
        hashed = {"configMaps": rule_maps, "prometheusRules": [cm["data"] for cm in rendered]}
    pod["metadata"].setdefault("annotations", {})[names.ANNOTATION_CONFIG_HASH] = content_hash(hashed)[:16]
    pod["metadata"]["annotations"] = dict(sorted(pod["metadata"]["annotations"].items()))
    return [*rendered, *objects]
