"""MTLS: STRICT mutual TLS for the workload, no downgrade, sidecars injected.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import contextlib
import secrets

import pytest

from conformance import fixtures
from conformance.errors import WaitTimeout
from conformance.live.evidence import judge, observe
from conformance.live.evidence import traffic as probe
from conformance.plugin import holds
from conformance.static.rules import mtls
from conformance.wait import wait_until

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


# The outcome of a call the receiving sidecar refused: it accepts the connection, then closes it (STRICT on plaintext,
# RBAC on another identity). A timeout or a refused connect never reached it, and an exec that failed observed nothing.
REFUSED = ("reset",)


def _workload_identity() -> str:
    spec = fixtures.workload()
    return f"spiffe://cluster.local/ns/{spec.namespace}/sa/{spec.service_account}"


def _redis_ping(live, namespace: str, pod: str, target: str, container: str | None = None) -> probe.Result:
    return probe.standin_probe(live.kube, namespace, pod, "redis", target, container=container, timeout="3s")


@live
@pytest.mark.control("MTLS-04")
@pytest.mark.parametrize("call", MTLS["outbound"], ids=[c["name"] for c in MTLS["outbound"]])
def test_outbound_call_arrives_with_workload_identity(live, ready_api_pods, evidence, call):
    """MTLS-04: each cortex-api pod's call to its dependency is answered by a receiver that admits only mTLS
    from cortex-api's SPIFFE identity, and that receiver refuses a plaintext caller and another identity."""
    identity, target = _workload_identity(), call["target"]
    gaps = []
    for pod in ready_api_pods:
        name = pod["metadata"]["name"]
        result = _redis_ping(live, pod["metadata"]["namespace"], name, target, container=call["container"])
        evidence.append(result.evidence())
        if result.outcome != "connected":
            gaps.append(f"Pod {fixtures.workload().namespace}/{name}: its call from container {call['container']} to "
                        f"{target} got no answer ({result.outcome}{f': {result.note}' if result.note else ''}); the "
                        f"receiver admits only mTLS from {identity}, so the call left without the pod's sidecar "
                        "(outbound capture excluded) or without its identity")
    # Without these the answer above would prove nothing: a receiver that admits anyone answers everyone.
    for caller in call["refused_callers"]:
        result = _redis_ping(live, caller["namespace"], caller["pod"], target)
        evidence.append(result.evidence())
        who = f"{caller['namespace']}/{caller['pod']} ({caller['name']})"
        if result.outcome == "connected":
            gaps.append(f"{target}: {who} got an answer too, so the receiving side does not admit only {identity} "
                        "and its answer to cortex-api proves no mTLS identity")
        elif result.outcome not in REFUSED:
            gaps.append(f"{target}: the refusal of {who} could not be observed ({result.outcome}"
                        f"{f': {result.note}' if result.note else ''})")
    holds(gaps)


@live
@pytest.mark.control("MTLS-04")
@pytest.mark.parametrize("call", MTLS["through_sidecar"], ids=[c["name"] for c in MTLS["through_sidecar"]])
def test_outbound_call_leaves_through_the_sidecar(live, ready_api_pods, evidence, call):
    """MTLS-04: each cortex-api pod's call to a dependency outside the mesh leaves through its sidecar, the only
    way out that can carry the workload's identity, as the sidecar's own access log of the call shows."""
    spec = fixtures.workload()
    bound = observe.expectations()["outbound_log_within_seconds"]
    gaps = []
    answered: dict[str, tuple[str, int]] = {}  # pod -> (its call's own path marker, HTTP status)
    for pod in ready_api_pods:
        name = pod["metadata"]["name"]
        # A path of this call's own: the access log leaves out the query string, not the path.
        marker = f"conformance-outbound-{secrets.token_hex(6)}"
        result = probe.standin_probe(live.kube, spec.namespace, name, "http", f"{call['url'].rstrip('/')}/{marker}",
                                     container=call["container"], timeout="5s", extra=["--method", "POST", "--data",
                                                                                       "{}"])
        evidence.append(result.evidence())
        if result.status is None:
            gaps.append(f"Pod {spec.namespace}/{name}: its call from container {call['container']} to {call['url']} "
                        f"got no HTTP answer ({result.outcome}{f': {result.note}' if result.note else ''}), so "
                        "whether it left through the sidecar could not be observed")
        else:
            answered[name] = (marker, result.status)
    logged: dict[str, list[str]] = {}

    def all_logged() -> bool:
        for name, (marker, _) in answered.items():
            found = live.kube.run("logs", name, "-n", spec.namespace, "-c", "istio-proxy", f"--since={bound + 60}s",
                                  check=False, timeout=60)
            logged[name] = [line for line in found.stdout.splitlines() if marker in line]
        return all(logged.values())

    with contextlib.suppress(WaitTimeout):  # judged below, pod by pod
        wait_until(f"the sidecars of {', '.join(answered)} to log their calls to {call['url']}", all_logged,
                   timeout=bound, interval=2)
    for name, (_, status) in answered.items():
        where, lines = f"Pod {spec.namespace}/{name}", logged.get(name) or []
        if not lines:
            gaps.append(f"{where}: its call from container {call['container']} to {call['url']} was answered (HTTP "
                        f"{status}) but its sidecar never saw it: the call left without the pod's sidecar (outbound "
                        "capture excluded), so without its identity")
        elif not any(call["upstream_cluster"] in line for line in lines):
            gaps.append(f"{where}: its sidecar sent the call to {call['url']} to another upstream than "
                        f"{call['upstream_cluster']}")
        else:
            evidence.append({"note": f"{where}: its sidecar logged the call to {call['upstream_cluster']}"})
    holds(gaps)
