"""NetworkPolicy reachability: rendered policies -> the allowed-flow matrix between named groups.

The groups and the flows that should be allowed are data (fixtures/expectations/network.yaml). A
flow is allowed when the source's egress policies and the destination's ingress policies both
admit it, following the NetworkPolicy API: a pod is isolated in a direction once any policy with
that policy type selects it, and rules are unioned. ipBlock peers match addresses outside the
cluster and, conservatively, pod addresses inside the pod CIDR the expectations declare, since
most CNIs apply ipBlock to pod traffic too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.static.manifests import Bundle, K8sObject, selector_matches


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str = "TCP"

    @classmethod
    def parse(cls, text: str) -> Port:
        number, _, protocol = str(text).partition("/")
        return cls(int(number), (protocol or "TCP").upper())

    def __str__(self) -> str:
        return f"{self.number}/{self.protocol}"


@dataclass
class Group:
    name: str
    ports: list[Port]
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)
    named_ports: dict[str, int] = field(default_factory=dict)
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


@dataclass(frozen=True)
class Cell:
    source: str
    destination: str
    port: Port
    expected: bool
    allowed: bool

    @property
    def mismatch(self) -> bool:
        return self.expected != self.allowed

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "port": str(self.port),
                "expected": self.expected, "observed": self.allowed}


class ModelError(ValueError):
    """The expectations name a group the manifests cannot resolve."""


def resolve_groups(bundle: Bundle, spec: dict[str, Any]) -> tuple[dict[str, Group], list[str]]:
    """Groups of the expectations, with workload groups taken from the rendered manifests."""
    groups: dict[str, Group] = {}
    problems: list[str] = []
    for name, raw in spec["groups"].items():
        ports = [Port.parse(p) for p in raw.get("ports", [])]
        if "workload" in raw:
            kind, _, workload = raw["workload"].partition("/")
            matches = [p for p in bundle.pods if p.owner.kind == kind and p.owner.name == workload]
            if not matches:
                problems.append(f"network group {name}: {kind} {workload} is not in the manifests")
                continue
            pod = matches[0]
            undeclared = [str(p) for p in ports if p.number not in pod.declared_ports()]
            if undeclared:
                problems.append(f"network group {name}: {pod.owner.ref} declares no port {', '.join(undeclared)}")
            groups[name] = Group(name, ports, pod.namespace, dict(pod.labels),
                                 bundle.namespace_labels(pod.namespace), pod.named_ports())
        elif "cidr" in raw:
            groups[name] = Group(name, ports, network=ipaddress.ip_network(raw["cidr"]))
        else:
            namespace = raw["namespace"]
            ns_labels = {**bundle.namespace_labels(namespace), **(raw.get("namespace_labels") or {})}
            groups[name] = Group(name, ports, namespace, dict(raw.get("labels") or {}), ns_labels)
    return groups, problems


def policy_types(policy: K8sObject) -> set[str]:
    declared = policy.spec.get("policyTypes")
    if declared:
        return set(declared)
    return {"Ingress", "Egress"} if "egress" in policy.spec else {"Ingress"}


def _port_matches(rule_ports: list[dict[str, Any]] | None, port: Port, named: dict[str, int]) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if (entry.get("protocol") or "TCP").upper() != port.protocol:
            continue
        value = entry.get("port")
        if value is None:
            return True
        if isinstance(value, str) and not value.isdigit():
            if named.get(value) == port.number:
                return True
            continue
        low = int(value)
        high = int(entry.get("endPort") or low)
        if low <= port.number <= high:
            return True
    return False


def _ip_block_matches(block: dict[str, Any], peer: Group, pod_cidr) -> bool:
    cidr = ipaddress.ip_network(block["cidr"], strict=False)
    excepts = [ipaddress.ip_network(e, strict=False) for e in block.get("except") or []]
    target = peer.network if peer.network is not None else pod_cidr
    if target is None or target.version != cidr.version or not target.overlaps(cidr):
        return False
    # Conservative: a target only partly inside an exception still counts as admitted.
    return not any(target.subnet_of(e) for e in excepts if e.version == target.version)


def _peer_matches(peer_rule: dict[str, Any], policy_ns: str, peer: Group, pod_cidr) -> bool:
    if "ipBlock" in peer_rule:
        return _ip_block_matches(peer_rule["ipBlock"], peer, pod_cidr)
    if not peer.is_pod:
        return False
    ns_selector = peer_rule.get("namespaceSelector")
    pod_selector = peer_rule.get("podSelector")
    if ns_selector is None:
        if peer.namespace != policy_ns:
            return False
    elif not selector_matches(ns_selector, peer.namespace_labels):
        return False
    return pod_selector is None or selector_matches(pod_selector, peer.labels)


class Model:
    def __init__(self, bundle: Bundle, spec: dict[str, Any]):
        self.bundle = bundle
        self.spec = spec
        self.groups, self.problems = resolve_groups(bundle, spec)
        pod_cidr = spec.get("pod_cidr")
        self.pod_cidr = ipaddress.ip_network(pod_cidr) if pod_cidr else None
        self._policies_by_ns: dict[str, list[K8sObject]] = {}
        for policy in bundle.of_kind("NetworkPolicy"):
            self._policies_by_ns.setdefault(policy.namespace or "default", []).append(policy)

    def policies_selecting(self, group: Group, direction: str) -> list[K8sObject]:
        if not group.is_pod:
            return []
        return [p for p in self._policies_by_ns.get(group.namespace or "", [])
                if direction in policy_types(p) and selector_matches(p.spec.get("podSelector"), group.labels)]

    def _admits(self, target: Group, peer: Group, port: Port, direction: str) -> bool:
        policies = self.policies_selecting(target, direction)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        # Ingress ports are the target's own; egress ports are the peer's, named ones resolved there.
        named = target.named_ports if direction == "Ingress" else peer.named_ports
        for policy in policies:
            for rule in policy.spec.get(rules_key) or []:
                if not _port_matches(rule.get("ports"), port, named):
                    continue
                peers = rule.get(peers_key)
                if not peers or any(_peer_matches(pr, policy.namespace or "", peer, self.pod_cidr)
                                    for pr in peers):
                    return True
        return False

    def allowed(self, source: Group, destination: Group, port: Port) -> bool:
        return (self._admits(source, destination, port, "Egress")
                and self._admits(destination, source, port, "Ingress"))

    def governed(self, group: Group) -> bool:
        return group.is_pod and group.namespace in self.bundle.namespaces

    def cells(self) -> list[Cell]:
        expected = {(f["from"], f["to"], Port.parse(f["port"])) for f in self.spec.get("allowed", [])}
        cells = []
        for src in self.groups.values():
            for dst in self.groups.values():
                if src is dst or not (self.governed(src) or self.governed(dst)):
                    continue
                for port in dst.ports:
                    cells.append(Cell(src.name, dst.name, port, (src.name, dst.name, port) in expected,
                                      self.allowed(src, dst, port)))
        return cells

    def unknown_flows(self) -> list[str]:
        """Expected flows that name groups or ports the expectations do not define."""
        problems = []
        for flow in self.spec.get("allowed", []):
            for end in ("from", "to"):
                if flow[end] not in self.spec["groups"]:
                    problems.append(f"expected flow {flow}: no group named {flow[end]}")
            dst = self.groups.get(flow["to"])
            if dst is not None and Port.parse(flow["port"]) not in dst.ports:
                problems.append(f"expected flow {flow}: {flow['port']} is not a port of group {flow['to']}")
        return problems


def render_matrix(title: str, cells: Iterable[Cell]) -> str:
    """Sources as rows, destinations as columns; each cell lists the allowed ports.

    `+port` is allowed but not expected, `-port` is expected but blocked.
    """
    cells = list(cells)
    order = list(dict.fromkeys(name for c in cells for name in (c.source, c.destination)))
    sources = [g for g in order if any(c.source == g for c in cells)]
    destinations = [g for g in order if any(c.destination == g for c in cells)]
    grid: dict[tuple[str, str], list[str]] = {}
    for cell in cells:
        if cell.mismatch:
            mark = f"+{cell.port}" if cell.allowed else f"-{cell.port}"
        elif cell.allowed:
            mark = str(cell.port)
        else:
            continue
        grid.setdefault((cell.source, cell.destination), []).append(mark)
    text = {key: " ".join(marks) for key, marks in grid.items()}
    width0 = max([len("from \\ to"), *map(len, sources)])
    widths = [max([len(d), *(len(text.get((s, d), ".")) for s in sources)]) for d in destinations]
    mismatches = sum(c.mismatch for c in cells)
    lines = [f"{title}: {mismatches} mismatch(es); +port allowed but not expected, -port expected but blocked",
             "  ".join(["from \\ to".ljust(width0), *(d.ljust(w) for d, w in zip(destinations, widths, strict=True))])]
    for src in sources:
        row = [text.get((src, d), ".").ljust(w) for d, w in zip(destinations, widths, strict=True)]
        lines.append("  ".join([src.ljust(width0), *row]).rstrip())
    return "\n".join(lines)
