"""A small offline source directory (one Deployment configuration + objects) for tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CONFIG = Path(__file__).parent / "unit" / "exposition" / "deployment-config.yaml"


def deployment(name: str, namespace: str, *, replicas: int = 2, paused: bool = False) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}, uid: uid-{namespace}-{name}}}
spec:
  replicas: {replicas}
  paused: {str(paused).lower()}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: "25%", maxSurge: 1}}}}
status:
  replicas: {replicas}
  conditions:
  - {{type: Available, status: "True"}}
  - {{type: Progressing, status: "True"}}
"""


def make_source_dir(root: Path) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "objects").mkdir()
    shutil.copy(CONFIG, root / "configs" / "apps-deployment.yaml")
    (root / "objects" / "web.yaml").write_text(deployment("web", "shop", replicas=4))
    (root / "objects" / "api.yaml").write_text(deployment("api", "core", replicas=2, paused=True))
    return root


def write_and_touch(path: Path, text: str) -> None:
    """Write ``text`` and make sure the mtime moves even on coarse-mtime filesystems."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
