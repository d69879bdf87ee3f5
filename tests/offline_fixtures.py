"""A small offline source directory (one Deployment configuration + objects) for tests, and
helpers to run ``panopticon serve`` as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CONFIG = Path(__file__).parent / "deployment-config.yaml"
REPO = Path(__file__).resolve().parents[1]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def serve(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "apiserver.cli", "serve", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        try:
            if http_get(base + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become ready")
