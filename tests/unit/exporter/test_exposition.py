"""Exposition bodies: grouping, formats, escaping, namespace filter, gzip, cache, parse_series.

Every body goes through ``tests.expo_checks.check_exposition`` (promtool + prometheus_client's
text and OpenMetrics parsers + grouping/uniqueness checks).
"""

from __future__ import annotations

import gzip
import time
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.exposition import Exposition, escape_help, parse_series
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from exporter.types import Series
from tests.expo_checks import check_exposition
from tests.plan_doubles import SamplePlan, header, widget


def filled_store() -> MetricsStore:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(SamplePlan.of("widgets", ("widget_size", "widget_info", "widget_unused")))
    store.set_plan(SamplePlan.of("gadgets", ("gadget_items",)))
    for i, ns in enumerate(["red", "blue", "red"]):
        store.upsert("widgets", widget(f"w{i}", ns, samples={
            "widget_size": [({}, i + 0.5)],
            "widget_info": [({"color": "x"}, 1), ({"color": "y"}, 0)],
        }))
    store.upsert("gadgets", widget("g", "blue", samples={"gadget_items": [({}, 7)]}))
    return store


def test_text_body_groups_each_family_once_in_stable_order() -> None:
    store = filled_store()
    body = Exposition(store).body(fmt="text")
    checked = check_exposition(body)
    # Configurations by name (gadgets < widgets), families in config order, empty family omitted.
    assert list(checked.families) == ["gadget_items", "widget_size", "widget_info"]
    assert b"widget_unused" not in body
    assert body.count(b"# HELP widget_info ") == 1
    assert checked.samples("widget_size") == [
        ({"namespace": "red", "widget": "w0"}, 0.5),
        ({"namespace": "blue", "widget": "w1"}, 1.5),
        ({"namespace": "red", "widget": "w2"}, 2.5),
    ]
    assert len(checked.families["widget_info"].samples) == 6


def test_openmetrics_body_ends_with_eof_and_parses_strictly() -> None:
    store = filled_store()
    body = Exposition(store).body(fmt="openmetrics")
    assert body.endswith(b"\n# EOF\n")
    checked = check_exposition(body, openmetrics=True)
    assert checked.families["gadget_items"].type == "gauge"
    assert Exposition(store).body(fmt="openmetrics", eof=False) == body[: -len(b"# EOF\n")]


def test_empty_store_gives_empty_text_and_bare_eof() -> None:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(SamplePlan.of("widgets", ("widget_size",)))
    exposition = Exposition(store)
    assert exposition.body(fmt="text") == b""
    assert exposition.body(fmt="openmetrics") == b"# EOF\n"
    check_exposition(exposition.body(fmt="openmetrics"), openmetrics=True)


def test_namespace_filter() -> None:
    store = filled_store()
    exposition = Exposition(store)
    red = check_exposition(exposition.body(fmt="text", namespace="red"))
    assert list(red.families) == ["widget_size", "widget_info"]  # no gadget in red: no header either
    assert {s[0]["widget"] for s in red.samples("widget_size")} == {"w0", "w2"}
    blue = check_exposition(exposition.body(fmt="openmetrics", namespace="blue"), openmetrics=True)
    assert list(blue.families) == ["gadget_items", "widget_size", "widget_info"]
    assert exposition.body(fmt="text", namespace="none") == b""


def test_gzip_round_trip_for_both_formats_and_namespaces() -> None:
    exposition = Exposition(filled_store())
    for fmt in ("text", "openmetrics"):
        for ns in (None, "red"):
            plain = exposition.body(fmt=fmt, namespace=ns)
            packed = exposition.body(fmt=fmt, namespace=ns, gzip=True)
            assert packed[:2] == b"\x1f\x8b"
            assert gzip.decompress(packed) == plain


def test_gzip_with_tail_is_one_member_compressing_only_the_tail() -> None:
    store = filled_store()
    exposition = Exposition(store)
    for tail in (b"# EOF\n", b"extra_metric 1\n# EOF\n", b""):
        packed = exposition.gzip_with_tail(fmt="openmetrics", tail=tail)
        assert gzip.decompress(packed) == exposition.body(fmt="openmetrics", eof=False) + tail
        # a single member: zlib stops at the first member's end, so it must see the whole body
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert d.decompress(packed) == exposition.body(fmt="openmetrics", eof=False) + tail
        assert d.unused_data == b""
    store.upsert("gadgets", widget("g2", "red", samples={"gadget_items": [({}, 1)]}))
    assert b'widget="g2"' in gzip.decompress(exposition.gzip_with_tail(fmt="text", tail=b""))


def test_cache_returns_same_bytes_until_the_store_changes() -> None:
    store = filled_store()
    exposition = Exposition(store)
    first = exposition.body(fmt="text")
    assert exposition.body(fmt="text") is first
    packed = exposition.body(fmt="text", gzip=True)
    assert exposition.body(fmt="text", gzip=True) is packed
    builds = store.telemetry.exposition_builds.labels("text")._value.get()

    store.upsert("widgets", widget("w9", "red", samples={"widget_size": [({}, 9)]}))
    after_upsert = exposition.body(fmt="text")
    assert after_upsert is not first and b'widget="w9"' in after_upsert
    assert b'widget="w9"' in gzip.decompress(exposition.body(fmt="text", gzip=True))
    assert store.telemetry.exposition_builds.labels("text")._value.get() == builds + 1

    store.delete("widgets", "uid-red-w9")
    after_delete = exposition.body(fmt="text")
    assert b'widget="w9"' not in after_delete
    assert after_delete == first

    # An update that renders identically keeps the cache (no rebuild).
    store.upsert("gadgets", widget("g", "blue", samples={"gadget_items": [({}, 7)]}))
    assert exposition.body(fmt="text") is after_delete


def test_cached_body_is_fast() -> None:
    store = filled_store()
    exposition = Exposition(store)
    exposition.body(fmt="text")
    started = time.perf_counter()
    for _ in range(1000):
        exposition.body(fmt="text")
    assert (time.perf_counter() - started) / 1000 < 0.001


def test_help_escaping_per_format() -> None:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    fam = header("odd_help", 'say "hi" \\ then\nnew line', configuration="widgets")
    store.set_plan(SamplePlan("widgets", (fam,)))
    store.upsert("widgets", widget("a", samples={"odd_help": [({}, 1)]}))
    exposition = Exposition(store)
    text = exposition.body(fmt="text")
    assert b'# HELP odd_help say "hi" \\\\ then\\nnew line\n' in text
    om = exposition.body(fmt="openmetrics")
    assert b'# HELP odd_help say \\"hi\\" \\\\ then\\nnew line\n' in om
    assert check_exposition(text).families["odd_help"].documentation == fam.help
    assert check_exposition(om, openmetrics=True).families["odd_help"].documentation == fam.help


def test_parse_series_undoes_escaping() -> None:
    chunk = (b'a_b{namespace="ns",x="q\\"uote",y="back\\\\slash",z="new\\nline",u="\xc3\xa9"} 1.5\n'
             b"plain_metric 2\n"
             b'c{} -Inf\n')
    assert parse_series(chunk) == [
        Series("a_b", {"namespace": "ns", "x": 'q"uote', "y": "back\\slash", "z": "new\nline", "u": "é"},
               1.5),
        Series("plain_metric", {}, 2.0),
        Series("c", {}, float("-inf")),
    ]


# --------------------------------------------------------------------------- fuzzing

_label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    min_size=1, max_size=30,
) | st.sampled_from(['"', "\\", "\n", '\\"', "\\n", "é", "日本", "a,b=c", "}", "{", "#"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_label_text, min_size=1, max_size=4, unique=True), help_text=_label_text)
def test_fuzzed_label_values_and_help_survive_both_formats(values: list[str], help_text: str) -> None:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(SamplePlan("widgets", (header("fuzz_value", help_text, configuration="widgets"),)))
    samples = [({"v": v}, float(i)) for i, v in enumerate(values)]
    store.upsert("widgets", widget("obj", "ns", samples={"fuzz_value": samples}))
    exposition = Exposition(store)
    expected = [({"namespace": "ns", "widget": "obj", "v": v}, float(i)) for i, v in enumerate(values)]
    for openmetrics in (False, True):
        body = exposition.body(fmt="openmetrics" if openmetrics else "text")
        kind = "openmetrics" if openmetrics else "text"
        # Our bytes are exact; parsers trim whitespace around HELP (and promtool lints a blank one).
        assert f"# HELP fuzz_value {escape_help(help_text, kind)}\n".encode() in body
        lint = ("no help text",) if not help_text.strip() else ()
        checked = check_exposition(body, openmetrics=openmetrics, allowed_lint=lint)
        assert checked.families["fuzz_value"].documentation.strip() == help_text.strip()
        assert checked.samples("fuzz_value") == expected
    entry = store.get("widgets", "uid-ns-obj")
    assert entry is not None
    assert [(dict(s.labels), s.value) for s in parse_series(entry.chunks[0])] == expected


# Through the real compiler: label values come from the object (valuePath) and from a literal
# (value), HELP from the configuration; the compiled plan renders, the store keeps, the
# exposition assembles.

_safe_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
                     min_size=1, max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(from_object=_label_text, literal=_label_text, help_text=_safe_text)
def test_fuzz_through_the_real_compiler(from_object: str, literal: str, help_text: str) -> None:
    from exporter.compiler import compile_config

    plan = compile_config({
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": "fuzz"},
        "spec": {"targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
                 "metrics": [{"name": "value", "help": help_text, "type": "gauge",
                              "labels": [{"key": "from_object", "valuePath": ".spec.text"},
                                         {"key": "literal", "value": literal}],
                              "metricValue": {"valueFromPath": ".spec.number"}}]},
    })
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(plan)
    store.upsert("fuzz", {"apiVersion": "example.com/v1", "kind": "Widget",
                          "metadata": {"name": "w", "namespace": "ns", "uid": "u1"},
                          "spec": {"text": from_object, "number": 2.5}})
    exposition = Exposition(store)
    expected = [({"namespace": "ns", "widget": "w", "from_object": from_object, "literal": literal}, 2.5)]
    for openmetrics in (False, True):
        body = exposition.body(fmt="openmetrics" if openmetrics else "text")
        lint = ("no help text",) if not help_text.strip() else ()
        checked = check_exposition(body, openmetrics=openmetrics, allowed_lint=lint)
        assert checked.samples("example_com_widget_value") == expected
        assert checked.families["example_com_widget_value"].documentation.strip() == help_text.strip()


def test_parse_series_split_fast_path_agrees_with_the_scanner_on_tricky_unescaped_values() -> None:
    # No backslash: the split path; braces, commas, '=' and spaces inside values must survive.
    chunk = b'x{a="}{",b="a,b=c",c=" sp ace ",d=""} 7\nx{a="q\\"",b="}"} 8\n'
    assert parse_series(chunk) == [
        Series("x", {"a": "}{", "b": "a,b=c", "c": " sp ace ", "d": ""}, 7.0),
        Series("x", {"a": 'q"', "b": "}"}, 8.0),
    ]
