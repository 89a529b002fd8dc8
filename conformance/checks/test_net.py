"""NET: default deny, the expected flow matrix, narrow ingress and egress."""

import pytest

from conformance import paths
from conformance.errors import WaitTimeout
from conformance.live import observe
from conformance.live import traffic as probe
from conformance.paths import OVERLAYS
from conformance.plugin import holds
from conformance.static import netmodel
from conformance.static.manifests import load_overlay
from conformance.static.rules import network
from conformance.wait import wait_until

static = pytest.mark.static


@static
@pytest.mark.control("NET-01")
def test_default_deny(bundle):
    """NET-01: every namespace denies ingress and egress by default."""
    holds(network.default_deny(bundle))


@static
@pytest.mark.control("NET-02")
def test_matrix_matches_expectations(bundle, record_matrix):
    """NET-02: the flows the policies allow equal fixtures/expectations/network.yaml."""
    record_matrix("network", "static", bundle.name, [c.as_json() for c in network.model(bundle).cells()])
    holds(network.matrix_matches_expectations(bundle))


@static
@pytest.mark.control("NET-03")
def test_api_ingress_only_from_gateway_and_scraping(bundle):
    """NET-03: no ingress rule admits cortex-api traffic around the gateway or beyond metrics scraping."""
    holds(network.api_ingress_only_from_gateway_and_scraping(bundle))


@static
@pytest.mark.control("NET-04")
def test_policies_select_pods(bundle):
    """NET-04: every NetworkPolicy with a podSelector selects pods that exist."""
    holds(network.policies_select_pods(bundle))


@static
@pytest.mark.control("NET-05")
def test_egress_only_where_needed(bundle):
    """NET-05: cortex-api egress names its destinations and ports; broad blocks only for external HTTPS."""
    holds(network.egress_only_where_needed(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live
ALLOWED_OUTCOMES = {"connected", "resolved", "nxdomain"}
DNS_NAME = "kubernetes.default.svc.cluster.local"


def _manifests(name: str, image: str) -> str:
    text = (paths.FIXTURES / "canary" / name).read_text()
    return text.replace("cortex-conformance/client:placeholder", image)


def _canary_probe(live) -> probe.Result:
    server = live.kube.json("get", "pod", "canary-server", "-n", "conformance-canary")["status"]["podIP"]
    return probe.standin_probe(live.kube, "conformance-canary", "canary-client", "tcp", f"{server}:8080")


@pytest.fixture(scope="module")
def canary(live):
    """(outcome before, outcome after) a deny policy, between two pods of a namespace of their own."""
    kube = live.kube
    kube.apply(_manifests("pods.yaml", live.images.refs["conformance-client"]), what="the NetworkPolicy canary")
    try:
        kube.wait("the canary pods to be Ready", "--for=condition=Ready", "pods", "--all", "-n", "conformance-canary",
                  timeout=180, evidence=live.evidence_dir, namespace="conformance-canary")
        before = _canary_probe(live)
        kube.apply(_manifests("deny.yaml", ""), what="the canary's deny policy")
        after = before
        try:
            after = wait_until("the canary's deny policy to take effect",
                               lambda: (r := _canary_probe(live)).outcome not in ALLOWED_OUTCOMES and r,
                               timeout=60, interval=2)
        except WaitTimeout:
            after = _canary_probe(live)
        yield before, after
    finally:
        kube.run("delete", "namespace", "conformance-canary", "--ignore-not-found", "--wait=false", check=False)


@live
@pytest.mark.control("NET-01")
def test_cni_enforces_deny(canary, evidence):
    """NET-01: the CNI enforces a deny: a connection that worked fails once a deny policy selects the server."""
    before, after = canary
    evidence += [before.evidence(), after.evidence()]
    if before.outcome != "connected":
        pytest.fail(f"Pod conformance-canary/canary-server: the canary could not connect even before any policy "
                    f"({before.outcome}); the cluster network itself is broken", pytrace=False)
    if after.outcome in ALLOWED_OUTCOMES:
        pytest.fail("NetworkPolicy conformance-canary/canary-deny: the connection still succeeds, so the CNI does not "
                    "enforce NetworkPolicy and no live network result can be trusted", pytrace=False)


def _pod_for(kube, group: netmodel.Group, *, client: bool) -> dict | None:
    selector = ",".join(f"{k}={v}" for k, v in group.labels.items())
    if client:
        selector += ",app.kubernetes.io/part-of=cortex-conformance"
    pods = kube.json("get", "pods", "-n", group.namespace, "-l", selector)["items"]
    pods = [p for p in pods if observe.is_ready(p)
            and (not client or (p["metadata"].get("labels") or {}).get("sidecar.istio.io/inject") != "true")]
    return pods[0] if pods else None


@pytest.fixture(scope="module")
def live_matrix(live, canary):
    """Every cell of the expectation matrix, probed from a pod of the source group where one can be."""
    bundle = load_overlay(OVERLAYS / "dev")
    model = network.model(bundle)
    unprobed = observe.expectations()["network_unprobed"]
    kube = live.kube
    sources: dict[str, tuple[dict, bool] | str] = {}
    targets: dict[str, str] = {}
    for name, group in model.groups.items():
        if not group.is_pod:
            sources[name] = unprobed.get(name, "an address block has no pod to probe from")
            continue
        workload = "workload" in model.spec["groups"][name]
        pod = _pod_for(kube, group, client=not workload)
        sources[name] = (pod, workload) if pod else f"no Ready client pod in {group.namespace} with {group.labels}"
        target = _pod_for(kube, group, client=False)
        if target is not None:
            targets[name] = target["status"]["podIP"]

    def measure(cell: netmodel.Cell):
        source = sources[cell.source]
        if isinstance(source, str):
            return cell, None, source
        if cell.destination not in targets:
            return cell, None, unprobed.get(cell.destination, f"no Ready pod of {cell.destination} to probe")
        pod, sidecar = source
        name, namespace, ip = pod["metadata"]["name"], pod["metadata"]["namespace"], targets[cell.destination]
        if cell.port.protocol == "UDP":
            result = probe.standin_probe(kube, namespace, name, "dns", DNS_NAME, extra=["--server", f"{ip}:53"],
                                         container="cortex-api" if sidecar else None)
        elif sidecar:
            # The sidecar's UID is exempt from Istio's capture, so this measures the pod's network
            # policy rather than Envoy accepting every outbound connection locally.
            result = probe.bash_tcp(kube, namespace, name, "istio-proxy", ip, cell.port.number)
        else:
            result = probe.standin_probe(kube, namespace, name, "tcp", f"{ip}:{cell.port.number}")
        return cell, result, ""

    cells = model.cells()
    measured = probe.in_parallel([lambda c=c: measure(c) for c in cells])
    return measured


def _judge(measured, scope=None) -> tuple[list[str], list[dict], list[str]]:
    gaps, evidence, skipped = [], [], []
    for cell, result, reason in measured:
        if scope is not None and not scope(cell):
            continue
        if result is None:
            skipped.append(f"{cell.source} -> {cell.destination} {cell.port}: {reason}")
            continue
        allowed = result.outcome in ALLOWED_OUTCOMES
        if allowed != cell.expected:
            state = "allowed but not expected" if allowed else "expected but blocked"
            gaps.append(f"NetworkPolicy flow {cell.source} -> {cell.destination} {cell.port}: {state} "
                        f"(probe outcome {result.outcome})")
            evidence.append(result.evidence())
    return gaps, evidence, skipped


@live
@pytest.mark.control("NET-02")
def test_probed_matrix_matches_expectations(live_matrix, canary, record_matrix, evidence):
    """NET-02: probes between client pods and services give exactly the matrix of network.yaml."""
    if canary[1].outcome in ALLOWED_OUTCOMES:
        pytest.fail("the CNI does not enforce NetworkPolicy (see NET-01), so the probed matrix means nothing",
                    pytrace=False)
    record_matrix("network", "live", "dev", [
        {**cell.as_json(), "observed": None if result is None else result.outcome in ALLOWED_OUTCOMES,
         **({"note": reason} if result is None else {})} for cell, result, reason in live_matrix])
    gaps, found, skipped = _judge(live_matrix)
    evidence += found + [{"note": f"not probed: {line}"} for line in skipped]
    if gaps:
        cells = [netmodel.Cell(c.source, c.destination, c.port, c.expected,
                               c.expected if r is None else r.outcome in ALLOWED_OUTCOMES) for c, r, _ in live_matrix]
        gaps.append(netmodel.render_matrix("probed matrix", cells))
    holds(gaps)


@live
@pytest.mark.control("NET-03")
def test_probed_api_ingress(live_matrix, evidence):
    """NET-03: of all probed sources, only the gateway reaches cortex-api's API port and only scraping its metrics."""
    gaps, found, _ = _judge(live_matrix, scope=lambda c: c.destination == "cortex-api")
    evidence += found
    holds(gaps)


@live
@pytest.mark.control("NET-05")
def test_probed_api_egress(live_matrix, evidence):
    """NET-05: from a cortex-api pod, only DNS, istiod, Vault and Redis answer among the probed destinations."""
    gaps, found, _ = _judge(live_matrix, scope=lambda c: c.source == "cortex-api")
    evidence += found
    holds(gaps)
