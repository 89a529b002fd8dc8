"""Jaeger api/v3 answers read into spans, trees and report evidence (conformance.live.evidence.traces).

The data are real answers of Jaeger v2 (github.com/jaegertracing/jaeger v1.76.0) to traces that
upstream Envoy 1.40, set up as an Istio gateway and sidecar, exported: tests/data/traces/.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from conformance.errors import WaitTimeout
from conformance.live.evidence import traces
from conformance.live.platform import collector
from conformance.report import spans as report_spans

DATA = Path(__file__).parent / "data" / "traces"
GATEWAY = "istio-ingressgateway.istio-ingress"
SIDECAR = "cortex-api.cortex-dev"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.fixture
def trace() -> list[traces.Span]:
    return traces.parse(load("v3-get-trace.json"))


def test_trace_by_id_yields_gateway_and_sidecar_spans(trace):
    """The three hops of a request through the gateway: gateway server, gateway client, sidecar server."""
    assert {s.trace_id for s in trace} == {"5277f22180b61ed147eadab923f46d83"}
    assert [(s.service, s.kind, s.name) for s in trace] == [
        (GATEWAY, "server", "cortex-api.cortex-dev.svc.cluster.local:8080/v1/*"),
        (GATEWAY, "client", "router sidecar_inbound egress"),
        (SIDECAR, "server", "cortex-api.cortex-dev.svc.cluster.local:8080/*"),
    ]
    assert all(s.status_code == 200 for s in trace)
    assert not any(s.error for s in trace)


def test_parent_links_are_kept_and_jaeger_warnings_dropped(trace):
    """parentSpanId becomes parent_span_id; Jaeger's own @jaeger@warnings attribute is not an attribute."""
    gateway_server, gateway_client, sidecar = trace
    assert gateway_client.parent_span_id == gateway_server.span_id
    assert sidecar.parent_span_id == gateway_client.span_id
    # The client's traceparent named a span that was never exported: Jaeger warned about it.
    assert gateway_server.parent_span_id == "447fa08f2a0c67bf"
    assert "@jaeger@warnings" in json.dumps(load("v3-get-trace.json"))
    assert not any(k.startswith("@jaeger@") for s in trace for k in s.attributes)
    assert traces.ancestors(trace, sidecar) == [gateway_client, gateway_server]


def test_tree_nests_by_parent_and_keeps_an_orphan_as_root(trace):
    """The gateway's server span is a root although its parent (the client's) is not in the store."""
    roots = traces.tree(trace)
    assert [n.span.name for n in roots] == ["cortex-api.cortex-dev.svc.cluster.local:8080/v1/*"]
    assert [(d, s.kind, s.service) for d, s in traces.walk(roots)] == [
        (0, "server", GATEWAY), (1, "client", GATEWAY), (2, "server", SIDECAR)]


def test_search_answer_is_split_into_traces():
    """A search answers every trace in one resourceSpans list; by_trace groups them by trace ID."""
    found = traces.by_trace(traces.parse(load("v3-find.json")))
    assert len(found) == 2
    for group in found:
        assert len({s.trace_id for s in group}) == 1
        assert sorted(s.service for s in group) == sorted([GATEWAY, GATEWAY, SIDECAR])
    # One of them started at the gateway: its root has no parentSpanId at all.
    assert any(s.is_root for group in found for s in group)


def test_status_code_is_an_int_or_none():
    """Envoy sends http.status_code as a string; a span without one has None, never 0 or ''."""
    doc = load("v3-get-trace.json")
    client = doc["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    client["attributes"] = [a for a in client["attributes"] if a["key"] != "http.status_code"]
    codes = {s.span_id: s.status_code for s in traces.parse(doc)}
    assert codes.pop(client["spanId"]) is None
    assert set(codes.values()) == {200}


def test_other_sdks_value_types_and_kind_names():
    """An OTLP exporter that sends ints, bools and enum names (not Envoy) is read the same way."""
    doc = {"result": {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cortex-api"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "AB" * 16, "spanId": "CD" * 8, "parentSpanId": "", "name": "POST /v1/chat/completions",
            "kind": "SPAN_KIND_SERVER", "status": {"code": 2},
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "503"}},
                           {"key": "retry", "value": {"boolValue": True}},
                           {"key": "hops", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}]}]}]}]}}
    (span,) = traces.parse(doc)
    assert (span.trace_id, span.parent_span_id, span.kind) == ("ab" * 16, None, "server")
    assert (span.status_code, span.error) == (503, True)
    assert span.attributes["retry"] == "true"
    assert json.loads(span.attributes["hops"]) == ["a"]


def test_an_error_answer_is_not_mistaken_for_an_empty_trace():
    """Jaeger's {"error": ...} body is a format error for the parser; the client maps 404 to empty first."""
    with pytest.raises(traces.TraceFormatError):
        traces.parse(load("v3-not-found.json"))


# ---- evidence --------------------------------------------------------------------------------------------


def test_evidence_has_the_shape_the_report_renders(trace):
    """span_tree_evidence gives the dicts conformance.report.spans walks, parents first."""
    evidence = traces.span_tree_evidence(trace)
    assert [set(item) for item in evidence] == [
        {"span_id", "parent_span_id", "service", "name", "kind", "status_code", "attributes"}] * 3
    assert [s["span_id"] for _d, s in report_spans.walk(evidence)] == [s["span_id"] for s in evidence]
    text = report_spans.text_tree(evidence)
    assert text.splitlines()[2].startswith("   └─ cortex-api.cortex-dev  cortex-api.cortex-dev.svc")
    json.dumps(evidence)  # it goes into the results JSON as it is


def test_query_string_tokens_never_reach_the_evidence():
    """Envoy records http.url with its query string: ?access_token=... must not reach the report."""
    raw = load("v3-token-in-url.json")
    assert "SECRET-QUERY-TOKEN" in json.dumps(raw), "the sample lost the case it tests"
    spans = traces.parse(raw)
    assert any("access_token=" in s.attributes.get("http.url", "") for s in spans)
    evidence = traces.span_tree_evidence(spans)
    assert "SECRET-QUERY-TOKEN" not in json.dumps(evidence)
    urls = {s["attributes"]["http.url"] for s in evidence if "http.url" in s["attributes"]}
    assert urls == {"http://127.0.0.1:10001/v1/models"}


@pytest.mark.parametrize("key", ["http.request.header.authorization", "Authorization", "x-vault-token",
                                 "http.request.header.cookie", "access_token", "set-cookie"])
def test_credential_bearing_attributes_are_dropped(trace, key):
    """An attribute whose name says authorization, token or cookie is left out, whatever it holds."""
    span = trace[0]
    leaky = dataclasses.replace(span, attributes={**span.attributes, key: "Bearer eyJhbGciOi.payload.sig"})
    (item, *_rest) = traces.span_tree_evidence([leaky])
    assert key not in item["attributes"]
    assert "eyJhbGciOi" not in json.dumps(item)


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("url.full", "https://api.example.com/v1/models?key=abc#frag", "https://api.example.com/v1/models"),
    ("http.target", "/v1/models?access_token=abc", "/v1/models"),
    ("upstream_path", "/v1/chat?id_token=abc", "/v1/chat"),
    ("url.query", "access_token=abc", None),
    ("request_line", "GET /v1/models?access_token=abc HTTP/1.1", "GET /v1/models HTTP/1.1"),
    ("http.protocol", "HTTP/1.1", "HTTP/1.1"),
    ("peer.address", "10.0.0.1:8080", "10.0.0.1:8080"),
])
def test_urls_lose_query_and_fragment(key, value, shown):
    """Every URL-like value is shown without its query; a bare query attribute is dropped."""
    assert traces.redact_attributes({key: value}).get(key) == shown


def test_span_names_lose_query_strings_too(trace):
    """A span named after the request line ("GET /path?query") is shown without the query."""
    named = dataclasses.replace(trace[0], name="GET /v1/models?access_token=abc")
    (item,) = traces.span_tree_evidence([named])
    assert item["name"] == "GET /v1/models"


def test_a_loop_of_parent_links_keeps_every_span():
    """Spans whose parents point at each other are still all in the evidence, once each."""
    a = traces.Span("t", "a", "b", "svc", "x", "server", None)
    b = traces.Span("t", "b", "a", "svc", "y", "server", None, start_ns=1)
    assert sorted(s["span_id"] for s in traces.span_tree_evidence([a, b])) == ["a", "b"]


# ---- the query client against a recorded Jaeger -------------------------------------------------------


class _Recorded(http.server.BaseHTTPRequestHandler):
    """Jaeger's api/v3 as recorded: the known trace, 404 for any other, the find answer for a search."""

    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        if self.path == "/api/v3/traces/5277f22180b61ed147eadab923f46d83":
            self._send(200, load("v3-get-trace.json"))
        elif self.path.startswith("/api/v3/traces/"):
            self._send(404, load("v3-not-found.json"))
        elif self.path.startswith("/api/v3/traces?"):
            self._send(200, load("v3-find.json"))
        elif self.path == "/api/v3/services":
            self._send(200, {"services": [SIDECAR, GATEWAY]})
        else:
            self._send(500, {"error": {"httpCode": 500, "message": "search depth must be greater than 0"}})

    def _send(self, status: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def jaeger() -> Iterator[collector.Jaeger]:
    _Recorded.paths = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield collector.Jaeger(None, base_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


def test_client_reads_a_trace_and_maps_404_to_empty(jaeger):
    """trace() parses a known trace and answers [] for an unknown one (Jaeger's 404)."""
    assert len(jaeger.trace("5277F22180B61ED147EADAB923F46D83")) == 3
    assert jaeger.trace("0" * 31 + "1") == []


def test_client_search_sends_the_parameters_jaeger_requires(jaeger):
    """v3 search needs start_time_min/max (RFC 3339) and 0 < num_traces < max_traces."""
    until = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
    found = jaeger.search(SIDECAR, until - timedelta(minutes=5), until, 5)
    assert [len(t) for t in found] == [3, 3]
    query = _Recorded.paths[-1].split("?", 1)[1]
    assert "query.service_name=cortex-api.cortex-dev" in query
    assert "query.start_time_max=2026-12-01T12%3A00%3A00.123456Z" in query
    assert "query.num_traces=5" in query
    with pytest.raises(ValueError, match="limit"):
        jaeger.search(SIDECAR, until, until, collector.MAX_TRACES)
    with pytest.raises(ValueError, match="aware"):
        jaeger.search(SIDECAR, datetime(2026, 1, 1), until, 5)


def test_wait_for_trace_returns_when_the_predicate_holds(jaeger):
    """wait_for_trace polls until the spans satisfy the predicate."""
    spans = jaeger.wait_for_trace("5277f22180b61ed147eadab923f46d83",
                                  lambda s: any(x.service == SIDECAR for x in s), timeout=5, what="a sidecar span")
    assert len(spans) == 3


def test_wait_for_trace_names_what_it_waited_for_and_what_it_saw(jaeger):
    """A timeout names the trace, the condition and the spans that did arrive."""
    with pytest.raises(WaitTimeout) as err:
        jaeger.wait_for_trace("5277f22180b61ed147eadab923f46d83", lambda s: len(s) > 3, timeout=0.3,
                              what="a fourth span", interval=0.1)
    message = str(err.value)
    assert "trace 5277f22180b61ed147eadab923f46d83" in message
    assert "a fourth span" in message
    assert "router sidecar_inbound egress" in message
    with pytest.raises(WaitTimeout, match="no span at all"):
        jaeger.wait_for_trace("f" * 32, bool, timeout=0.2, interval=0.1)


def test_services(jaeger):
    """services() lists what the collector has seen."""
    assert jaeger.services() == sorted([SIDECAR, GATEWAY])


# ---- install -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "fields"), [
    ("cortex.local/jaeger:2.13.0", {"newName": "cortex.local/jaeger", "newTag": "2.13.0"}),
    ("docker.io/jaegertracing/jaeger:2.13.0", {"newName": "docker.io/jaegertracing/jaeger", "newTag": "2.13.0"}),
    ("localhost:5000/jaeger", {"newName": "localhost:5000/jaeger"}),
    ("localhost:5000/jaeger:1@sha256:" + "a" * 64,
     {"newName": "localhost:5000/jaeger", "newTag": "1", "digest": "sha256:" + "a" * 64}),
], ids=["ours", "upstream", "registry-port", "digest"])
def test_image_fields(ref, fields):
    """An image reference becomes kustomize's newName/newTag/digest; a registry port is not a tag."""
    assert collector.image_fields(ref) == fields
