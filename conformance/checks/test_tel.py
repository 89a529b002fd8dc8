"""TEL: tracing at a bounded rate, trace context carried end to end, token-free access logs, metrics for
Prometheus only.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError, WaitTimeout
from conformance.live.evidence import judge, observe, traces
from conformance.live.evidence import traffic as probe
from conformance.plugin import holds
from conformance.plugin.together import HEAD_START, replay, together
from conformance.static.rules import telemetry
from conformance.wait import wait_until

static = pytest.mark.static


@static
@pytest.mark.control("TEL-01")
def test_tracing_on_at_bounded_rate(bundle):
    """TEL-01: a Telemetry traces cortex-api through the expected provider at a rate within the bounds."""
    holds(telemetry.tracing_on_at_bounded_rate(bundle))


@static
@pytest.mark.control("TEL-02")
def test_spans_reach_the_collector(bundle):
    """TEL-02: the application exports to the collector and the pod's egress lets the spans out."""
    holds(telemetry.spans_reach_the_collector(bundle))


@static
@pytest.mark.control("TEL-03")
def test_access_logs_without_tokens(bundle):
    """TEL-03: access logging is on for cortex-api through a provider whose format leaves out tokens."""
    holds(telemetry.access_logs_without_tokens(bundle))


@static
@pytest.mark.control("TEL-03")
def test_no_credentials_in_telemetry(bundle):
    """TEL-03: no Telemetry copies a credential header into span tags or metric labels."""
    holds(telemetry.no_credentials_in_telemetry(bundle))


@static
@pytest.mark.control("TEL-04")
def test_metrics_for_prometheus_only(bundle):
    """TEL-04: exporter-merger merges the sidecar's statistics and only Prometheus may read them."""
    holds(telemetry.metrics_for_prometheus_only(bundle))


# --- live: a real collector (Jaeger v2) receives the spans; the proxies' logs are read back ---------------

live = pytest.mark.live
TEL = fixtures.expectations("telemetry")
SERVICES = TEL["tracing"]["services"]
BODY = '{"model": "cortex-small", "messages": [{"role": "user", "content": "traced"}]}'


def _ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def _traced_request(live, gateway, *, token: bool = True, parent: tuple[str, str] | None = None,
                    path: str | None = None):
    """One request the client asks to trace (x-client-trace-id), optionally inside a trace it started."""
    headers = {"x-client-trace-id": str(uuid.uuid4())}
    if parent is not None:
        headers["traceparent"] = f"00-{parent[0]}-{parent[1]}-01"
    if token:
        headers.update(live.workload.tokens.case("valid").headers)
    route = path or observe.expectations()["gateway"]["api_path"]
    return gateway.request(route, method="POST", data=BODY, headers=headers,
                           what="a traceparent and the valid token" if token else "a traceparent, no token")


def _spans(live, trace_id: str, predicate, what: str) -> list[traces.Span]:
    from conformance.live.platform.collector import Jaeger

    try:
        with Jaeger(live.kube) as jaeger:
            return jaeger.wait_for_trace(trace_id, predicate, TEL["tracing"]["arrive_within_seconds"], what=what)
    except ConformanceError as exc:
        pytest.fail(f"Trace {trace_id}: {exc}", pytrace=False)


def _one(spans: list[traces.Span], service: str, kind: str) -> traces.Span | None:
    found = traces.find(spans, service=service, kind=kind)
    return found[0] if found else None


def _chain_gaps(spans: list[traces.Span], trace_id: str, client_span: str | None) -> list[str]:
    """gateway server -> gateway client -> sidecar server -> application: each the parent of the next."""
    by_id = {s.span_id: s for s in spans}
    gateway, sidecar = SERVICES["gateway"], SERVICES["sidecar"]
    gw_server = _one(spans, gateway, "server")
    gw_client = next((s for s in traces.find(spans, service=gateway, kind="client")
                      if gw_server and s.parent_span_id == gw_server.span_id), None)
    server = _one(spans, sidecar, "server")
    app = next(iter(traces.find(spans, service=SERVICES["app"])), None)
    gaps = []
    if gw_server is None:
        gaps.append(f"Trace {trace_id}: no server span of the gateway ({gateway})")
    elif client_span is not None and gw_server.parent_span_id != client_span:
        gaps.append(f"Trace {trace_id}: the gateway's span has parent {gw_server.parent_span_id}, not the client's "
                    f"span {client_span}: the gateway restarted the trace")
    elif client_span is None and not gw_server.is_root:
        gaps.append(f"Trace {trace_id}: without a traceparent the gateway's span should start the trace, but it "
                    f"has parent {gw_server.parent_span_id}")
    if gw_server is not None and gw_client is None:
        gaps.append(f"Trace {trace_id}: no client span of the gateway under its server span (the call to cortex-api)")
    if server is None:
        gaps.append(f"Trace {trace_id}: no server span of cortex-api's sidecar ({sidecar}): the context was dropped "
                    "between the gateway and the sidecar")
    elif gw_client is not None and server.parent_span_id != gw_client.span_id:
        parent = by_id.get(server.parent_span_id or "")
        gaps.append(f"Trace {trace_id}: the sidecar's span has parent {server.parent_span_id} "
                    f"({parent.service if parent else 'not in the trace'}), not the gateway's client span")
    if server is not None and app is None:
        gaps.append(f"Trace {trace_id}: no span of the application ({SERVICES['app']}): cortex-api dropped or "
                    "restarted the trace context it received")
    elif server is not None and app is not None and app.parent_span_id != server.span_id:
        gaps.append(f"Trace {trace_id}: the application's span has parent {app.parent_span_id}, not the sidecar's "
                    "span: the context did not reach the application intact")
    return gaps


def _full_chain(spans: list[traces.Span]) -> bool:
    return bool(traces.find(spans, service=SERVICES["gateway"], kind="server")
                and traces.find(spans, service=SERVICES["sidecar"], kind="server")
                and traces.find(spans, service=SERVICES["app"]))


def _sampling(live, gateway, evidence):
    """TEL-01: of requests reaching cortex-api with no trace decision, its sidecar traces a share within bounds."""
    from conformance.live.platform.collector import Jaeger

    tracing = TEL["tracing"]
    count, window, promised = tracing["unforced_requests"], tracing["traced_window"], tracing["expected_percent"]
    client = observe.expectations()["mtls"]["mesh_client"]
    marker = secrets.token_hex(8)
    spec = fixtures.workload()
    url = (f"http://{spec.name}.{spec.namespace}.svc.cluster.local:8080"
           f"{observe.expectations()['gateway']['models_path']}?conformance-sampling={marker}")
    since = datetime.now(UTC) - timedelta(seconds=5)
    # The mesh client's proxy has no tracing provider and decides nothing (the platform's telemetry), so
    # cortex-api's sidecar heads these traces and its own rate decides.
    answered = probe.curl_many_in_pod(live.kube, client["namespace"], client["pod"], url, count,
                                      headers=live.workload.tokens.case("valid").headers)
    # The window is proven for exactly `count` draws (telemetry.yaml): fewer answered requests are a
    # sample the window does not hold for, so the rate cannot be judged.
    if answered.get(200, 0) != count:
        pytest.fail(f"{spec.ref('Service')}: only {answered.get(200, 0)} of {count} requests from "
                    f"{client['namespace']}/{client['pod']} got 200 ({answered}); the sampling cannot be judged",
                    pytrace=False)
    floor, ceiling = window["min"], window["max"]

    def ours(found: list[list[traces.Span]]) -> set[str]:
        return {s.trace_id for trace in found for s in trace if s.service == SERVICES["sidecar"]
                and s.kind == "server" and marker in s.attributes.get("http.url", "")}

    traced: set[str] = set()
    try:
        with Jaeger(live.kube) as jaeger:
            # Spans flush within a second; read twice, so a late batch still counts.
            for _ in range(2):
                time.sleep(2)
                traced = ours(jaeger.search(SERVICES["sidecar"], since, datetime.now(UTC) + timedelta(seconds=5),
                                            limit=min(2 * count, 1000)))
    except ConformanceError as exc:
        pytest.fail(f"the collector could not be asked for the sampled traces: {exc}", pytrace=False)
    evidence.append({"note": f"{count} requests with no trace decision; {len(traced)} traced by "
                             f"{SERVICES['sidecar']} (promised {promised} %: {floor} to {ceiling} of {count} "
                             f"accepted, a binomial window that rejects {tracing['reject_percent']['below']} % and "
                             f"{tracing['reject_percent']['above']} % at {tracing['confidence']:.1%})"})
    if len(traced) < floor:
        pytest.fail(f"{spec.ref('Deployment')}: {len(traced)} of {count} requests it headed were traced, fewer than "
                    f"the {floor} a {promised} % rate gives but once in 10^4: sampled far below the promise, off, "
                    "or the spans never reach the collector", pytrace=False)
    if len(traced) > ceiling:
        pytest.fail(f"{spec.ref('Deployment')}: {len(traced)} of {count} requests it headed were traced, more than "
                    f"the {ceiling} a {promised} % rate gives but once in 10^4: sampled far above the promise",
                    pytrace=False)


def _chain(live, gateway, evidence):
    """TEL-02: a traced request keeps its trace through the gateway, the sidecar and the application, in order."""
    trace_id, span_id = _ids()
    result = _traced_request(live, gateway, parent=(trace_id, span_id))
    evidence.append(result.evidence())
    if result.status != 200:
        pytest.fail(f"{fixtures.workload().ref('Gateway')}: the traced request got "
                    f"{judge.answered(result.status, result.exit_code)}, expected 200", pytrace=False)
    spans = _spans(live, trace_id, _full_chain, "the gateway's, the sidecar's and the application's spans")
    evidence.append({"note": f"trace {trace_id}: {len(spans)} span(s)", "trace_id": trace_id,
                     "span_tree": traces.span_tree_evidence(spans)})
    gaps = _chain_gaps(spans, trace_id, span_id)
    server = _one(spans, SERVICES["sidecar"], "server")
    if server is not None and server.status_code != 200:
        gaps.append(f"Trace {trace_id}: the sidecar's span records status {server.status_code}, not 200")
    gateway_span = _one(spans, SERVICES["gateway"], "server")
    route_host = f"{fixtures.workload().name}.{fixtures.workload().namespace}.svc.cluster.local"
    if gateway_span is not None and route_host not in gateway_span.name + gateway_span.attributes.get(
            "upstream_cluster", ""):
        gaps.append(f"Trace {trace_id}: the gateway's span does not name the route to {route_host} "
                    f"(name {gateway_span.name!r})")
    holds(gaps)


def _refused(live, gateway, evidence):
    """TEL-02: a request refused for its token (403) is traced too, with its status, from the gateway to the sidecar."""
    trace_id, span_id = _ids()
    result = _traced_request(live, gateway, token=False, parent=(trace_id, span_id))
    evidence.append(result.evidence())
    spans = _spans(live, trace_id, lambda s: bool(traces.find(s, service=SERVICES["sidecar"], kind="server")),
                   "the sidecar's span of the refused request")
    evidence.append({"trace_id": trace_id, "span_tree": traces.span_tree_evidence(spans)})
    server = _one(spans, SERVICES["sidecar"], "server")
    gaps = [g for g in _chain_gaps(spans, trace_id, span_id) if "application" not in g]
    if server is not None and server.status_code not in (401, 403):
        gaps.append(f"Trace {trace_id}: the refused request's sidecar span records status {server.status_code}, "
                    "not the refusal")
    holds(gaps)


def _untraced(live, gateway, evidence):
    """TEL-02: without a traceparent the gateway starts the trace, and the sidecar and application continue it."""
    result = _traced_request(live, gateway)
    evidence.append(result.evidence())
    try:
        received = json.loads(result.body)["standin"]["traceparent"]
        trace_id = received.split("-")[1]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        pytest.fail(f"{fixtures.workload().ref('Deployment')}: the application received no traceparent "
                    f"({judge.answered(result.status, result.exit_code)}): the mesh did not start a trace",
                    pytrace=False)
    spans = _spans(live, trace_id, _full_chain, "the gateway's, the sidecar's and the application's spans")
    evidence.append({"trace_id": trace_id, "span_tree": traces.span_tree_evidence(spans)})
    holds(_chain_gaps(spans, trace_id, None))


def _proxy_logs(live, since_seconds: int) -> list[tuple[str, str]]:
    """(where, line) of the gateway's and cortex-api's sidecars' recent access logs."""
    spec = fixtures.workload()
    lines = []
    for namespace, selector, container in ((spec.gateway.namespace, ",".join(f"{k}={v}" for k, v in
                                                                            spec.gateway.labels.items()), None),
                                           (spec.namespace, spec.selector, "istio-proxy")):
        pods = live.kube.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        for pod in pods:
            name = pod["metadata"]["name"]
            args = ["logs", name, "-n", namespace, f"--since={since_seconds}s"]
            args += ["-c", container] if container else []
            found = live.kube.run(*args, check=False, timeout=60)
            lines += [(f"{namespace}/{name}", line) for line in found.stdout.splitlines()]
    return lines


def _access_log(live, gateway, evidence):
    """TEL-03: the gateway's and the sidecar's access logs record the request and its status, never its tokens."""
    trace_id, span_id = _ids()
    canary = f"eyJhbGciOiJIUzI1NiJ9.{secrets.token_urlsafe(24)}.{secrets.token_urlsafe(16)}"
    # A token of this request's own: the run's shared valid token is in earlier requests' lines too, and a
    # line an earlier request left (a fault's, say) is not this request's. (tokens needs PyJWT, which the
    # static tier's venv does not have.)
    from conformance.live.evidence import tokens

    valid = tokens.mint(live.workload.signing_keys, jti=uuid.uuid4().hex).case("valid")
    bearer = valid.headers["Authorization"].split(" ", 1)[1]
    path = f"{observe.expectations()['gateway']['models_path']}?access_token={canary}"
    result = gateway.request(path, headers={**valid.headers, "traceparent": f"00-{trace_id}-{span_id}-01",
                                            "x-client-trace-id": str(uuid.uuid4())},
                             what="the valid token, and a canary token in the query")
    evidence.append(result.evidence())
    bound = TEL["access_logging"]["appear_within_seconds"]
    logged: dict[str, list[str]] = {}

    def both_logged() -> bool:
        logged.clear()
        for where, line in _proxy_logs(live, bound + 60):
            if trace_id in line or canary in line or bearer in line:
                logged.setdefault(where.split("/")[0], []).append(line)
        return len(logged) >= 2

    try:
        wait_until(f"access log lines of the request (trace {trace_id}) from the gateway and the sidecar",
                   both_logged, timeout=bound, interval=2)
    except WaitTimeout as exc:
        holds([f"{fixtures.workload().ref('Deployment')}: {exc}; found lines in "
               f"{', '.join(sorted(logged)) or 'neither'}"])
    gaps = []
    for namespace, lines in sorted(logged.items()):
        for line in lines:
            if bearer in line or canary in line or "Bearer " in line:
                gaps.append(f"Access log of {namespace}: a line of the request carries a token (trace {trace_id})")
            elif str(result.status or "") not in line.split():
                gaps.append(f"Access log of {namespace}: the line of the request does not record its status "
                            f"{result.status}")
    evidence.append({"note": f"{sum(len(v) for v in logged.values())} access log line(s) of trace {trace_id} in "
                             f"{', '.join(sorted(logged))}; tokens checked absent (values never printed)"})
    holds(sorted(set(gaps)))


def _scrape(live, client: dict[str, str]):
    spec = fixtures.workload()
    metrics = TEL["metrics"]
    url = f"http://{spec.name}.{spec.namespace}.svc.cluster.local:{metrics['port']}{metrics['path']}"
    return probe.curl_in_pod(live.kube, client["namespace"], client["pod"], url, timeout=10)


def _scraped(live, gateway, evidence):
    """TEL-04: Prometheus's identity scrapes the merged metrics: the application's and the mesh's request metrics."""
    metrics = TEL["metrics"]
    result = _scrape(live, metrics["scraper"])
    names = sorted({line.split("{")[0].split()[0] for line in result.body.splitlines()
                    if line and not line.startswith("#")})
    evidence.append({**result.evidence(), "note": f"{len(names)} metric names", "metrics": names[:200]})
    where = f"{fixtures.workload().ref('Service')} port {metrics['port']}"
    if result.status != 200:
        pytest.fail(f"{where}: Prometheus's identity got {result.answered()}, "
                    "expected 200", pytrace=False)
    wanted = [*metrics["app_metrics"], *metrics["mesh_request_metrics"][live.images.source]]
    missing = [m for m in wanted if m not in names]
    holds([f"{where}: the merged metrics lack {m}" for m in missing])


def _refused_metrics(live, gateway, evidence):
    """TEL-04: a mesh identity other than Prometheus's, admitted by the NetworkPolicy, gets no metrics."""
    metrics = TEL["metrics"]
    result = _scrape(live, metrics["impostor"])
    evidence.append(result.evidence())
    if result.status == 200 or (result.status is None and result.exit_code == 0):
        pytest.fail(f"{fixtures.workload().ref('Service')} port {metrics['port']}: identity "
                    f"{metrics['impostor']['namespace']}/{metrics['impostor']['pod']} read the metrics "
                    f"(HTTP {result.status})", pytrace=False)
    if result.status != 403:
        pytest.fail(f"{fixtures.workload().ref('Service')} port {metrics['port']}: the other identity got "
                    f"{result.answered()}, not the mesh's refusal 403: the probe "
                    "never reached the AuthorizationPolicy", pytrace=False)


def _raw(jaeger, path: str, params: dict[str, str] | None = None):
    """An api/v3 answer as the collector holds it, every field (the parsed Span keeps only attributes)."""
    import urllib.parse
    import urllib.request

    url = f"{jaeger.base_url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback port-forward
        return json.loads(answer.read())


def _pod_logs(live, namespace: str, selector: str, since_seconds: int) -> list[tuple[str, str]]:
    """(namespace/pod/container, line) of every container of the selected pods: access logs and the rest."""
    lines = []
    for pod in live.kube.json("get", "pods", "-n", namespace, "-l", selector)["items"]:
        name = pod["metadata"]["name"]
        found = live.kube.run("logs", name, "-n", namespace, "--all-containers", "--prefix",
                              f"--since={since_seconds}s", check=False, timeout=60)
        for line in found.stdout.splitlines():
            source, _, text = line.partition(" ")
            lines.append((f"{namespace}/{source.strip('[]').removeprefix('pod/') or name}", text))
    return lines


def _both_servers(spans: list[traces.Span]) -> bool:
    return bool(traces.find(spans, service=SERVICES["gateway"], kind="server")
                and traces.find(spans, service=SERVICES["sidecar"], kind="server"))


def _credentials(live, gateway, evidence):
    """TEL-05: tokens sent to cortex-api land in no span, no log line and no metric label."""
    from conformance.live.evidence import leaks, tokens
    from conformance.live.platform.collector import Jaeger, rfc3339
    from conformance.live.platform.push import GATEWAY_SELECTOR

    spec = fixtures.workload()
    # Tokens of this check's own (a jti): a place that holds one of them holds what this check sent.
    minted = tokens.mint(live.workload.signing_keys, jti=uuid.uuid4().hex)
    sent = {name: minted.case(name) for name in TEL["credentials"]["cases"]}
    frags = leaks.fragments({f"the {name} token": case.token for name, case in sent.items()})
    since = datetime.now(UTC) - timedelta(seconds=5)
    started = time.monotonic()
    trace_ids = []
    for name, case in sent.items():
        trace_id, span_id = _ids()
        result = gateway.request(observe.expectations()["gateway"]["models_path"],
                                 headers={**case.headers, "traceparent": f"00-{trace_id}-{span_id}-01",
                                          "x-client-trace-id": str(uuid.uuid4())}, what=f"the {name} token")
        evidence.append(result.evidence())
        if result.status != case.status:
            pytest.fail(f"{spec.ref('Gateway')}: the {name} token got {judge.answered(result.status, result.exit_code)}"
                        f", not {case.status}: the request did not take the path whose sinks are checked",
                        pytrace=False)
        trace_ids.append(trace_id)
    places: list[str] = []
    # Spans: each request's whole trace, then every recent trace of the services, every field.
    try:
        with Jaeger(live.kube) as jaeger:
            for trace_id in trace_ids:
                jaeger.wait_for_trace(trace_id, _both_servers, TEL["tracing"]["arrive_within_seconds"],
                                      what="the gateway's and the sidecar's server spans")
                places += leaks.in_traces(_raw(jaeger, f"/api/v3/traces/{trace_id}"), frags)
            for service in SERVICES.values():
                places += leaks.in_traces(_raw(jaeger, "/api/v3/traces", {
                    "query.service_name": service, "query.start_time_min": rfc3339(since),
                    "query.start_time_max": rfc3339(datetime.now(UTC) + timedelta(seconds=5)),
                    "query.num_traces": "50"}), frags)
    except (ConformanceError, OSError, ValueError) as exc:
        pytest.fail(f"the trace sink could not be searched for the tokens: {exc}", pytrace=False)
    # Logs: every container of the gateway's and cortex-api's pods (access logs included), once both logged
    # the requests, so that a sink that was not read is not taken for a clean one.
    # The gateway's own pods: the conformance clients in its namespace copy its istio=ingressgateway label.
    gateway_selector = GATEWAY_SELECTOR
    lines: list[tuple[str, str]] = []

    def logged() -> bool:
        lines[:] = (_pod_logs(live, spec.gateway.namespace, gateway_selector, int(time.monotonic() - started) + 60)
                    + _pod_logs(live, spec.namespace, spec.selector, int(time.monotonic() - started) + 60))
        return all(any(t in line and where.startswith(ns) for where, line in lines for t in trace_ids)
                   for ns in (spec.gateway.namespace, spec.namespace))

    try:
        wait_until(f"log lines of traces {', '.join(trace_ids)} from the gateway and cortex-api",
                   logged, timeout=TEL["access_logging"]["appear_within_seconds"], interval=2)
    except WaitTimeout as exc:
        pytest.fail(f"the log sink could not be checked: {exc}", pytrace=False)
    places += leaks.in_lines(lines, frags)
    # Metrics: what Prometheus scrapes from cortex-api (the application's and its sidecar's, merged), and the
    # gateway's own statistics.
    scraped = _scrape(live, TEL["metrics"]["scraper"])
    if scraped.status != 200:
        pytest.fail(f"the metrics sink could not be read: Prometheus's identity got "
                    f"{judge.answered(scraped.status, scraped.exit_code)} from {spec.ref('Service')}", pytrace=False)
    places += leaks.in_metrics(scraped.body, frags, f"the merged metrics of {spec.ref('Service')}")
    for pod in live.kube.json("get", "pods", "-n", spec.gateway.namespace, "-l", gateway_selector)["items"]:
        where = f"{spec.gateway.namespace}/{pod['metadata']['name']}"
        stats = probe.pod_exec(live.kube, spec.gateway.namespace, pod["metadata"]["name"],
                               ["pilot-agent", "request", "GET", "stats/prometheus"], container="istio-proxy",
                               timeout=60)
        if stats.returncode != 0 or not stats.stdout.strip():
            pytest.fail(f"the metrics sink of the gateway {where} could not be read: "
                        f"{(stats.stderr or 'no output').strip()[-200:]}", pytrace=False)
        places += leaks.in_metrics(stats.stdout, frags, f"the statistics of the gateway {where}")
    evidence.append({"note": f"tokens {', '.join(sent)} (values never printed) searched for in {len(trace_ids)} "
                             f"traces and the recent traces of {', '.join(SERVICES.values())}, {len(lines)} log "
                             "lines, the merged metrics and the gateway's statistics"})
    holds(sorted(set(f"Telemetry sink {p}" for p in places)))


@HEAD_START.observation("TEL")
def _observe(live, gateway):
    """Every TEL check's requests, waits for spans and log lines, and scrapes, made at once: begun as soon
    as the environment is up (they only send requests of their own and read), while other checks run."""
    if not any(observe.is_ready(p) for p in observe.api_pods(live.kube)):
        pytest.fail(f"{fixtures.workload().ref('Deployment')}: no Ready pod, so nothing could be observed",
                    pytrace=False)
    bodies = {"sampling": _sampling, "chain": _chain, "refused": _refused, "untraced": _untraced,
              "access_log": _access_log, "scraped": _scraped, "refused_metrics": _refused_metrics,
              "credentials": _credentials}
    return together({name: (lambda e, body=body: body(live, gateway, e)) for name, body in bodies.items()})


@pytest.fixture(scope="module")
def observed(live, gateway):
    """What _observe saw (its head start, or made now)."""
    return HEAD_START.result("TEL", live, gateway)


@live
@pytest.mark.control("TEL-01")
def test_requests_it_heads_are_sampled_within_bounds(observed, evidence):
    """TEL-01: of requests reaching cortex-api with no trace decision, its sidecar traces a share within bounds."""
    replay(observed["sampling"], evidence)


@live
@pytest.mark.control("TEL-02")
def test_trace_context_runs_into_the_application(observed, evidence):
    """TEL-02: a traced request keeps its trace through the gateway, the sidecar and the application, in order."""
    replay(observed["chain"], evidence)


@live
@pytest.mark.control("TEL-02")
def test_refused_request_is_traced(observed, evidence):
    """TEL-02: a request refused for its token (403) is traced too, with its status, from the gateway to the sidecar."""
    replay(observed["refused"], evidence)


@live
@pytest.mark.control("TEL-02")
def test_untraced_client_starts_a_trace_at_the_gateway(observed, evidence):
    """TEL-02: without a traceparent the gateway starts the trace, and the sidecar and application continue it."""
    replay(observed["untraced"], evidence)


@live
@pytest.mark.control("TEL-03")
def test_access_logs_carry_the_request_not_the_token(observed, evidence):
    """TEL-03: the gateway's and the sidecar's access logs record the request and its status, never its tokens."""
    replay(observed["access_log"], evidence)


@live
@pytest.mark.control("TEL-04")
def test_prometheus_scrapes_mesh_and_app_metrics(observed, evidence):
    """TEL-04: Prometheus's identity scrapes the merged metrics: the application's and the mesh's request metrics."""
    replay(observed["scraped"], evidence)


@live
@pytest.mark.control("TEL-04")
def test_other_identity_refused_the_metrics(observed, evidence):
    """TEL-04: a mesh identity other than Prometheus's, admitted by the NetworkPolicy, gets no metrics."""
    replay(observed["refused_metrics"], evidence)


@live
@pytest.mark.control("TEL-05")
def test_no_credential_reaches_a_telemetry_sink(observed, evidence):
    """TEL-05: tokens sent to cortex-api land in no span (tags, events, resource), no log line and no metric label."""
    replay(observed["credentials"], evidence)
