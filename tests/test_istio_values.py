"""The Istio install as helm renders it from the module's charts and fixtures/istio/, for both sources.

Real helm (built at the version istio's go.mod requires) and the real charts of the pinned istio
module; skipped until `python -m conformance.images --stage istio-charts` has built them.
"""

from __future__ import annotations

import json

import pytest
import yaml

from conformance import fixtures
from conformance.errors import PreflightError
from conformance.images.istio_stages import image_refs
from conformance.live.platform import istio
from conformance.static.manifests import parse, pod_template_of, selector_matches

ISTIO = fixtures.pins()["istio"]
UPSTREAM_ONLY_FILTERS = ("PILOT_ENABLE_ALPN_FILTER", "PILOT_ENABLE_METADATA_EXCHANGE")


@pytest.fixture(scope="module")
def tools():
    try:
        return istio.built_tools()
    except PreflightError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def rendered(tools):
    return {source: parse(istio.render(source, tools=tools), f"istio {source}") for source in istio.SOURCES}


def _one(objects, kind, name):
    found = [o for o in objects if o.kind == kind and o.name == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _env(objects) -> dict[str, str]:
    pod = pod_template_of(_one(objects, "Deployment", "istiod"))
    container = next(c for c in pod.containers() if c.name == "discovery")
    return {e["name"]: e.get("value") for e in container.spec.get("env") or []}


def _mesh(objects) -> dict:
    return yaml.safe_load(_one(objects, "ConfigMap", "istio").doc["data"]["mesh"])


def _injector_values(objects) -> dict:
    return json.loads(_one(objects, "ConfigMap", "istio-sidecar-injector").doc["data"]["values"])


def test_build_istiod_leaves_out_istio_only_filters(rendered):
    """With upstream Envoy, istiod must not send the ALPN and metadata-exchange filters."""
    env = _env(rendered["build"])
    for name in UPSTREAM_ONLY_FILTERS:
        assert env.get(name) == "false", f"istiod (images: build) has {name}={env.get(name)!r}, needs 'false'"


def test_build_turns_off_telemetry_and_sniffing(rendered):
    """No istio.stats filter (no default metrics provider) and no protocol sniffing with upstream Envoy."""
    mesh = _mesh(rendered["build"])
    providers = mesh.get("defaultProviders") or {}
    assert "metrics" not in providers, f"mesh defaultProviders: {providers}"
    env = _env(rendered["build"])
    for direction in ("INBOUND", "OUTBOUND"):
        assert env.get(f"PILOT_ENABLE_PROTOCOL_SNIFFING_FOR_{direction}") == "false"


def test_pull_keeps_upstream_defaults(rendered):
    """Upstream's own images keep Istio's filters and Prometheus telemetry: nothing is turned off."""
    env = _env(rendered["pull"])
    assert not any(name in env for name in UPSTREAM_ONLY_FILTERS), f"istiod (images: pull) env: {env}"
    assert (_mesh(rendered["pull"]).get("defaultProviders") or {}).get("metrics") == ["prometheus"]


def test_sources_render_the_same_objects(rendered):
    """`pull` is a values difference, not a second install: both render the same set of objects."""
    def keys(objects):
        return sorted((o.kind, o.namespace or "", o.name) for o in objects)

    assert keys(rendered["build"]) == keys(rendered["pull"])


@pytest.mark.parametrize("source", istio.SOURCES)
def test_injection_uses_istio_cni(rendered, source):
    """The injector's values enable CNI, so injected pods get istio-validation and never istio-init."""
    values = _injector_values(rendered[source])
    cni = values["pilot"]["cni"]
    assert cni["enabled"] is True, f"injector values (images: {source}): pilot.cni {cni}"
    assert _one(rendered[source], "DaemonSet", "istio-cni-node").namespace == istio.SYSTEM_NAMESPACE


@pytest.mark.parametrize("source", istio.SOURCES)
def test_mesh_defines_every_tracing_provider_the_overlay_names(rendered, dev_bundle, source):
    """Each Telemetry provider of the dev overlay is an OpenTelemetry extension provider of the mesh."""
    providers = {p["name"]: p for p in _mesh(rendered[source]).get("extensionProviders") or []}
    named = {p["name"] for t in dev_bundle.of_kind("Telemetry") for tr in t.spec.get("tracing") or []
             for p in tr.get("providers") or []}
    assert named, "the dev overlay's Telemetry names no tracing provider"
    for name in named:
        assert name in providers, f"mesh config lacks extension provider {name} (has {sorted(providers)})"
        otel = providers[name].get("opentelemetry") or {}
        assert otel.get("service"), f"provider {name} is not an OpenTelemetry collector: {otel}"
        assert otel.get("port"), f"provider {name} names no collector port: {otel}"


@pytest.mark.parametrize("source", istio.SOURCES)
def test_gateway_pods_are_the_ones_the_overlay_selects(rendered, dev_bundle, source):
    """The gateway runs in istio-ingress as ServiceAccount istio-ingressgateway with the overlay's selector."""
    deployment = _one(rendered[source], "Deployment", istio.GATEWAY_RELEASE)
    assert deployment.namespace == istio.GATEWAY_NAMESPACE
    pod = pod_template_of(deployment)
    assert pod.spec.get("serviceAccountName") == "istio-ingressgateway"
    for gateway in dev_bundle.of_kind("Gateway"):
        selector = gateway.spec.get("selector") or {}
        assert selector_matches(selector, pod.labels), f"{gateway.ref} selector {selector} misses {pod.labels}"
    service = _one(rendered[source], "Service", istio.GATEWAY_RELEASE)
    # Clients in istio-ingress carry istio: ingressgateway to pass the NetworkPolicy; the Service
    # must also select on app, or they would become its endpoints.
    assert service.spec["selector"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    node_ports = {p["name"]: p.get("nodePort") for p in service.spec["ports"]}
    assert node_ports["http2"] == istio.GATEWAY_NODE_PORTS["http"]
    assert node_ports["https"] == istio.GATEWAY_NODE_PORTS["https"]


def test_build_runs_our_images(rendered):
    """images: build runs only images this suite built, and injects our upstream-Envoy proxy."""
    refs = image_refs(fixtures.pins())
    objects = rendered["build"]
    images = {c.spec["image"] for o in objects if (pod := pod_template_of(o)) for c in pod.containers()}
    assert images == {refs["istiod"], refs["istio-cni"], "auto"}, f"images: {images}"
    injected = _injector_values(objects)["global"]
    # Both: istio-proxy and the istio-validation init container of Istio CNI.
    assert injected["proxy"]["image"] == refs["istio-proxy"]
    assert injected["proxy_init"]["image"] == refs["istio-proxy"]


def test_pull_runs_the_pinned_release(rendered):
    """images: pull runs upstream's images of the pinned release from the pinned hub."""
    objects = rendered["pull"]
    images = {c.spec["image"] for o in objects if (pod := pod_template_of(o)) for c in pod.containers()}
    expected = {f"{ISTIO['pull_hub']}/{name}:{ISTIO['pull_tag']}" for name in ("pilot", "install-cni")}
    assert images == expected | {"auto"}, f"images: {images}"
