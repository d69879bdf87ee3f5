"""load_config: kubeconfig contexts, relative paths, *-data fields, merging and in-cluster."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from kube.config import ConfigError, load_config, load_incluster_config


def write(path: Path, doc: object) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_kubeconfig_context_files_and_data(tmp_path: Path) -> None:
    ca_data = base64.b64encode(b"CA").decode()
    cfg = write(tmp_path / "kc", {
        "current-context": "a",
        "clusters": [{"name": "c1", "cluster": {"server": "https://127.0.0.1:6443/",
                                                 "certificate-authority": "ca.crt"}},
                     {"name": "c2", "cluster": {"server": "https://h:1",
                                                 "certificate-authority-data": ca_data,
                                                 "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u1", "user": {"client-certificate": "/abs/u.crt", "client-key": "u.key"}},
                  {"name": "u2", "user": {"token": "tok"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c1", "user": "u1", "namespace": "ns"}},
                     {"name": "b", "context": {"cluster": "c2", "user": "u2"}}],
    })
    a = load_config(kubeconfig=cfg)
    assert a.server == "https://127.0.0.1:6443"
    assert a.ca_file == str(tmp_path.resolve() / "ca.crt")
    assert (a.cert_file, a.key_file, a.namespace) == ("/abs/u.crt", str(tmp_path.resolve() / "u.key"), "ns")
    b = load_config(kubeconfig=cfg, context="b")
    assert (b.ca_data, b.token, b.insecure_skip_tls_verify, b.namespace) == (b"CA", "tok", True, "default")
    with pytest.raises(ConfigError, match="context 'zz' not found"):
        load_config(kubeconfig=cfg, context="zz")


def test_kubeconfig_path_list_first_wins_and_exec_rejected(tmp_path: Path) -> None:
    one = write(tmp_path / "one", {"current-context": "x",
                                   "clusters": [{"name": "c", "cluster": {"server": "https://first"}}],
                                   "contexts": [{"name": "x", "context": {"cluster": "c", "user": "e"}}],
                                   "users": [{"name": "e", "user": {"exec": {"command": "aws"}}}]})
    two = write(tmp_path / "two", {"current-context": "y",
                                   "clusters": [{"name": "c", "cluster": {"server": "https://second"}}],
                                   "contexts": [{"name": "y", "context": {"cluster": "c"}}]})
    assert load_config(kubeconfig=f"{one}:{two}", context="y").server == "https://first"
    with pytest.raises(ConfigError, match=r"users\[e\]\.exec is not supported"):
        load_config(kubeconfig=f"{one}:{two}")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(kubeconfig=str(tmp_path / "missing"))


def test_incluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("t")
    (tmp_path / "namespace").write_text("monitoring\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = load_incluster_config(sa_dir=tmp_path)
    assert cfg.server == "https://10.0.0.1:443"
    assert (cfg.token_file, cfg.ca_file, cfg.namespace) == (
        str(tmp_path / "token"), str(tmp_path / "ca.crt"), "monitoring")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        load_incluster_config(sa_dir=tmp_path)
