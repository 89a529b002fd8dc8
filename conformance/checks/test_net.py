"""NET: default deny, the expected flow matrix, narrow ingress and egress.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance import fixtures, paths
from conformance.errors import WaitTimeout
from conformance.live.evidence import judge, observe
from conformance.live.evidence import traffic as probe
from conformance.paths import OVERLAYS
from conformance.plugin import holds
from conformance.plugin.together import HEAD_START
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


@static
@pytest.mark.control("NET-05")
def test_mesh_egress_not_widened(bundle):
    """NET-05: no Sidecar lets the workloads' proxies reach any destination, no ServiceEntry a whole suffix."""
    holds(network.mesh_egress_not_widened(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live
DNS_NAME = "kubernetes.default.svc.cluster.local"


def _canary_probe(live) -> probe.Result:
    server = live.kube.json("get", "pod", "canary-server", "-n", "conformance-canary")["status"]["podIP"]
    return probe.standin_probe(live.kube, "conformance-canary", "canary-client", "tcp", f"{server}:8080")


def _canary(live) -> tuple[probe.Result, probe.Result]:
    """(outcome before, outcome after) a deny policy, between two pods of a namespace of their own (the
    workload phase started them with the rest, so they are usually Ready by now)."""
    kube = live.kube
    try:
        kube.wait("the canary pods to be Ready", "--for=condition=Ready", "pods", "--all", "-n", "conformance-canary",
                  timeout=180, evidence=live.evidence_dir, namespace="conformance-canary")
        before = _canary_probe(live)
        kube.apply((paths.FIXTURES / "canary" / "deny.yaml").read_text(), what="the canary's deny policy")
        try:
            # Only a blocked outcome ends the wait: an errored probe observed nothing and is not the deny working.
            after = wait_until("the canary's deny policy to take effect",
                               lambda: judge.flow((r := _canary_probe(live)).outcome) is False and r,
                               # kube-router programs a new policy on its watch event: 1 to 2 s measured
                               # in every baseline here; 15 s is margin for a loaded machine, not a poll.
                               timeout=15, interval=1)
        except WaitTimeout:
            after = _canary_probe(live)
        return before, after
    finally:
        # The pods stay for the next run in this environment (the fault catalogue's); only the deny goes.
        kube.run("delete", "-f", str(paths.FIXTURES / "canary" / "deny.yaml"), "--ignore-not-found", check=False)


@HEAD_START.observation("NET")
def _observe(live, gateway) -> dict[str, tuple[object, BaseException | None]]:
    """The canary's deny, then every cell of the matrix: begun as soon as the environment is up (probes of
    their own, nothing changed outside the canary's namespace), while other checks run. Each part keeps
    its own outcome, so a canary that cannot be judged does not take the matrix with it."""
    observed: dict[str, tuple[object, BaseException | None]] = {}
    for part, make in (("canary", _canary), ("matrix", _matrix)):
        try:
            observed[part] = (make(live), None)
        except Exception as exc:  # noqa: BLE001 - raised again by the part's fixture, as its checks' error
            observed[part] = (None, exc)
    return observed


@pytest.fixture(scope="module")
def net_observed(live, gateway):
    """What _observe saw (its head start, or made now)."""
    return HEAD_START.result("NET", live, gateway)


def _part(observed, part: str):
    value, error = observed[part]
    if error is not None:
        raise error
    return value


@pytest.fixture(scope="module")
def canary(net_observed) -> tuple[probe.Result, probe.Result]:
    return _part(net_observed, "canary")


@live
@pytest.mark.control("NET-01")
def test_cni_enforces_deny(canary, evidence):
    """NET-01: the CNI enforces a deny: a connection that worked fails once a deny policy selects the server."""
    before, after = canary
    evidence += [before.evidence(), after.evidence()]
    holds(_canary_gaps(canary))


def _canary_gaps(canary: tuple[probe.Result, probe.Result]) -> list[str]:
    before, after = canary
    return judge.canary_gaps("NetworkPolicy conformance-canary/canary-deny", before.outcome, before.note,
                             after.outcome, after.note)


def _pod_for(kube, group: netmodel.Group, *, client: bool) -> dict | None:
    selector = ",".join(f"{k}={v}" for k, v in group.labels.items())
    if client:
        selector += ",app.kubernetes.io/part-of=cortex-conformance"
    pods = kube.json("get", "pods", "-n", group.namespace, "-l", selector)["items"]
    pods = [p for p in pods if observe.is_ready(p)
            and (not client or (p["metadata"].get("labels") or {}).get("sidecar.istio.io/inject") != "true")]
    return pods[0] if pods else None


def _probe_row(kube, pod: dict, workload: bool, cells: list[netmodel.Cell], targets: dict[str, str]) -> list:
    """Every cell of one source in one exec per container: TCP from the pod (or, for the workload, from its
    sidecar, whose UID Istio does not capture, so the pod's policy is measured and not Envoy accepting
    every outbound connection), DNS from the application container."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    tcp = [c for c in cells if c.port.protocol == "TCP"]
    udp = [c for c in cells if c.port.protocol == "UDP"]
    results: dict[netmodel.Cell, probe.Result] = {}
    if tcp and workload:
        found = probe.bash_tcp_batch(kube, namespace, name, "istio-proxy",
                                     [(targets[c.destination], c.port.number) for c in tcp])
        results.update(zip(tcp, found, strict=True))
    elif tcp:
        found = probe.standin_batch(kube, namespace, name, [{"kind": "tcp", "target": f"{targets[c.destination]}:"
                                                                                      f"{c.port.number}"} for c in tcp])
        results.update(zip(tcp, found, strict=True))
    if udp:
        found = probe.standin_batch(kube, namespace, name,
                                    [{"kind": "dns", "target": DNS_NAME, "server": f"{targets[c.destination]}:53"}
                                     for c in udp], container=fixtures.workload().name if workload else None)
        results.update(zip(udp, found, strict=True))
    return [(c, results[c]) for c in cells]


@pytest.fixture(scope="module")
def live_matrix(net_observed) -> list[judge.Cell]:
    return _part(net_observed, "matrix")


def _matrix(live) -> list[judge.Cell]:
    """Every cell of the expectation matrix, probed from a pod of the source group where one can be."""
    bundle = load_overlay(OVERLAYS / "dev")
    model = network.model(bundle)
    # Only the address blocks live.yaml names are left to the static tier: a block added to network.yaml
    # later is a hole in the live evidence until someone says why no probe can stand in for it.
    unprobed = observe.expectations()["network_unprobed"]
    platform = observe.expectations()["network_unprobed_sources"]
    kube = live.kube
    sources: dict[str, tuple[dict, bool] | str] = {}
    targets: dict[str, str] = {}
    for name, group in model.groups.items():
        if not group.is_pod:
            sources[name] = (f"{judge.DELIBERATELY_UNPROBED} {unprobed[name]}" if name in unprobed
                             else f"address block {name} has no pod and live.yaml gives no reason to leave it "
                                  "to the static tier")
            continue
        workload = "workload" in model.spec["groups"][name]
        pod = None if name in platform else _pod_for(kube, group, client=not workload)
        sources[name] = ((pod, workload) if pod else f"{judge.DELIBERATELY_UNPROBED} {platform[name]}"
                         if name in platform else f"no Ready pod in {group.namespace} with {group.labels}")
        target = _pod_for(kube, group, client=False)
        if target is not None:
            targets[name] = target["status"]["podIP"]
    rows: dict[str, list[netmodel.Cell]] = {}
    judged: list[judge.Cell] = []
    for cell in model.cells():
        source = sources[cell.source]
        reason = source if isinstance(source, str) else ""
        if not reason and cell.destination not in targets:
            destination = model.groups[cell.destination]
            reason = (f"{judge.DELIBERATELY_UNPROBED} {unprobed[cell.destination]}"
                      if not destination.is_pod and cell.destination in unprobed
                      else f"address block {cell.destination} has no pod and live.yaml gives no reason to leave "
                           "it to the static tier" if not destination.is_pod
                      else f"no Ready pod of {cell.destination} to probe")
        if reason:
            judged.append(judge.Cell(cell.source, cell.destination, str(cell.port), cell.expected, None, reason))
        else:
            rows.setdefault(cell.source, []).append(cell)
    measured = probe.in_parallel([lambda s=s, cells=cells: _probe_row(kube, *sources[s], cells, targets)
                                  for s, cells in rows.items()])
    for row in measured:
        for cell, result in row:
            # An outcome that is neither allowed nor blocked keeps the probe's error and command as its reason.
            judged.append(judge.Cell(cell.source, cell.destination, str(cell.port), cell.expected, result.outcome,
                                     "" if judge.flow(result.outcome) is not None
                                     else f"{result.note or f'exit {result.exit_code}'} ({result.command})"))
    return judged


def _record(record_matrix, cells: list[judge.Cell]) -> None:
    record_matrix("network", "live", "dev", [
        {"source": c.source, "destination": c.destination, "port": c.port, "expected": c.expected,
         "observed": c.observed, **({"note": c.why_unobserved} if c.observed is None else {})} for c in cells])


def _evidence(cells: list[judge.Cell]) -> list[dict]:
    """Every mismatch and every errored probe, then each cell the static tier alone decides, with why."""
    wrong = [{"note": f"{c.source} -> {c.destination} {c.port}: "
              + (f"outcome {c.outcome}" if c.observed is not None else c.why_unobserved)} for c in cells
             if c.outcome is not None and c.observed != c.expected]
    return wrong + [{"note": f"{judge.DELIBERATELY_UNPROBED} {line}"} for line in judge.deferred_cells(cells)]


@live
@pytest.mark.control("NET-02")
def test_probed_matrix_matches_expectations(live_matrix, canary, record_matrix, evidence):
    """NET-02: probes between client pods and services give exactly the matrix of network.yaml."""
    _record(record_matrix, live_matrix)
    if _canary_gaps(canary):
        pytest.fail("the canary did not show that the CNI enforces NetworkPolicy (see NET-01), so the probed matrix "
                    f"means nothing: {_canary_gaps(canary)[0]}", pytrace=False)
    evidence += _evidence(live_matrix)
    gaps = judge.matrix_verdict(live_matrix, "the network matrix")
    if gaps:
        cells = [netmodel.Cell(c.source, c.destination, netmodel.Port.parse(c.port), c.expected,
                               c.expected if c.observed is None else c.observed) for c in live_matrix]
        gaps.append(netmodel.render_matrix("probed matrix", cells))
    holds(gaps)


@live
@pytest.mark.control("NET-03")
def test_probed_api_ingress(live_matrix, evidence):
    """NET-03: of all probed sources, only the gateway reaches cortex-api's API port and only scraping its metrics."""
    cells = [c for c in live_matrix if c.destination == fixtures.workload().name]
    evidence += _evidence(cells)
    holds(judge.matrix_verdict(cells, "cortex-api's ingress"))


@live
@pytest.mark.control("NET-05")
def test_probed_api_egress(live_matrix, evidence):
    """NET-05: from a cortex-api pod, only DNS, istiod, Vault and Redis answer among the probed destinations.

    The internet and private-network cells are address blocks the live tier does not probe (live.yaml's
    network_unprobed says why): the evidence names each as decided by the static tier alone."""
    cells = [c for c in live_matrix if c.source == fixtures.workload().name]
    evidence += _evidence(cells)
    holds(judge.matrix_verdict(cells, "cortex-api's egress"))
