"""Every envoy config the renderer can produce passes ``envoy --mode validate`` (real Envoy).

``--mode validate`` does not load file-based LDS/CDS, so each rendered config is checked twice:
the bootstrap as rendered (paths rewritten into a temporary directory), and a static bootstrap
carrying the rendered listeners, clusters and SDS secrets, which makes Envoy parse every proto.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from tests.unit.thanos.strategies import thanos_objects
from thanos_operator import names
from thanos_operator.models import parse_thanos
from thanos_operator.render import render

pytestmark = pytest.mark.envoy


def proxy_files(objects: list[dict[str, Any]]) -> dict[str, str] | None:
    for obj in objects:
        if obj["kind"] == "Secret" and obj["metadata"]["name"].endswith("-query-proxy-config"):
            return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    return None


def validate(envoy_bin: str, path: Path) -> None:
    result = subprocess.run(
        [envoy_bin, "--mode", "validate", "-c", str(path), "-l", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{path.name}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "OK" in result.stdout + result.stderr


def validate_rendered(envoy_bin: str, files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            text = text.replace(names.ENVOY_CONFIG_DIR, str(root))
            (root / name).write_text(text.replace(names.ENVOY_STORES_DIR, str(root / "stores")))
        for index in range(16):  # the credential directories envoy watches must exist
            (root / "stores" / str(index)).mkdir(parents=True)
        validate(envoy_bin, root / "envoy.yaml")
        boot = yaml.safe_load((root / "envoy.yaml").read_text())
        del boot["dynamic_resources"]

        def resources(name: str) -> list[dict[str, Any]]:
            docs = yaml.safe_load((root / name).read_text())["resources"]
            return [{k: v for k, v in r.items() if k != "@type"} for r in docs]

        boot["static_resources"] = {
            "listeners": resources("lds.yaml"),
            "clusters": resources("cds.yaml"),
            "secrets": [s for f in sorted(files) if f.startswith("sds-") for s in resources(f)],
        }
        (root / "static.yaml").write_text(yaml.safe_dump(boot))
        validate(envoy_bin, root / "static.yaml")


def test_usage_3_proxy_config_validates(envoy_bin: str) -> None:
    raw = yaml.safe_load(
        (Path(__file__).parents[1] / "golden/thanos/cases/usage-3-central.input.yaml").read_text()
    )
    files = proxy_files(render(parse_thanos(raw)))
    assert files is not None and {"envoy.yaml", "lds.yaml", "cds.yaml"} <= set(files)
    validate_rendered(envoy_bin, files)


def test_a_broken_config_is_rejected(envoy_bin: str, tmp_path: Path) -> None:
    """The validator really validates: a bad enum value fails (guards against a vacuous check)."""
    raw = yaml.safe_load(
        (Path(__file__).parents[1] / "golden/thanos/cases/usage-3-central.input.yaml").read_text()
    )
    files = proxy_files(render(parse_thanos(raw)))
    assert files is not None
    files["cds.yaml"] = files["cds.yaml"].replace("LOGICAL_DNS", "NOT_A_TYPE")
    with pytest.raises(AssertionError):
        validate_rendered(envoy_bin, files)


# No shrinking: every example runs envoy twice, and a failure prints its input anyway.
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(thanos_objects())
def test_every_generated_envoy_config_validates(envoy_bin: str, raw: dict[str, Any]) -> None:
    files = proxy_files(render(parse_thanos(raw)))
    if files is not None:
        validate_rendered(envoy_bin, files)
