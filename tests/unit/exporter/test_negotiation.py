"""Accept / Accept-Encoding negotiation is the same as prometheus_client's, header for header."""

from __future__ import annotations

import functools

import pytest
from prometheus_client import exposition as pc
from prometheus_client.openmetrics import exposition as pc_om

from exporter.exposition import (
    CONTENT_TYPE_OPENMETRICS_1_0_0,
    CONTENT_TYPE_TEXT_0_0_4,
    gzip_accepted,
    negotiate,
)

PROMETHEUS_DEFAULT = (  # what Prometheus 3 sends (prometheus/docs content_negotiation.md)
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,"
                "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")

ACCEPT_TABLE: list[tuple[str | None, str, str]] = [
    (None, "text", CONTENT_TYPE_TEXT_0_0_4),
    ("", "text", CONTENT_TYPE_TEXT_0_0_4),
    ("*/*", "text", CONTENT_TYPE_TEXT_0_0_4),
    ("text/plain", "text", CONTENT_TYPE_TEXT_0_0_4),
    ("text/plain;version=0.0.4", "text", CONTENT_TYPE_TEXT_0_0_4),
    ("text/plain;version=1.0.0", "text", "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"),
    ("application/openmetrics-text", "openmetrics", CONTENT_TYPE_OPENMETRICS_1_0_0),
    ("application/openmetrics-text; version=1.0.0", "openmetrics",
     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
    ("application/openmetrics-text;version=0.0.1", "text", CONTENT_TYPE_TEXT_0_0_4),
    ("application/json, application/openmetrics-text", "openmetrics", CONTENT_TYPE_OPENMETRICS_1_0_0),
    (PROMETHEUS_DEFAULT, "openmetrics",
     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
    (PROMETHEUS_2, "openmetrics",
     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
    ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "text",
     CONTENT_TYPE_TEXT_0_0_4),
    ("text/plain;version=1.0.0;escaping=bogus", "text",
     "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"),
]


@pytest.mark.parametrize(("accept", "kind", "content_type"), ACCEPT_TABLE)
def test_accept_table(accept: str | None, kind: str, content_type: str) -> None:
    fmt = negotiate(accept)
    assert (fmt.kind, fmt.content_type) == (kind, content_type)


@pytest.mark.parametrize("accept", [a for a, _, _ in ACCEPT_TABLE])
def test_same_choice_as_prometheus_client(accept: str | None) -> None:
    encoder, content_type = pc.choose_encoder(accept or "")
    func = encoder.func if isinstance(encoder, functools.partial) else encoder
    expected_kind = "openmetrics" if func is pc_om.generate_latest else "text"
    fmt = negotiate(accept)
    assert (fmt.kind, fmt.content_type) == (expected_kind, content_type)


@pytest.mark.parametrize(("header", "expected"), [
    (None, False), ("", False), ("identity", False), ("gzip", True), ("GZIP", True),
    ("deflate, gzip;q=0.5", True), ("br;q=1.0, gzip;q=0.8, *;q=0.1", True), ("x-gzip", False),
])
def test_gzip_accepted_matches_prometheus_client(header: str | None, expected: bool) -> None:
    assert gzip_accepted(header) is expected
    assert pc.gzip_accepted(header or "") is expected
