"""Shared checks of the documents' worked examples: each ``<!-- example: PATH -->`` block in a
doc page is exactly the file at PATH, and the CLI prints exactly the documented output.

Used by every golden test of an extension's worked example (aggregates, shared families,
extensions, KSM), so "the docs show what the code does" is checked one way everywhere.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BLOCK = re.compile(r"<!-- example: (\S+) -->\n```[a-z]*\n(.*?)```", re.DOTALL)


def doc_blocks(doc: Path) -> dict[str, str]:
    """``{example path: block text}`` of every marked example block in ``doc``."""
    return dict(BLOCK.findall(doc.read_text()))


def assert_doc_shows(doc: Path, example: Path, name: str) -> None:
    """The block marked ``examples/<dir>/<name>`` in ``doc`` equals that file."""
    key = f"{example.relative_to(ROOT).as_posix()}/{name}"
    assert doc_blocks(doc)[key] == (example / name).read_text()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``panopticon ARGS`` from the checkout, text in and out, bounded."""
    return subprocess.run([sys.executable, "-m", "apiserver.cli", *args], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=60)


def assert_render_prints(example: Path, expected: str, *extra: str, config: str = "config.yaml") -> str:
    """``render -c <example>/<config> -f <example>/objects.yaml EXTRA`` prints ``expected``'s
    text; returns it."""
    result = cli("render", "-c", str(example / config), "-f", str(example / "objects.yaml"), *extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (example / expected).read_text()
    return result.stdout
