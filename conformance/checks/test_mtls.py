"""MTLS: STRICT mutual TLS for the workload, no downgrade, sidecars injected."""

import pytest

from conformance.live import observe
from conformance.live import traffic as probe
from conformance.plugin import holds
from conformance.static.rules import mtls

static = pytest.mark.static


@static
@pytest.mark.control("MTLS-01")
def test_strict_peer_authentication(bundle):
    """MTLS-01: STRICT PeerAuthentication covers every pod, with no port- or workload-level exception."""
    holds(mtls.strict_peer_authentication(bundle))


@static
@pytest.mark.control("MTLS-02")
def test_no_tls_downgrade(bundle):
    """MTLS-02: DestinationRules keep ISTIO_MUTUAL toward in-mesh hosts and never downgrade TLS."""
    holds(mtls.no_tls_downgrade(bundle))


@static
@pytest.mark.control("MTLS-03")
def test_sidecar_injected(bundle):
    """MTLS-03: injection is on for the namespace and no pod opts out."""
    holds(mtls.sidecar_injected(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live
API_URL = "http://cortex-api.cortex-dev.svc.cluster.local:{port}{path}"
PLAINTEXT_CLIENTS = {
    "gateway-namespace-8080": ("istio-ingress", "conformance-plaintext-client", 8080, "/v1/models"),
    "monitoring-9090": ("monitoring", "prometheus-plaintext", 9090, "/metrics"),
}


@live
@pytest.mark.control("MTLS-01")
@pytest.mark.parametrize("client", PLAINTEXT_CLIENTS.values(), ids=PLAINTEXT_CLIENTS.keys())
def test_plaintext_client_gets_no_answer(live, evidence, client):
    """MTLS-01: a client without a sidecar, admitted by the NetworkPolicy, gets no answer from cortex-api."""
    namespace, pod, port, path = client
    result = probe.curl_in_pod(live.kube, namespace, pod, API_URL.format(port=port, path=path))
    evidence.append(result.evidence())
    expected = observe.expectations()["mtls"]["plaintext_exit_codes"]
    if result.status is not None or result.exit_code not in expected:
        got = f"HTTP {result.status}" if result.status is not None else f"curl exit {result.exit_code}"
        pytest.fail(f"Service cortex-dev/cortex-api port {port}: plaintext from {namespace}/{pod} got {got}; "
                    f"STRICT mTLS must refuse it (curl exit {' or '.join(map(str, expected))})", pytrace=False)


@live
@pytest.mark.control("MTLS-02")
def test_mesh_client_identified_by_spiffe(live, evidence):
    """MTLS-02: a mesh client gets 200 and cortex-api sees its SPIFFE identity in X-Forwarded-Client-Cert."""
    valid = live.workload.tokens.case("valid")
    result = probe.curl_in_pod(live.kube, "istio-ingress", "conformance-mesh-client",
                               API_URL.format(port=8080, path="/v1/models"), headers=valid.headers,
                               what="the valid token")
    evidence.append(result.evidence())
    expected = observe.expectations()["mtls"]["mesh_client_spiffe"]
    if result.status != 200:
        pytest.fail(f"Service cortex-dev/cortex-api port 8080: the mesh client got "
                    f"{result.status or f'curl exit {result.exit_code}'}, expected 200", pytrace=False)
    if f"URI={expected}" not in result.body:
        pytest.fail(f"Deployment cortex-dev/cortex-api: X-Forwarded-Client-Cert does not carry URI={expected}; "
                    "the connection did not arrive over Istio mTLS", pytrace=False)


@live
@pytest.mark.control("MTLS-03")
def test_admitted_pods_have_sidecars(admitted):
    """MTLS-03: every cortex-api pod runs an istio-proxy sidecar and no istio-init container."""
    gaps = []
    for pod in admitted:
        names = [c.name for c in pod.containers()]
        if "istio-proxy" not in names:
            gaps.append(f"{pod.owner.ref}: no istio-proxy container was injected")
        if "istio-init" in names:
            gaps.append(f"{pod.owner.ref}: istio-init is injected (Istio CNI should replace it; it needs NET_ADMIN)")
    holds(gaps)
