"""The CRD in deploy/ is exactly what ``panopticon crds`` generates from the models."""

from __future__ import annotations

from pathlib import Path

import yaml

from apiserver.cli import main
from apiserver.commands.crds import generated

REPO = Path(__file__).resolve().parents[3]


def walk(schema: dict[str, object], path: str = "") -> list[str]:
    problems = []
    if "$ref" in schema or "anyOf" in schema or "nullable" in schema:
        problems.append(path)
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" in schema:
        problems.append(path)
    for key in ("properties",):
        for name, sub in (schema.get(key) or {}).items():  # type: ignore[attr-defined]
            problems += walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += walk(schema["items"], f"{path}[]")  # type: ignore[arg-type]
    return problems


def test_committed_crd_is_up_to_date() -> None:
    assert (REPO / "deploy/crds/thanos.yaml").read_text() == generated()["thanos.yaml"], (
        "run: panopticon crds --out deploy/crds"
    )


def test_crd_is_structural_with_status_and_columns() -> None:
    crd = yaml.safe_load(generated()["thanos.yaml"])
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Reconciled",
        "Paused",
        "Age",
    ]
    schema = version["schema"]["openAPIV3Schema"]
    assert walk(schema) == []
    spec = schema["properties"]["spec"]["properties"]
    assert set(spec) == {
        "defaultFields",
        "query",
        "queryFrontend",
        "receive",
        "storeGateway",
        "compact",
        "ruler",
        "paused",
    }
    retention = spec["compact"]["properties"]["retention"]["properties"]
    assert set(retention) == {"retentionRaw", "retention5m", "retention1h"}
    store = spec["query"]["properties"]["stores"]["items"]["properties"]
    assert set(store) == {"addresses", "caSecret", "clientCertSecret", "bearerTokenSecret", "serverName"}
    assert spec["query"]["properties"]["affinity"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    status = schema["properties"]["status"]["properties"]
    assert set(status) == {"observedGeneration", "paused", "conditions", "components"}


def test_crds_out_writes_only_generated_files(tmp_path: Path) -> None:
    (tmp_path / "metricsconfigurations.yaml").write_text("hand-written\n")
    assert main(["crds", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "metricsconfigurations.yaml").read_text() == "hand-written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metricsconfigurations.yaml", "thanos.yaml"]
