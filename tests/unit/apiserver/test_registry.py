"""Issue 8 seam 2: one registry of served resources, read by discovery, OpenAPI, routes, watch, telemetry.

The second group-version here (``demo.example.io/v1``, one resource over a tiny in-memory
backend) is what a new API group looks like: one ``ApiGroupVersion`` entry plus its projection,
and nothing else changes.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from apiserver.registry import ApiGroupVersion, ApiRegistry, Column, ServedResource
from apiserver.telemetry import ApiTelemetry
from tests.unit.apiserver.conftest import MASTERS_HEADERS, Pki, Served, serve
from tests.unit.apiserver.test_server_http import TABLE, get

ROOT = Path(__file__).resolve().parents[3]


def _imports(path: Path) -> set[str]:
    """``apiserver.*`` modules a file imports, including ``if TYPE_CHECKING:`` imports."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("apiserver"):
            if node.module == "apiserver":
                out |= {f"apiserver.{alias.name}" for alias in node.names}
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("apiserver")}
    return out


def test_no_import_cycle_in_apiserver() -> None:
    graph = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): _imports(p)
        for p in (ROOT / "apiserver").rglob("*.py")
    }
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                pytest.fail(f"import cycle: {' -> '.join([*path, dep])}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "apiserver.watch" not in graph["apiserver.registry"]
    assert "apiserver.resources" not in graph["apiserver.watch"]


def test_only_the_metrics_entry_names_the_metrics_resources() -> None:
    generic = ["discovery", "openapi", "resources", "watch", "server", "telemetry", "registry", "query"]
    for name in generic:
        text = (ROOT / "apiserver" / f"{name}.py").read_text()
        for plural in ("metricfamilies", "objectmetrics", "clusterobjectmetrics"):
            assert f'"{plural}"' not in text, f"apiserver/{name}.py spells out {plural}"


# ---------------------------------------------------------------------- a second API group


@dataclass(frozen=True)
class Widget:
    namespace: str
    name: str
    size: int
    rv: int


@dataclass
class WidgetEvent:
    rv: int
    type: str
    resource: str
    payload: Widget


class WidgetStore:
    """The data and its event log (the ``EventSource`` a watch reads)."""

    def __init__(self) -> None:
        self.widgets: dict[tuple[str, str], Widget] = {}
        self.log: list[WidgetEvent] = []
        self.rv = 100
        self.floor = 0
        self._changed = asyncio.Event()

    def put(self, namespace: str, name: str, size: int) -> None:
        self.rv += 1
        kind = "MODIFIED" if (namespace, name) in self.widgets else "ADDED"
        widget = self.widgets[(namespace, name)] = Widget(namespace, name, size, self.rv)
        self.log.append(WidgetEvent(self.rv, kind, "widgets", widget))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def events_after(self, rv: int) -> Iterator[WidgetEvent]:
        return iter([e for e in self.log if e.rv > rv])

    async def wait_for_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


class WidgetBackend:
    """The projection of the widgets: all a new resource needs besides its registry entry."""

    def __init__(self, store: WidgetStore) -> None:
        self.store = store

    @property
    def events(self) -> WidgetStore:
        return self.store

    def sync(self) -> None:
        pass

    def items(self, namespace: str | None) -> Sequence[Widget]:
        return [w for k, w in sorted(self.store.widgets.items()) if namespace is None or k[0] == namespace]

    def item(self, namespace: str, name: str) -> Widget | None:
        return self.store.widgets.get((namespace, name))

    def key(self, item: Widget) -> tuple[str, str]:
        return item.namespace, item.name

    def labels(self, item: Widget) -> Mapping[str, str]:
        return {"size": "big" if item.size > 10 else "small"}

    def rv(self, item: Widget) -> int:
        return item.rv

    def to_object(self, item: Widget) -> dict[str, Any]:
        meta = {"name": item.name, "namespace": item.namespace, "resourceVersion": str(item.rv)}
        return {"apiVersion": "demo.example.io/v1", "kind": "Widget", "metadata": meta, "size": item.size}

    def cells(self, item: Widget, *, now: float) -> list[Any]:
        return [item.name, item.size]


def widget_group(backend: WidgetBackend) -> ApiGroupVersion:
    return ApiGroupVersion(
        group="demo.example.io",
        version="v1",
        definition_prefix="io.example.demo.v1.",
        definitions={"ListMeta": {"type": "object"}},
        resources=(
            ServedResource(
                plural="widgets",
                singular="widget",
                kind="Widget",
                namespaced=True,
                backend=backend,
                columns=(Column("Name", "string", "Name", format="name"), Column("Size", "integer", "Size")),
                schema={"type": "object", "properties": {"size": {"type": "integer"}}},
                short_names=("wd",),
            ),
        ),
    )


@pytest.fixture
async def with_widgets(pki: Pki) -> AsyncIterator[tuple[Served, WidgetStore, CollectorRegistry]]:
    store = WidgetStore()
    store.put("ns1", "small-one", 3)
    store.put("ns1", "big-one", 30)
    store.put("ns2", "other", 5)
    registry = CollectorRegistry()
    group = widget_group(WidgetBackend(store))
    served, server = await serve(pki, groups=[group], telemetry=ApiTelemetry(registry))
    try:
        yield served, store, registry
    finally:
        await server.stop()
        served.views.close()


async def test_a_new_group_is_discovered_described_and_served(
    with_widgets: tuple[Served, WidgetStore, CollectorRegistry],
) -> None:
    served, backend, registry = with_widgets
    status, groups, _ = await get(served, "/apis")
    assert [g["name"] for g in groups["groups"]] == ["metrics.panopticon.io", "demo.example.io"]
    status, group, _ = await get(served, "/apis/demo.example.io")
    assert status == 200 and group["preferredVersion"]["groupVersion"] == "demo.example.io/v1"
    status, resources, _ = await get(served, "/apis/demo.example.io/v1")
    assert [(r["name"], r["kind"], r["namespaced"], r["shortNames"]) for r in resources["resources"]] == [
        ("widgets", "Widget", True, ["wd"])
    ]
    status, v2, _ = await get(served, "/openapi/v2")
    widget = v2["definitions"]["io.example.demo.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": "demo.example.io", "version": "v1", "kind": "Widget"}
    ]
    assert "/apis/demo.example.io/v1/namespaces/{namespace}/widgets/{name}" in v2["paths"]
    status, root, _ = await get(served, "/openapi/v3")
    url = root["paths"]["apis/demo.example.io/v1"]["serverRelativeURL"]
    status, v3, _ = await get(served, url)
    assert status == 200 and "io.example.demo.v1.WidgetList" in v3["components"]["schemas"]

    base = "/apis/demo.example.io/v1"
    status, listed, _ = await get(served, f"{base}/namespaces/ns1/widgets?labelSelector=size=big")
    assert status == 200 and listed["kind"] == "WidgetList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["big-one"]
    status, table, _ = await get(
        served, "/apis/demo.example.io/v1/widgets", headers={**MASTERS_HEADERS, "Accept": TABLE}
    )
    assert [r["cells"] for r in table["rows"]] == [["big-one", 30], ["small-one", 3], ["other", 5]]
    status, one, _ = await get(served, "/apis/demo.example.io/v1/namespaces/ns2/widgets/other")
    assert status == 200 and one["size"] == 5
    status, missing, _ = await get(served, "/apis/demo.example.io/v1/namespaces/ns2/widgets/nope")
    assert status == 404 and missing["kind"] == "Status"

    async with served.proxy_session() as session, session.get(
        served.url + f"/apis/demo.example.io/v1/namespaces/ns1/widgets?watch=1&resourceVersion={backend.rv}"
        "&timeoutSeconds=2",
        headers=MASTERS_HEADERS,
    ) as resp:
        backend.put("ns1", "small-one", 4)
        backend.put("ns2", "other", 6)  # other namespace: not seen
        line = await asyncio.wait_for(resp.content.readline(), 5)
    event = orjson.loads(line)
    assert event["type"] == "MODIFIED" and event["object"]["size"] == 4

    requests = {
        (s.labels["verb"], s.labels["resource"])
        for m in registry.collect() if m.name == "panopticon_apiserver_requests"
        for s in m.samples if s.name.endswith("_total")
    }
    assert ("list", "widgets") in requests and ("get", "widgets") in requests


def test_registry_refuses_a_group_version_twice() -> None:
    entry = ApiGroupVersion(group="a.io", version="v1", resources=())
    with pytest.raises(ValueError, match="twice"):
        ApiRegistry([entry, entry])
    registry = ApiRegistry([entry])
    assert registry.telemetry_label("a.io", "v1", "anything") == "other"
