"""MTLS: STRICT peer authentication without exceptions, no TLS downgrade, sidecars everywhere."""

from __future__ import annotations

from conformance.static import closed_world, mesh
from conformance.static.manifests import Bundle
from conformance.static.rules import WORKLOADS, kinds, rule

WEAK_MODES = {"PERMISSIVE", "DISABLE"}
DOWNGRADING_TLS = {"DISABLE", "SIMPLE", "MUTUAL"}


@rule("MTLS-01", WORKLOADS)
def strict_peer_authentication(bundle: Bundle) -> list[str]:
    """Every pod's effective mode is STRICT, and no PeerAuthentication carves out an exception."""
    gaps = []
    policies = bundle.of_kind("PeerAuthentication")
    for pa in policies:
        mode = (pa.spec.get("mtls") or {}).get("mode", "UNSET")
        if mode in WEAK_MODES:
            gaps.append(f"{pa.ref}: mtls.mode is {mode}")
        for port, setting in (pa.spec.get("portLevelMtls") or {}).items():
            port_mode = (setting or {}).get("mode", "UNSET")
            if port_mode != "STRICT":
                gaps.append(f"{pa.ref}: portLevelMtls port {port} is {port_mode}, an exception to STRICT")
    for envoy_filter in bundle.of_kind("EnvoyFilter"):
        gaps.append(f"{envoy_filter.ref}: an EnvoyFilter rewrites the proxy's configuration below the policies "
                    "checked here, and can undo mTLS, JWT and authorization")
    for pod in bundle.pods:
        notes = pod.annotations
        excluded = {p.strip() for p in notes.get("traffic.sidecar.istio.io/excludeInboundPorts", "").split(",")}
        for port in sorted(pod.declared_ports()):
            if str(port) in excluded:
                gaps.append(f"{pod.owner.ref}: annotation traffic.sidecar.istio.io/excludeInboundPorts lets port "
                            f"{port} bypass the sidecar, so it takes plaintext without mTLS or authorization")
        included = notes.get("traffic.sidecar.istio.io/includeInboundPorts")
        if included is not None and included.strip() != "*":
            missing = sorted(p for p in pod.declared_ports() if str(p) not in {x.strip() for x in included.split(",")})
            if missing:
                gaps.append(f"{pod.owner.ref}: annotation traffic.sidecar.istio.io/includeInboundPorts leaves ports "
                            f"{', '.join(map(str, missing))} outside the sidecar")
        applying = [pa for pa in policies if mesh.applies_to(pa, pod)]
        modes = {"mesh": [], "namespace": [], "workload": []}
        for pa in applying:
            scope = "workload" if mesh.is_workload_scoped(pa) else (
                "mesh" if pa.namespace == mesh.ROOT_NAMESPACE and pod.namespace != mesh.ROOT_NAMESPACE else "namespace")
            modes[scope].append(pa)
        for scope in ("namespace", "workload"):
            if len(modes[scope]) > 1:
                names = ", ".join(pa.name for pa in modes[scope])
                gaps.append(f"{pod.owner.ref}: {len(modes[scope])} {scope}-level PeerAuthentications apply "
                            f"({names}); Istio then picks the oldest, so the mode is ambiguous")
        effective = "UNSET"
        for scope in ("mesh", "namespace", "workload"):
            for pa in modes[scope]:
                mode = (pa.spec.get("mtls") or {}).get("mode", "UNSET")
                if mode != "UNSET":
                    effective = mode
        if effective != "STRICT":
            where = "no PeerAuthentication in the manifests sets STRICT for it" if effective == "UNSET" else (
                f"its effective PeerAuthentication mode is {effective}")
            gaps.append(f"{pod.owner.ref}: {where}")
    return gaps


def _tls_settings(dr) -> list[tuple[str, dict]]:
    """Every TLS setting of a DestinationRule, with where it sits."""
    found = []

    def collect(policy: dict, where: str) -> None:
        if (policy or {}).get("tls"):
            found.append((where, policy["tls"]))
        for i, port_setting in enumerate((policy or {}).get("portLevelSettings") or []):
            if port_setting.get("tls"):
                port = (port_setting.get("port") or {}).get("number", i)
                found.append((f"{where}.portLevelSettings[port {port}]", port_setting["tls"]))

    collect(dr.spec.get("trafficPolicy") or {}, "trafficPolicy")
    for subset in dr.spec.get("subsets") or []:
        collect(subset.get("trafficPolicy") or {}, f"subsets[{subset.get('name')}].trafficPolicy")
    return found


@rule("MTLS-02", kinds("DestinationRule", "Service"))
def no_tls_downgrade(bundle: Bundle) -> list[str]:
    """No DestinationRule toward in-mesh hosts turns Istio mTLS off; mesh services use ISTIO_MUTUAL."""
    gaps = []
    for dr in bundle.of_kind("DestinationRule"):
        host = dr.spec.get("host", "")
        if not mesh.in_mesh_host(host, dr.namespace or ""):
            continue
        for where, tls in _tls_settings(dr):
            mode = tls.get("mode", "DISABLE")
            if mode in DOWNGRADING_TLS:
                gaps.append(f"{dr.ref}: {where}.tls.mode is {mode} toward in-mesh host {host}, "
                            "which replaces Istio mTLS")
        if not mesh.services_for_host(bundle, host, dr.namespace or ""):
            gaps.append(f"{dr.ref}: host {host} matches no Service in the manifests")
    for svc in bundle.of_kind("Service"):
        if not mesh.pods_of_service(bundle, svc):
            continue
        host = mesh.service_host(svc)
        covering = [dr for dr in bundle.of_kind("DestinationRule")
                    if mesh.host_matches(mesh.fqdn(dr.spec.get("host", ""), dr.namespace or ""), host)]
        modes = [((dr.spec.get("trafficPolicy") or {}).get("tls") or {}).get("mode") for dr in covering]
        if "ISTIO_MUTUAL" not in modes:
            gaps.append(f"{svc.ref}: no DestinationRule sets trafficPolicy.tls.mode ISTIO_MUTUAL for "
                        f"{mesh.service_host(svc)}")
    return gaps


@rule("MTLS-03", WORKLOADS)
def sidecar_injected(bundle: Bundle) -> list[str]:
    served = frozenset(closed_world.expectations()["mesh"]["served_revisions"])
    return [f"{pod.owner.ref}: no sidecar: {reason}" for pod in bundle.pods
            if (reason := mesh.injection(bundle, pod, served)) is not None]


def _ranges(value: str) -> set[str]:
    return {r.strip() for r in str(value).split(",") if r.strip()}


@rule("MTLS-03", WORKLOADS)
def outbound_captured(bundle: Bundle) -> list[str]:
    """The sidecar captures the pods' outbound traffic: no annotation sends all of it, or every port, around
    the proxy (where it would leave without mTLS and without the mesh's egress policy)."""
    gaps = []
    everything = {"*", "0.0.0.0/0", "::/0"}
    for pod in bundle.pods:
        notes = pod.annotations
        where = f"{pod.owner.ref}: annotation traffic.sidecar.istio.io/"
        excluded = _ranges(notes.get("traffic.sidecar.istio.io/excludeOutboundIPRanges", ""))
        if excluded & everything:
            gaps.append(f"{where}excludeOutboundIPRanges {', '.join(sorted(excluded & everything))} sends all "
                        "outbound traffic around the sidecar")
        included = notes.get("traffic.sidecar.istio.io/includeOutboundIPRanges")
        if included is not None and not _ranges(included) & everything:
            gaps.append(f"{where}includeOutboundIPRanges {included!r} captures only part of the outbound traffic "
                        "(or none)")
        if "*" in _ranges(notes.get("traffic.sidecar.istio.io/excludeOutboundPorts", "")):
            gaps.append(f"{where}excludeOutboundPorts * sends every port around the sidecar")
        if str(notes.get("sidecar.istio.io/interceptionMode", "")).upper() == "NONE":
            gaps.append(f"{pod.owner.ref}: annotation sidecar.istio.io/interceptionMode NONE captures no traffic")
    return gaps
