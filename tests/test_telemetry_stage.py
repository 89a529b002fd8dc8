"""The trace collector: its build stages, its manifests (fixtures/telemetry), and the real binary.

The last tests run the Jaeger v2 binary of the `jaeger` stage on loopback with the ConfigMap's
own configuration and send it spans, from a plain OTLP/HTTP post and from the stand-in. They are
skipped until that stage is built (`python -m conformance.images --stage jaeger`, about 25 minutes
cold on this machine), so that the unit tests never start a build of that size.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conformance import fixtures, paths
from conformance.images import gobuild, gomod, stage, telemetry_stages
from conformance.live.evidence import traces
from conformance.live.platform import collector
from conformance.static.manifests import render
from conformance.wait import wait_until
from tests.processes import free_port, stop

PINS = fixtures.pins()
MODULE, VERSION = telemetry_stages.module_of(PINS)
CONFIG_MAP = "opentelemetry-collector-config"


def _rendered(directory: Path) -> dict[tuple[str, str], dict]:
    docs = yaml.safe_load_all(render(directory))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


OBJECTS = _rendered(paths.FIXTURES / "telemetry")
DEPLOYMENT = OBJECTS[("Deployment", collector.NAME)]
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
CONFIG_TEXT = OBJECTS[("ConfigMap", CONFIG_MAP)]["data"]["config.yaml"]
CONFIG = yaml.safe_load(CONFIG_TEXT)


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


# ---- stages and pins ---------------------------------------------------------------------------------------


def test_stages_are_registered_in_the_telemetry_group():
    """`jaeger` builds the binary, `telemetry-images` the image from it; both in group telemetry."""
    assert stage.REGISTRY["jaeger"].group == "telemetry"
    assert stage.REGISTRY["telemetry-images"].group == "telemetry"
    assert stage.REGISTRY["telemetry-images"].deps == ("jaeger",)


def test_image_refs_and_pull_image_name_the_same_release():
    """Our image and upstream's carry the v2 release that matches the pinned module version."""
    release = telemetry_stages.release(PINS)
    assert re.fullmatch(r"v2\.\d+\.\d+", release), release
    assert telemetry_stages.image_refs(PINS) == {"collector": f"cortex.local/jaeger:{release[1:]}"}
    assert telemetry_stages.pull_image(PINS).endswith(f"/jaegertracing/jaeger:{release[1:]}")
    assert f"-X {MODULE}/internal/version.latestVersion={release}" in telemetry_stages.version_ldflags(PINS)


def test_inputs_change_with_the_pins():
    """A new module version or release is a new cache key for the build."""
    jaeger = stage.REGISTRY["jaeger"]
    ctx = stage.Context(pins=PINS)
    bumped = stage.Context(pins={**PINS, "telemetry": {**PINS["telemetry"], "jaeger_module": f"{MODULE}@v1.77.0"}})
    assert jaeger.inputs(ctx)["module"] == f"{MODULE}@{VERSION}"
    assert jaeger.inputs(ctx) != jaeger.inputs(bumped)


def _module_file(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file of the pinned jaeger module, from the Go module cache (downloaded from the proxy once)."""
    try:
        module = gobuild.download(MODULE, VERSION, log=tmp_path_factory.mktemp("gomod") / "download.log")
    except gobuild.GoBuildError as err:
        pytest.skip(f"the Go module proxy did not serve {MODULE}@{VERSION}: {err}")
    return (module.dir / name) if name != "go.mod" else module.gomod


def test_release_pin_matches_the_modules_changelog(tmp_path_factory):
    """jaeger_version is the v2 release the module's own CHANGELOG pairs with the module version."""
    heading = f"{VERSION} / {telemetry_stages.release(PINS)} ("
    changelog = _module_file("CHANGELOG.md", tmp_path_factory).read_text()
    assert heading in changelog, f"CHANGELOG.md has no heading {heading!r}"


def test_wrapper_restates_the_sarama_replace(tmp_path_factory):
    """go install refuses the module for its replace; the wrapper go.mod restates it and builds cmd/jaeger."""
    upstream = _module_file("go.mod", tmp_path_factory).read_text()
    text = gomod.wrapper(MODULE, VERSION, upstream, tools=[f"{MODULE}/cmd/jaeger"])
    assert "github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0" in text
    assert f"\t{MODULE}/cmd/jaeger" in text


def test_version_variable_exists_in_the_module(tmp_path_factory):
    """The -X target of version_ldflags is a real variable: a renamed one would be silently ignored."""
    source = _module_file("internal/version/build.go", tmp_path_factory).read_text()
    assert re.search(r"^\s*latestVersion\s+string", source, re.MULTILINE)


# ---- the manifests (fixtures/telemetry) --------------------------------------------------------------------


def test_service_is_the_mesh_providers_address():
    """The Service is the host and port istiod's otel-tracing provider names (fixtures/istio/istiod.yaml)."""
    mesh = yaml.safe_load((paths.FIXTURES / "istio" / "istiod.yaml").read_text())["meshConfig"]
    (provider,) = [p for p in mesh["extensionProviders"] if p["name"] == "otel-tracing"]
    service = OBJECTS[("Service", collector.NAME)]
    assert provider["opentelemetry"]["service"] == f"{collector.NAME}.{collector.NAMESPACE}.svc.cluster.local"
    assert service["metadata"]["namespace"] == collector.NAMESPACE
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc-otlp"]["port"] == provider["opentelemetry"]["port"] == collector.OTLP_GRPC_PORT
    assert (ports["grpc-otlp"]["appProtocol"], ports["http-otlp"]["appProtocol"]) == ("grpc", "http")
    assert ports["http-otlp"]["port"] == collector.OTLP_HTTP_PORT
    assert ports["http-query"]["port"] == collector.QUERY_PORT
    assert service["spec"]["selector"].items() <= DEPLOYMENT["spec"]["template"]["metadata"]["labels"].items()


def test_namespace_is_restricted_and_outside_the_mesh():
    """Pod Security restricted is enforced; no sidecar is injected into the collector."""
    labels = OBJECTS[("Namespace", collector.NAMESPACE)]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["istio-injection"] == "disabled"
    assert DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"


def test_pod_meets_restricted_with_requests_and_limits():
    """Non-root UID, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root."""
    assert POD["securityContext"]["runAsNonRoot"] is True
    assert POD["securityContext"]["runAsUser"] == telemetry_stages.JAEGER_UID
    assert POD["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert POD["automountServiceAccountToken"] is False
    sc = CONTAINER["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(CONTAINER["resources"]["requests"]) == set(CONTAINER["resources"]["limits"]) == {"cpu", "memory"}
    assert DEPLOYMENT["spec"]["replicas"] == 1, "in-memory storage: a second replica would split the traces"


def test_gomemlimit_is_below_the_memory_limit():
    """Go collects before the kernel kills: GOMEMLIMIT sits under the container's memory limit."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

    def size(text: str) -> int:
        number, unit = re.fullmatch(r"(\d+)([KMG]iB?)", text).groups()
        return int(number) * units[unit]

    env = {e["name"]: e["value"] for e in CONTAINER["env"]}
    assert size(env["GOMEMLIMIT"]) < size(CONTAINER["resources"]["limits"]["memory"])


def test_config_comes_from_the_config_map_and_probes_use_its_health_port():
    """The config file is the mounted ConfigMap; readiness and liveness hit the health extension."""
    mounts = {m["name"]: m for m in CONTAINER["volumeMounts"]}
    volumes = {v["name"]: v for v in POD["volumes"]}
    config_mount = next(m for m in mounts.values() if volumes[m["name"]].get("configMap", {}).get("name") == CONFIG_MAP)
    assert CONTAINER["args"] == [f"--config={config_mount['mountPath']}/config.yaml"]
    assert "command" not in CONTAINER, "the entrypoint of both images (ours and upstream's) must stay"
    assert CONTAINER["image"] == f"{collector.PLACEHOLDER_IMAGE}:placeholder"
    health = CONFIG["extensions"]["healthcheckv2"]["http"]
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert CONTAINER[probe]["httpGet"]["path"] == health["status"]["path"]
        assert ports[CONTAINER[probe]["httpGet"]["port"]] == _port(health["endpoint"])


def test_config_ports_match_the_container_ports():
    """Every listener of the config is a declared container port of the same number."""
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    otlp = CONFIG["receivers"]["otlp"]["protocols"]
    assert _port(otlp["grpc"]["endpoint"]) == ports["grpc-otlp"] == collector.OTLP_GRPC_PORT
    assert _port(otlp["http"]["endpoint"]) == ports["http-otlp"] == collector.OTLP_HTTP_PORT
    assert _port(CONFIG["extensions"]["jaeger_query"]["http"]["endpoint"]) == ports["http-query"]


def test_config_bounds_the_store_and_does_not_trace_itself():
    """max_traces bounds memory (and the client's search limit); the query API makes no traces of its own."""
    assert CONFIG["extensions"]["jaeger_storage"]["backends"]["memstore"]["memory"]["max_traces"] == \
        collector.MAX_TRACES
    assert CONFIG["extensions"]["jaeger_query"]["enable_tracing"] is False
    assert CONFIG["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    batch = CONFIG["processors"]["batch"]["timeout"]
    assert re.fullmatch(r"\d+ms", batch), f"batch timeout {batch} is not in milliseconds"
    assert int(batch[:-2]) <= 500, f"batch timeout {batch} delays every trace"


@pytest.mark.parametrize("image", ["cortex.local/jaeger:2.13.0", "docker.io/jaegertracing/jaeger:2.13.0"])
def test_install_kustomization_replaces_the_placeholder(tmp_path, image):
    """The run's kustomization (as install writes it) puts the run's image into the Deployment."""
    objects = _rendered(collector.write_kustomization(tmp_path, image))
    (container,) = objects[("Deployment", collector.NAME)]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image
    assert {k for k, _ in objects} == {k for k, _ in OBJECTS}


# ---- the real binary on loopback ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jaeger_binary() -> Path:
    entry = stage.cached(["jaeger"]).get("jaeger")
    if entry is None:
        pytest.skip("the jaeger stage is not built for these pins: `python -m conformance.images --stage jaeger`")
    return entry.path / entry.result["files"]["jaeger"]


@dataclass
class Collector:
    otlp_http: int
    query: int
    health: int
    log: Path

    @property
    def traces_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http}/v1/traces"


@pytest.fixture
def local_collector(jaeger_binary: Path, tmp_path: Path) -> Iterator[Collector]:
    """Jaeger with the ConfigMap's config, every listener moved to a free loopback port."""
    text = CONFIG_TEXT
    moved = {}
    for port in (4317, 4318, 16686, 16685, 13133):
        moved[port] = free_port()
        text = text.replace(f":{port}\"", f":{moved[port]}\"")
    text = text.replace("port: 8888", f"port: {free_port()}")
    config = tmp_path / "config.yaml"
    config.write_text(text)
    log = tmp_path / "jaeger.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(jaeger_binary), f"--config={config}"], stdout=out, stderr=subprocess.STDOUT,
                                env={"PATH": os.environ.get("PATH", ""), "JAEGER_LISTEN_HOST": "127.0.0.1",
                                     "HOME": str(tmp_path)})
    running = Collector(otlp_http=moved[4318], query=moved[16686], health=moved[13133], log=log)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{running.health}/status", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    try:
        wait_until("jaeger on loopback to report healthy", healthy, timeout=60, interval=0.2,
                   fail=lambda: proc.poll() is not None and f"it exited {proc.returncode}: {log.read_text()[-800:]}")
        yield running
    finally:
        stop(proc)


def test_binary_reports_the_release(jaeger_binary: Path):
    """`jaeger version` says the v2 release the image is tagged with."""
    out = subprocess.run([str(jaeger_binary), "version"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1])["gitVersion"] == telemetry_stages.release(PINS)


def _post_span(url: str, trace_id: str, span_id: str, parent: str | None, service: str) -> None:
    span = {"traceId": trace_id, "spanId": span_id, "name": "GET /v1/models?access_token=abc", "kind": 2,
            "startTimeUnixNano": "1796170606649344000", "endTimeUnixNano": "1796170606673475000",
            "attributes": [{"key": "http.status_code", "value": {"stringValue": "401"}},
                           {"key": "http.url", "value": {"stringValue": "http://gw/v1/models?access_token=abc"}}]}
    if parent:
        span["parentSpanId"] = parent
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"spans": [span]}]}]}
    request = urllib.request.Request(url, data=json.dumps(body).encode(),  # noqa: S310 - loopback
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
        assert resp.status == 200


def test_collector_config_accepts_otlp_and_answers_api_v3(local_collector: Collector):
    """With the ConfigMap's config, an OTLP/HTTP span is queryable by trace ID through api/v3, parsed by traces."""
    trace_id, root, child = os.urandom(16).hex(), os.urandom(8).hex(), os.urandom(8).hex()
    _post_span(local_collector.traces_url, trace_id, root, None, "istio-ingressgateway.istio-ingress")
    _post_span(local_collector.traces_url, trace_id, child, root, "cortex-api.cortex-dev")
    jaeger = collector.Jaeger(None, base_url=f"http://127.0.0.1:{local_collector.query}")
    spans = jaeger.wait_for_trace(trace_id, lambda s: len(s) == 2, timeout=20, what="both spans")
    assert {(s.service, s.parent_span_id) for s in spans} == {("istio-ingressgateway.istio-ingress", None),
                                                              ("cortex-api.cortex-dev", root)}
    assert {s.status_code for s in spans} == {401}
    assert jaeger.trace(os.urandom(16).hex()) == []
    assert "access_token" not in json.dumps(traces.span_tree_evidence(spans))
    assert "cortex-api.cortex-dev" in jaeger.services()
    assert "jaeger" not in jaeger.services(), "the query API traced itself: enable_tracing is not off"


def test_standin_spans_reach_jaeger(local_collector: Collector, tmp_path: Path):
    """The stand-in's OTLP/HTTP JSON export is accepted by the real collector, in the caller's trace."""
    from tests.test_standin import PodPorts, _chat, _traceparent, container_env, running

    entry = stage.run(["standin-binary"])["standin-binary"].entry
    binary = entry.path / entry.result["files"]["standin"]
    pod_ports = PodPorts()
    traceparent, trace_id, parent = _traceparent()
    env = {**container_env("cortex-api", pod_ports), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": local_collector.traces_url}
    with running(binary, "cortex-api", tmp_path, env):
        status, answer = _chat(pod_ports, {"traceparent": traceparent})
        assert status == 200
        jaeger = collector.Jaeger(None, base_url=f"http://127.0.0.1:{local_collector.query}")
        (span,) = jaeger.wait_for_trace(trace_id, bool, timeout=20, what="the stand-in's span")
    assert (span.service, span.kind, span.name) == ("cortex-api", "server", "POST /v1/chat/completions")
    assert span.parent_span_id == parent
    assert span.span_id == answer["standin"]["trace"]["span_id"]
    assert span.status_code == 200
    assert span.attributes["http.route"] == "/v1/chat/completions"
