"""MTLS: STRICT mutual TLS for the workload, no downgrade, sidecars injected.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance import fixtures
from conformance.live.evidence import judge, observe
from conformance.live.evidence import traffic as probe
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


@static
@pytest.mark.control("MTLS-03")
def test_outbound_captured(bundle):
    """MTLS-03: no pod annotation sends all outbound traffic, or every port, around the sidecar."""
    holds(mtls.outbound_captured(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live
MTLS = observe.expectations()["mtls"]


def _api_url(port: int, path: str) -> str:
    spec = fixtures.workload()
    return f"http://{spec.name}.{spec.namespace}.svc.cluster.local:{port}{path}"


@live
@pytest.mark.control("MTLS-01")
@pytest.mark.parametrize("client", MTLS["plaintext_clients"], ids=[c["name"] for c in MTLS["plaintext_clients"]])
def test_plaintext_client_gets_no_answer(live, ready_api_pods, evidence, client):
    """MTLS-01: a client without a sidecar, admitted by the NetworkPolicy, gets no answer from cortex-api."""
    result = probe.curl_in_pod(live.kube, client["namespace"], client["pod"], _api_url(client["port"], client["path"]))
    evidence.append(result.evidence())
    where = f"{fixtures.workload().ref('Service')} port {client['port']} from {client['namespace']}/{client['pod']}"
    holds(judge.plaintext_refused(where, result.status, result.exit_code, MTLS["plaintext_exit_codes"],
                                  result.note, errored=bool(result.error)))


@live
@pytest.mark.control("MTLS-02")
def test_mesh_traffic_keeps_mutual_tls(live, ready_api_pods, evidence):
    """MTLS-02: mesh traffic to cortex-api is not downgraded: 200, and cortex-api sees the SPIFFE identity."""
    client = MTLS["mesh_client"]
    valid = live.workload.tokens.case("valid")
    result = probe.curl_in_pod(live.kube, client["namespace"], client["pod"],
                               _api_url(8080, observe.expectations()["gateway"]["models_path"]),
                               headers=valid.headers, what="the valid token")
    evidence.append(result.evidence())
    service = fixtures.workload().ref("Service")
    if result.status != 200:
        pytest.fail(f"{service} port 8080: the mesh client {client['namespace']}/{client['pod']} got "
                    f"{result.answered()}, expected 200 over Istio mTLS "
                    "(a DestinationRule that disables or replaces ISTIO_MUTUAL ends here)", pytrace=False)
    if f"URI={client['spiffe']}" not in result.body:
        pytest.fail(f"{fixtures.workload().ref('Deployment')}: X-Forwarded-Client-Cert does not carry "
                    f"URI={client['spiffe']}; the request did not arrive over Istio mTLS from the mesh client",
                    pytrace=False)


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
