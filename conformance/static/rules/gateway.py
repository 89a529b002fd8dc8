"""GW: TLS at the Istio Gateway, routes that match it and the Service, and no other way in."""

from __future__ import annotations

from conformance import fixtures
from conformance.static import mesh
from conformance.static.manifests import Bundle, K8sObject
from conformance.static.rules import WORKLOADS, kinds, rule

TLS_MODES = {"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"}
OLD_TLS = {"TLSV1_0", "TLSV1_1"}


def _ingress_gateway_labels() -> dict[str, str]:
    return fixtures.expectations("network")["groups"]["ingress-gateway"]["labels"]


def _host(entry: str) -> str:
    """Gateway and VirtualService hosts may carry a `namespace/` prefix."""
    return entry.split("/", 1)[1] if "/" in entry else entry


@rule("GW-01")
def gateway_serves_tls_and_redirects(bundle: Bundle) -> list[str]:
    gaps = []
    gateways = bundle.of_kind("Gateway")
    if not gateways:
        gaps.append("no Istio Gateway in the manifests, so nothing terminates TLS for external traffic")
    for gw in gateways:
        selector = gw.spec.get("selector") or {}
        expected = _ingress_gateway_labels()
        if not selector:
            gaps.append(f"{gw.ref}: selector is empty, so it binds to no gateway pods by label")
        elif any(expected.get(k) != v for k, v in selector.items()):
            gaps.append(f"{gw.ref}: selector {selector} does not match the ingress gateway's pods {expected}")
        https_hosts: set[str] = set()
        http_hosts: set[str] = set()
        for i, server in enumerate(gw.spec.get("servers") or []):
            port = server.get("port") or {}
            protocol = (port.get("protocol") or "").upper()
            where = f"{gw.ref} servers[{i}] (port {port.get('number')})"
            tls = server.get("tls") or {}
            hosts = {_host(h) for h in server.get("hosts") or []}
            if "*" in hosts:
                gaps.append(f"{where}: hosts include *, so it answers for any name")
            if protocol == "HTTP":
                http_hosts |= hosts
                if not tls.get("httpsRedirect"):
                    gaps.append(f"{where}: plain HTTP without tls.httpsRedirect, so tokens cross the wire in clear")
            elif protocol == "HTTPS":
                https_hosts |= hosts
                mode = tls.get("mode", "")
                if mode not in TLS_MODES:
                    modes = ", ".join(sorted(TLS_MODES))
                    gaps.append(f"{where}: tls.mode is {mode or 'not set'}, not a terminating mode ({modes})")
                if not tls.get("credentialName"):
                    gaps.append(f"{where}: no tls.credentialName, so the certificate does not come from a "
                                "managed secret")
                if tls.get("minProtocolVersion") in OLD_TLS:
                    gaps.append(f"{where}: minProtocolVersion {tls['minProtocolVersion']} allows deprecated TLS")
            else:
                gaps.append(f"{where}: protocol {protocol or 'not set'} exposes traffic the mesh cannot check as HTTP")
        if not https_hosts:
            gaps.append(f"{gw.ref}: no HTTPS server")
        for host in sorted(http_hosts - https_hosts):
            gaps.append(f"{gw.ref}: host {host} is served over HTTP but not over HTTPS, so the redirect leads nowhere")
    return gaps


def _resolve_gateway(bundle: Bundle, vs: K8sObject, ref: str) -> K8sObject | None:
    namespace, _, name = ref.rpartition("/")
    return bundle.get("Gateway", name, namespace or vs.namespace)


@rule("GW-02")
def routes_match_gateway_and_service(bundle: Bundle) -> list[str]:
    gaps = []
    api = fixtures.expectations("workload")["api"]
    api_reached = False
    for vs in bundle.of_kind("VirtualService"):
        refs = [g for g in vs.spec.get("gateways") or [] if g != "mesh"]
        if not refs:
            continue
        served: set[str] = set()
        for ref in refs:
            gw = _resolve_gateway(bundle, vs, ref)
            if gw is None:
                gaps.append(f"{vs.ref}: gateway {ref} is not in the manifests")
                continue
            served |= {_host(h) for s in gw.spec.get("servers") or [] for h in s.get("hosts") or []}
        for host in vs.spec.get("hosts") or []:
            if served and not any(mesh.host_matches(pattern, host) for pattern in served):
                gaps.append(f"{vs.ref}: host {host} is not served by its gateway(s) ({', '.join(sorted(served))})")
        for i, http in enumerate(vs.spec.get("http") or []):
            where = f"{vs.ref} http[{i}]"
            if not http.get("timeout"):
                gaps.append(f"{where}: no timeout, so a hung backend holds gateway connections indefinitely")
            if not http.get("retries"):
                gaps.append(f"{where}: no retries policy, so Istio's default retries even non-idempotent requests")
        for route in mesh.gateway_routes(bundle):
            if route.virtual_service is not vs:
                continue
            where = f"{vs.ref} http[{route.index}]"
            services = mesh.services_for_host(bundle, route.destination_host, vs.namespace or "")
            if not services:
                gaps.append(f"{where}: destination {route.destination_host} is not a Service in the manifests")
                continue
            svc = services[0]
            ports = [p.get("port") for p in svc.spec.get("ports") or []]
            if route.destination_port is None and len(ports) > 1:
                gaps.append(f"{where}: destination {route.destination_host} has no port, but {svc.ref} has several")
            elif route.destination_port is not None and route.destination_port not in ports:
                gaps.append(f"{where}: destination port {route.destination_port} is not a port of {svc.ref} ({ports})")
            if svc.name == api["service"] and route.destination_port in (None, api["port"]):
                if any(api["path_prefix"].startswith(p) or p.startswith(api["path_prefix"]) for p in route.prefixes):
                    api_reached = True
                wider = [p for p in route.prefixes if not p.startswith(api["path_prefix"])]
                if wider:
                    gaps.append(f"{where}: routes {', '.join(wider)} to {svc.ref}, beyond the API prefix "
                                f"{api['path_prefix']}, so health and metrics paths face the internet")
    if not api_reached:
        gaps.append(f"no VirtualService bound to a Gateway routes {api['path_prefix']} to Service {api['service']} "
                    f"port {api['port']}")
    return gaps


@rule("GW-03", WORKLOADS, kinds("Service", "Ingress"))
def only_through_gateway(bundle: Bundle) -> list[str]:
    gaps = []
    for svc in bundle.of_kind("Service"):
        kind = svc.spec.get("type", "ClusterIP")
        if kind in ("LoadBalancer", "NodePort"):
            gaps.append(f"{svc.ref}: type {kind} exposes pods outside the Istio Gateway")
        if svc.spec.get("externalIPs"):
            gaps.append(f"{svc.ref}: externalIPs expose pods outside the Istio Gateway")
        for port in svc.spec.get("ports") or []:
            if port.get("nodePort"):
                gaps.append(f"{svc.ref}: port {port.get('port')} sets nodePort {port['nodePort']}")
    for obj in bundle.of_kind("Ingress"):
        gaps.append(f"{obj.ref}: an Ingress is a way in around the Istio Gateway")
    for obj in bundle.objects:
        if obj.group == "gateway.networking.k8s.io" and obj.kind in ("Gateway", "HTTPRoute", "TLSRoute", "TCPRoute",
                                                                      "GRPCRoute", "UDPRoute"):
            gaps.append(f"{obj.ref}: a Gateway API {obj.kind} is a way in beside the Istio Gateway")
    for pod in bundle.pods:
        if pod.spec.get("hostNetwork"):
            gaps.append(f"{pod.owner.ref}: hostNetwork exposes the pod on the node's addresses")
        for c in pod.containers():
            for port in c.ports:
                if port.get("hostPort"):
                    gaps.append(f"{c.ref}: hostPort {port['hostPort']} exposes the pod on the node's addresses")
    return gaps


def _wildcard_origin(origin: dict) -> bool:
    """A CORS allowOrigins entry that matches every origin."""
    return origin.get("exact") == "*" or origin.get("prefix") in ("", "*", "http", "https") or \
        str(origin.get("regex", "")).strip() in (".*", ".+", "*", "^.*$", "https?://.*")


@rule("GW-02", kinds("VirtualService"))
def no_traffic_copied_out(bundle: Bundle) -> list[str]:
    """No route copies requests to a host outside the mesh's Services (a mirror), and no CORS policy lets any
    origin call with the user's credentials: either hands the API's traffic or its users' sessions to others."""
    gaps = []
    for vs in bundle.of_kind("VirtualService"):
        for i, http in enumerate(vs.spec.get("http") or []):
            http = http or {}
            mirrors = [http.get("mirror") or {}]
            mirrors += [(m or {}).get("destination") or {} for m in http.get("mirrors") or []]
            for mirror in (m for m in mirrors if m):
                host = str(mirror.get("host", ""))
                if not mesh.services_for_host(bundle, host, vs.namespace or ""):
                    gaps.append(f"{vs.ref}: http[{i}] mirrors every request to {host or 'an empty host'}, which is no "
                                "Service of the manifests, so the API's traffic and tokens leave for elsewhere")
            cors = http.get("corsPolicy") or {}
            if cors.get("allowCredentials") and any(_wildcard_origin(o or {}) for o in cors.get("allowOrigins") or []):
                gaps.append(f"{vs.ref}: http[{i}].corsPolicy lets any origin call with credentials, so any web page "
                            "can act with a signed-in user's session")
    return gaps


# Retry conditions that fire only when the request never reached the application; any other (5xx, reset,
# gateway-error, a status code...) can replay a request the application already acted on.
RETRY_BEFORE_REQUEST = frozenset({"connect-failure", "refused-stream", "reset-before-request",
                                  "http3-post-connect-failure"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def _only_idempotent(http: dict) -> bool:
    """Whether every match of a route names an idempotent method (no match, or no method, lets POST in)."""
    matches = http.get("match") or []
    methods = [((m or {}).get("method") or {}).get("exact") for m in matches]
    return bool(matches) and all(str(m).upper() in IDEMPOTENT_METHODS for m in methods)


@rule("GW-02", kinds("VirtualService"))
def retries_only_before_the_request(bundle: Bundle) -> list[str]:
    """A route that lets POST through retries only when the request never reached the application."""
    gaps = []
    for vs in bundle.of_kind("VirtualService"):
        for i, http in enumerate(vs.spec.get("http") or []):
            retries = (http or {}).get("retries") or {}
            if not retries.get("attempts") or _only_idempotent(http):
                continue
            conditions = [c.strip() for c in str(retries.get("retryOn") or "").split(",") if c.strip()]
            late = [c for c in conditions if c not in RETRY_BEFORE_REQUEST]
            if late:
                gaps.append(f"{vs.ref}: http[{i}] retries on {', '.join(late)} for requests that may be POSTs, so a "
                            "request the application already acted on runs again")
    return gaps
