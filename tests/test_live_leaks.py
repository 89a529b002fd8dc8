"""TEL-05's searches of the telemetry sinks: each names the place a credential landed and never the credential."""

from __future__ import annotations

from conformance.live.evidence import leaks

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjb25mb3JtYW5jZSIsImp0aSI6IjEyMyJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1oZXJl"
FRAGS = leaks.fragments({"the valid token": TOKEN, "no token": None})


def _trace(attributes, *, events=(), resource=()):
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "cortex-api.cortex-dev.svc.cluster.local:8080/*",
            "attributes": attributes, "events": list(events)}
    return {"result": {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cortex-api.cortex-dev"}},
                                    *resource]},
        "scopeSpans": [{"spans": [span]}]}]}}


def _kv(key, value):
    return {"key": key, "value": {"stringValue": value}}


def test_fragments_are_the_token_and_its_parts():
    assert set(FRAGS) == {"the valid token", "the valid token (its signature)",
                          "the valid token (its header and claims)"}


def test_a_span_tag_with_the_bearer_header_is_named_by_its_key():
    places = leaks.in_traces(_trace([_kv("http.method", "GET"), _kv("authorization", f"Bearer {TOKEN}")]), FRAGS)
    assert places
    assert all("field attributes[authorization]" in p and "cortex-api.cortex-dev" in p for p in places)
    assert not any(TOKEN.split(".")[2] in p for p in places), "a place must never hold the token"


def test_a_truncated_token_in_an_event_is_found_by_its_claims():
    event = {"name": "request", "attributes": [_kv("header", TOKEN[:70])]}
    places = leaks.in_traces(_trace([], events=[event]), FRAGS)
    assert places == [p for p in places if "events[0].attributes[header]" in p]
    assert any("header and claims" in p for p in places)


def test_a_resource_attribute_is_a_sink_too():
    places = leaks.in_traces(_trace([], resource=[_kv("env.token", TOKEN)]), FRAGS)
    assert any(p.startswith("the resource of service cortex-api.cortex-dev") for p in places)


def test_clean_spans_and_unknown_shapes_hold_nothing():
    clean = _trace([_kv("http.url", "https://api/v1/models"), _kv("upstream_cluster", "x")])
    assert leaks.in_traces(clean, FRAGS) == []
    assert leaks.in_traces({"error": {"message": "not found"}}, FRAGS) == []


def test_log_lines_name_their_source():
    lines = [("cortex-dev/cortex-api-1/istio-proxy", "GET /v1/models 200"),
             ("istio-ingress/gw-1/istio-proxy", f'"GET /v1/models" authorization="Bearer {TOKEN}"')]
    places = leaks.in_lines(lines, FRAGS)
    assert places
    assert all(p.startswith("the log of istio-ingress/gw-1/istio-proxy") for p in places)


def test_metric_label_is_named_with_its_series():
    text = ("# TYPE istio_requests_total counter\n"
            f'istio_requests_total{{reporter="destination",auth="Bearer {TOKEN}"}} 3\n'
            'istio_requests_total{reporter="source"} 1\n')
    places = leaks.in_metrics(text, FRAGS, "the merged metrics")
    assert places
    assert all("series istio_requests_total label auth" in p for p in places)
    assert leaks.in_metrics('up{job="x"} 1\n', FRAGS, "the merged metrics") == []
