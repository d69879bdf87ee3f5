"""What ``panopticon serve`` does before and around its imports (bench/README.md, initial sync).

The exporter's first LIST is sent right after the flags are parsed (apiserver/early.py), so
parsing must not import the heavy modules; the cyclic GC is off through the imports and the
initial sync and comes on once the components are ready.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from apiserver.commands import serve as serve_command

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("aiohttp", "pydantic", "asyncio", "exporter.compiler", "exporter.models", "prometheus_client")


def heavy_modules_after(code: str) -> str:
    """Which of HEAVY a fresh interpreter has imported after running ``code``."""
    code += f"\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return out.stdout.strip()


def test_parsing_serve_flags_imports_none_of_the_heavy_modules() -> None:
    imported = heavy_modules_after(
        "from apiserver.cli import build_parser\n"
        "build_parser().parse_args(['serve', '--controllers=exporter', '--config=x.yaml'])\n"
        "build_parser().parse_args(['import', 'ksm', 'crs.yaml'])\n"
    )
    assert imported == "", f"imported while parsing: {imported}"


def test_sending_the_early_list_imports_none_of_the_heavy_modules() -> None:
    """What the early-list thread imports before its LIST is on the wire (apiserver/early.py):
    asyncio alone took 50-130 ms there."""
    imported = heavy_modules_after(
        "import argparse\n"
        "import apiserver.early, kube.earlylist, kube.config, kube.resourcelist, kube.paths\n"
        "from apiserver.early import early_targets\n"
        "args = argparse.Namespace(controllers='exporter', source=None, namespaces='',\n"
        "                          config=['examples/configs/apps-deployment.yaml'])\n"
        "assert early_targets(args) == [('apps', 'v1', 'Deployment')], early_targets(args)\n"
    )
    assert imported == "", f"imported before the early LIST: {imported}"


async def test_the_gc_comes_on_frozen_once_every_component_is_ready() -> None:
    ready = {"now": False}
    runtime: Any = SimpleNamespace(ready=lambda: ready["now"])
    frozen_before = gc.get_freeze_count()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        task = asyncio.create_task(serve_command._gc_on_when_ready(runtime, poll=0.01))
        await asyncio.sleep(0.05)
        assert not gc.isenabled() and not task.done()  # still syncing: stays off
        ready["now"] = True
        await asyncio.wait_for(task, 2)
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before  # what start-up made is frozen first
    finally:
        gc.unfreeze()
        if not was_enabled:
            gc.disable()
        else:
            gc.enable()
