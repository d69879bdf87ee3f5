"""``panopticon render`` as a user runs it: output, formats, namespace filter, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.expo_checks import check_exposition
from tests.offline_fixtures import make_source_dir

REPO = Path(__file__).resolve().parents[4]


def render(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "apiserver.cli", "render", *args], cwd=REPO,
                          input=stdin, capture_output=True, timeout=60)


def test_render_text_and_openmetrics(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    cfg, objs = str(root / "configs"), str(root / "objects")
    proc = render("-c", cfg, "-f", objs)
    assert proc.returncode == 0, proc.stderr.decode()
    checked = check_exposition(proc.stdout)
    assert {labels["deployment"]: v for labels, v in checked.samples("apps_deployment_status_replicas")} == {
        "api": 2.0, "web": 4.0}
    conditions = checked.samples("apps_deployment_status_condition")
    assert len(conditions) == 4 and {c[0]["type"] for c in conditions} == {"Available", "Progressing"}

    proc = render("-c", cfg, "-f", objs, "--format", "openmetrics", "-n", "core")
    assert proc.returncode == 0
    checked = check_exposition(proc.stdout, openmetrics=True)
    assert {labels["namespace"] for f in checked.families.values() for labels, _ in
            [(s.labels, s.value) for s in f.samples]} == {"core"}


def test_render_reads_objects_from_stdin(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    proc = render("-c", str(root / "configs"), "-f", "-", stdin=(root / "objects" / "web.yaml").read_bytes())
    assert proc.returncode == 0
    assert b'apps_deployment_status_replicas{namespace="shop",deployment="web"} 4\n' in proc.stdout


def test_render_errors_are_clear(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    (root / "objects" / "bad.yaml").write_text("metadata: {name: [x\n")
    proc = render("-c", str(root / "configs"), "-f", str(root / "objects"))
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "bad.yaml:" in err, err
    assert "Traceback" not in err and b'deployment="web"' in proc.stdout  # the good objects render
    proc = render("-c", str(root / "nope.yaml"))
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "nope.yaml: no such file or directory" in err, err
    assert "Traceback" not in err and proc.stdout == b""

    cfg = root / "configs" / "apps-deployment.yaml"
    cfg.write_text(cfg.read_text().replace("valueFromExpression: int(paused == 'true')",
                                           "valueFromExpression: int(paused == )"))
    proc = render("-c", str(cfg))
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "spec.metrics[2].metricValue.valueFromExpression" in err, err
    assert "Traceback" not in err
