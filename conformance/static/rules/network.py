"""NET: default deny, the expected flow matrix, and narrow ingress and egress for our workloads."""

from __future__ import annotations

import ipaddress
from functools import cache

from conformance import fixtures
from conformance.static import mesh, netmodel
from conformance.static.manifests import Bundle, K8sObject, PodTemplate, selector_matches
from conformance.static.rules import WORKLOADS, Needs, kinds, rule

# Destinations a pod must never reach through a broad ipBlock, with what each holds. A dual-stack or
# IPv6 cluster gives pods and Services unique-local addresses, and clouds serve instance metadata
# (and its credentials) at link-local or unique-local addresses in both families.
PRIVATE_RANGES = {ipaddress.ip_network(net): what for net, what in {
    "10.0.0.0/8": "cluster and private addresses",
    "172.16.0.0/12": "cluster and private addresses",
    "192.168.0.0/16": "cluster and private addresses",
    "100.64.0.0/10": "carrier-grade NAT and cluster addresses",
    "169.254.0.0/16": "link-local, with the metadata endpoint 169.254.169.254",
    "fc00::/7": "unique-local cluster addresses, with the metadata endpoints fd00:ec2::254 and fd20:ce::254",
    "fe80::/10": "IPv6 link-local",
    # NAT64 embeds every IPv4 address, the private ones and 169.254.169.254 included.
    "64:ff9b::/96": "NAT64, which reaches every IPv4 address including private ranges and 169.254.169.254",
}.items()}
EXTERNAL_PORTS = {443}


def expectations() -> dict:
    return fixtures.expectations("network")


@cache
def model(bundle: Bundle) -> netmodel.Model:
    return netmodel.Model(bundle, expectations())


@rule("NET-01", WORKLOADS, kinds("Namespace"))
def default_deny(bundle: Bundle) -> list[str]:
    gaps = []
    for namespace in sorted({pod.namespace for pod in bundle.pods} | {ns.name for ns in bundle.of_kind("Namespace")}):
        for direction, key in (("Ingress", "ingress"), ("Egress", "egress")):
            deny = [p for p in bundle.of_kind("NetworkPolicy")
                    if p.namespace == namespace and not (p.spec.get("podSelector") or {})
                    and direction in netmodel.policy_types(p) and not p.spec.get(key)]
            if not deny:
                gaps.append(f"Namespace {namespace}: no default-deny {direction} NetworkPolicy "
                            f"(podSelector {{}} with policyTypes {direction} and no {key} rules)")
    return gaps


@rule("NET-02", Needs("cell of the expected network matrix", lambda bundle: bool(model(bundle).cells())))
def matrix_matches_expectations(bundle: Bundle) -> list[str]:
    m = model(bundle)
    gaps = list(m.problems) + m.unknown_flows()
    cells = m.cells()
    mismatches = [c for c in cells if c.mismatch]
    for cell in mismatches:
        state = "allowed but not expected" if cell.allowed else "expected but blocked"
        gaps.append(f"NetworkPolicy flow {cell.source} -> {cell.destination} {cell.port}: {state}")
    if mismatches:
        gaps.append(netmodel.render_matrix(f"matrix of {bundle.name}", cells))
    return gaps


def own_workloads(bundle: Bundle) -> list[tuple[str, PodTemplate]]:
    """Workload groups of the expectations, resolved in the manifests."""
    found = []
    for name, raw in expectations()["groups"].items():
        if "workload" in raw:
            kind, _, workload = raw["workload"].partition("/")
            found += [(name, p) for p in bundle.pods if p.owner.kind == kind and p.owner.name == workload]
    return found


OWN_WORKLOADS = Needs("workload that fixtures/expectations/network.yaml names",
                      lambda bundle: bool(own_workloads(bundle)))


def _policies_for(bundle: Bundle, pod: PodTemplate, direction: str) -> list[K8sObject]:
    return [p for p in bundle.of_kind("NetworkPolicy") if p.namespace == pod.namespace
            and direction in netmodel.policy_types(p) and selector_matches(p.spec.get("podSelector"), pod.labels)]


def _peer_breadth(peer: dict) -> str | None:
    """What is too broad about a pod peer, or None."""
    if "ipBlock" in peer:
        return None
    ns, pods = peer.get("namespaceSelector"), peer.get("podSelector")
    if ns is not None and not ns:
        return "namespaceSelector {} admits every namespace"
    if pods is not None and not pods:
        return "podSelector {} admits every pod of the namespace"
    if ns is None:
        return "podSelector without namespaceSelector admits pods of the policy's own namespace by label alone"
    if pods is None:
        return "namespaceSelector without podSelector admits every pod of those namespaces"
    return None


@rule("NET-03", OWN_WORKLOADS)
def api_ingress_only_from_gateway_and_scraping(bundle: Bundle) -> list[str]:
    spec = expectations()
    allowed_sources = {(f["to"], f["from"], netmodel.Port.parse(f["port"])) for f in spec["allowed"]}
    groups = model(bundle).groups
    gaps = []
    for name, pod in own_workloads(bundle):
        for policy in _policies_for(bundle, pod, "Ingress"):
            for i, ingress in enumerate(policy.spec.get("ingress") or []):
                where = f"{policy.ref} ingress[{i}]"
                if not ingress.get("ports"):
                    gaps.append(f"{where}: no ports, so every port of {name} is open to its peers")
                for entry in ingress.get("ports") or []:
                    port = entry.get("port")
                    if port is not None and (pod.named_ports().get(port) if isinstance(port, str) and not
                                             port.isdigit() else int(port)) not in pod.declared_ports():
                        gaps.append(f"{where}: port {port} is not a port {pod.owner.ref} declares, so the traffic "
                                    "it means to admit is blocked")
                peers = ingress.get("from")
                if not peers:
                    gaps.append(f"{where}: no from, so every source in and outside the cluster may connect to {name}")
                    continue
                for j, peer in enumerate(peers):
                    if "ipBlock" in peer:
                        gaps.append(f"{where} from[{j}]: ipBlock {peer['ipBlock'].get('cidr')} admits addresses "
                                    "around the ingress gateway")
                        continue
                    if (breadth := _peer_breadth(peer)) is not None:
                        gaps.append(f"{where} from[{j}]: {breadth}")
                        continue
                    expected = {src for (dst, src, _port) in allowed_sources if dst == name}
                    matched = [g for g in expected if g in groups and groups[g].is_pod
                               and selector_matches(peer["namespaceSelector"], groups[g].namespace_labels)
                               and selector_matches(peer["podSelector"], groups[g].labels)]
                    if not matched:
                        gaps.append(f"{where} from[{j}]: admits pods that are neither the ingress gateway nor "
                                    f"metrics scraping (expected sources of {name}: {', '.join(sorted(expected))})")
    return gaps


def _ip_block_gap(block: dict, ports: list[dict] | None) -> str | None:
    try:
        cidr = ipaddress.ip_network(block.get("cidr", "0.0.0.0/0"), strict=False)
        excepts = [ipaddress.ip_network(e, strict=False) for e in block.get("except") or []]
    except ValueError as exc:
        return f"ipBlock {block.get('cidr')}: {exc}"
    for private, what in PRIVATE_RANGES.items():
        if private.version == cidr.version and cidr.overlaps(private) and not any(
                private.subnet_of(e) for e in excepts if e.version == private.version):
            return f"ipBlock {cidr} reaches private range {private} ({what})"
    numbers = {p.get("port") for p in ports or []}
    if not ports or not numbers <= EXTERNAL_PORTS:
        shown = ", ".join(str(n) for n in sorted(numbers, key=str)) or "every port"
        return f"ipBlock {cidr} is open on {shown}, not only HTTPS (443)"
    return None


@rule("NET-05", OWN_WORKLOADS)
def egress_only_where_needed(bundle: Bundle) -> list[str]:
    gaps = []
    for name, pod in own_workloads(bundle):
        policies = _policies_for(bundle, pod, "Egress")
        if not policies:
            gaps.append(f"{pod.owner.ref}: no NetworkPolicy restricts egress of {name}")
        for policy in policies:
            for i, egress in enumerate(policy.spec.get("egress") or []):
                where = f"{policy.ref} egress[{i}]"
                if not egress.get("ports"):
                    gaps.append(f"{where}: no ports, so {name} may connect on any port")
                peers = egress.get("to")
                if not peers:
                    gaps.append(f"{where}: no to, so {name} may connect anywhere")
                    continue
                for j, peer in enumerate(peers):
                    problem = (_ip_block_gap(peer["ipBlock"], egress.get("ports")) if "ipBlock" in peer
                               else _peer_breadth(peer))
                    if problem is not None:
                        gaps.append(f"{where} to[{j}]: {problem}")
    return gaps


@rule("NET-04", kinds("NetworkPolicy"))
def policies_select_pods(bundle: Bundle) -> list[str]:
    gaps = []
    for policy in bundle.of_kind("NetworkPolicy"):
        selector = policy.spec.get("podSelector") or {}
        if selector and not bundle.pods_selected(policy.namespace or "default", selector):
            gaps.append(f"{policy.ref}: podSelector {selector} selects no pod in the manifests, so it protects nothing")
    return gaps


def _wide_host(host: str) -> bool:
    """A ServiceEntry host that stands for a whole public suffix or more (`*`, `*.com`, `*.co.uk`)."""
    return host == "*" or (host.startswith("*.") and host.count(".") <= 2 and len(host.split(".")[-1]) <= 3)


@rule("NET-05", WORKLOADS)
def mesh_egress_not_widened(bundle: Bundle) -> list[str]:
    """The mesh adds no way out beside the NetworkPolicy: no Sidecar reaching the workloads allows any
    destination (ALLOW_ANY), and no ServiceEntry registers a wildcard host for a whole domain suffix."""
    gaps = []
    for sidecar in bundle.of_kind("Sidecar"):
        mode = (sidecar.spec.get("outboundTrafficPolicy") or {}).get("mode")
        labels = (sidecar.spec.get("workloadSelector") or {}).get("labels") or {}
        reaches = [p for p in bundle.pods if sidecar.namespace in (p.namespace, mesh.ROOT_NAMESPACE)
                   and selector_matches(labels, p.labels)]
        if mode == "ALLOW_ANY" and reaches:
            gaps.append(f"{sidecar.ref}: outboundTrafficPolicy ALLOW_ANY lets {reaches[0].owner.ref}'s proxy pass "
                        "traffic to any destination, registered or not")
    for entry in bundle.of_kind("ServiceEntry"):
        wide = [h for h in entry.spec.get("hosts") or [] if _wide_host(str(h))]
        if wide:
            gaps.append(f"{entry.ref}: host {', '.join(wide)} registers every name under a public suffix, so the mesh "
                        "routes to any such destination")
    return gaps
