"""A hand-made ``Plan`` for store/exposition tests, independent of the real compiler.

The target objects carry the samples they should produce (``obj["samples"][family]`` is a list
of ``[labels, value]``), so tests control labels and values exactly (including hostile label
values); the plan adds ``namespace`` and ``<kind>`` labels like a real Panopticon plan. A value
that is not a number is dropped and reported in ``RenderErrors`` (reason ``conversion``); an
object with ``"explode": true`` makes ``render`` raise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.naming import escape_label_value
from exporter.types import FamilyHeader, RenderErrors, TargetRef

TARGET = TargetRef("example.com/v1", "Widget")


def header(name: str, help: str = "help text", *, configuration: str = "widgets") -> FamilyHeader:
    return FamilyHeader(name=name, help=help, type="gauge", configuration=configuration, target=TARGET)


@dataclass
class SamplePlan:
    name: str
    families: tuple[FamilyHeader, ...]
    target: TargetRef = TARGET

    @classmethod
    def of(cls, name: str, families: Sequence[str | FamilyHeader]) -> SamplePlan:
        return cls(name, tuple(f if isinstance(f, FamilyHeader) else header(f, configuration=name)
                               for f in families))

    def render(self, obj: Mapping[str, Any], errors: RenderErrors | None = None) -> tuple[bytes, ...]:
        if obj.get("explode"):
            raise RuntimeError("renderer bug")
        meta = obj["metadata"]
        base = {"namespace": meta.get("namespace", ""), "widget": meta["name"]}
        chunks = []
        for fam in self.families:
            lines = []
            for labels, value in obj.get("samples", {}).get(fam.name, []):
                if not isinstance(value, int | float):
                    if errors is not None:
                        errors.items.append((fam.name, "conversion", f"{value!r} is not a number"))
                    continue
                merged = {**base, **labels}
                text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in merged.items() if v != "")
                lines.append(f"{fam.name}{{{text}}} {float(value)!r}\n")
            chunks.append("".join(lines).encode())
        return tuple(chunks)


def widget(name: str, namespace: str = "default", *, uid: str | None = None, rv: str = "",
           samples: Mapping[str, list[tuple[dict[str, str], Any]]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}"}
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": TARGET.api_version, "kind": TARGET.kind, "metadata": meta,
            "samples": {k: [list(s) for s in v] for k, v in (samples or {}).items()}}
