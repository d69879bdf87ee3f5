"""Time, peak RSS and log volume of ``check`` and ``render`` over the real AppsCode configurations.

Takes the ``real_configs`` data directory (configs/, objects/) as its argument; nothing of it
is copied into the project. Each measurement runs the CLI in a fresh subprocess under
``/usr/bin/time -f '%e %U %S %M'`` (wall seconds, user and system CPU seconds, peak RSS in
KiB), with ``PYTHONPATH`` taken from
the environment, so the same script measures any checkout:

    PYTHONPATH=/work/main ~/.cache/panopticon/venv/bin/python bench/bench_fidelity.py DATA
    PYTHONPATH=$PWD       ~/.cache/panopticon/venv/bin/python bench/bench_fidelity.py DATA

1. ``check`` over the 87 shipped configurations (every ``configs/*.yaml`` but ``checker-*``);
2. ``render`` of all configurations (93) over all sample objects;
3. ``render`` of the Elasticsearch configuration over 2,100 Elasticsearch objects (the samples
   copied with unique names into 30 namespaces), counting the log lines written to stderr.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def run(argv: list[str]) -> tuple[float, float, int, int, int, int]:
    """(wall s, CPU s, peak RSS KiB, exit code, stdout lines, stderr lines) of one CLI run."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        proc = subprocess.run(["/usr/bin/time", "-o", timing.name, "-f", "%e %U %S %M",
                               sys.executable, "-m", "apiserver.cli", *argv],
                              capture_output=True, text=True, check=False,
                              cwd=tempfile.gettempdir())  # not the cwd: PYTHONPATH decides
        wall, user, system, rss = timing.read().split()[-4:]
    return (float(wall), float(user) + float(system), int(rss), proc.returncode,
            proc.stdout.count("\n"), proc.stderr.count("\n"))


def es_objects(data: Path, count: int, out: Path) -> None:
    samples = [d for d in yaml.safe_load_all((data / "objects" / "kubedb-kubedb-com-elasticsearch.yaml")
                                             .read_text()) if d]
    docs = []
    for i in range(count):
        obj = copy.deepcopy(samples[i % len(samples)])
        obj["metadata"]["name"] = f"es-{i}"
        obj["metadata"]["namespace"] = f"ns-{i % 30}"
        obj["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
        docs.append(obj)
    out.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the real_configs directory (configs/, objects/)")
    parser.add_argument("--objects", type=int, default=2100)
    args = parser.parse_args()
    args.data = args.data.resolve()
    configs = sorted(args.data.glob("configs/*.yaml"))
    shipped = [str(p) for p in configs if not p.name.startswith("checker-")]
    every = [str(p) for p in configs]
    print(f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}")
    print("| what | wall s | CPU s | peak RSS MiB | exit | stdout lines | stderr (log) lines |")
    print("|---|---|---|---|---|---|---|")

    def row(what: str, argv: list[str]) -> None:
        wall, cpu, rss, code, out, err = run(argv)
        print(f"| {what} | {wall:.2f} | {cpu:.2f} | {rss / 1024:.0f} | {code} | {out:,} | {err:,} |",
              flush=True)

    row(f"check, {len(shipped)} shipped configurations",
        ["check", *[a for p in shipped for a in ("-c", p)]])
    row(f"render, {len(every)} configurations over all samples",
        ["render", "-c", str(args.data / "configs"), "-f", str(args.data / "objects")])
    with tempfile.TemporaryDirectory() as tmp:
        objects = Path(tmp) / "es.yaml"
        es_objects(args.data, args.objects, objects)
        row(f"render, Elasticsearch configuration over {args.objects:,} objects",
            ["render", "-c", str(args.data / "configs" / "kubedb-kubedb-com-elasticsearch.yaml"),
             "-f", str(objects)])


if __name__ == "__main__":
    main()
