"""SCHEMA-03: istiod's validating webhook, for the rules the CRD schemas and their CEL rules lack.

The API server checks an Istio object against its CRD; istiod's webhook then refuses more, in Go code
(pkg/config/validation in istio/istio). The rules below restate, from reading that code, the ones that
bear on the kinds these manifests use: what they refuse, not how. Building istioctl for each run costs
minutes; these cost microseconds. A refused object never takes effect, so the overlay would not deploy as
reviewed (and `kubectl apply` stops half way).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from conformance.static import names
from conformance.static.manifests import Bundle, K8sObject
from conformance.static.rules import rule

DRY_RUN = "istio.io/dry-run"
# strconv.ParseBool's spellings: the only values the webhook takes for the dry-run annotation.
GO_BOOLS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})
# Envoy's retry conditions the webhook accepts in a VirtualService's retryOn (besides HTTP status codes).
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx", "refused-stream",
    "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
_HEADER_NAME = re.compile(r"[-_A-Za-z0-9]+")
_SOURCE_FIELDS = ("principals", "requestPrincipals", "namespaces", "ipBlocks", "remoteIpBlocks", "notPrincipals",
                  "notRequestPrincipals", "notNamespaces", "notIpBlocks", "notRemoteIpBlocks")
_OPERATION_FIELDS = ("ports", "methods", "paths", "hosts", "notPorts", "notMethods", "notPaths", "notHosts")
# Source fields and condition keys a CUSTOM policy cannot use (its external authorizer sees no peer identity).
_CUSTOM_REFUSED_SOURCES = ("namespaces", "notNamespaces", "principals", "notPrincipals", "requestPrincipals",
                           "notRequestPrincipals")

Check = Callable[[K8sObject], Iterator[str]]
CHECKS: dict[str, Check] = {}


def _kind(name: str) -> Callable[[Check], Check]:
    def register(func: Check) -> Check:
        CHECKS[name] = func
        return func
    return register


def _metadata(obj: K8sObject) -> Iterator[str]:
    """Every Istio kind: the dry-run annotation exists only for ALLOW and DENY AuthorizationPolicies."""
    if DRY_RUN not in obj.annotations:
        return
    value = str(obj.annotations[DRY_RUN])
    if obj.kind != "AuthorizationPolicy":
        yield f"annotation {DRY_RUN} is supported only on AuthorizationPolicy"
        return
    action = obj.spec.get("action") or "ALLOW"
    if action not in ("ALLOW", "DENY"):
        yield f"annotation {DRY_RUN} supports only actions ALLOW and DENY, not {action}"
    elif value not in GO_BOOLS:
        yield f"annotation {DRY_RUN} is {value!r}, not a boolean"


def _selector(labels: Any, where: str) -> Iterator[str]:
    for key, value in (labels or {}).items() if isinstance(labels, dict) else []:
        if not key:
            yield f"{where} has an empty key"
        if "*" in str(key) or "*" in str(value):
            yield f"{where} {key}={value}: wildcards are not supported in a workload selector"


def _empty_values(values: Any, where: str) -> Iterator[str]:
    if isinstance(values, list) and any(v == "" for v in values):
        yield f"{where} holds an empty string"


def _port_values(values: Any, where: str) -> Iterator[str]:
    for port in values if isinstance(values, list) else []:
        text = str(port)
        if text and (not text.isdigit() or not 1 <= int(text) <= 65535):
            yield f"{where} has {text!r}, not a port in 1-65535"


def _custom(spec: dict[str, Any]) -> Iterator[str]:
    if spec.get("rules") is None:
        yield "action CUSTOM without rules is never triggered (an empty rule {} matches every request)"
    elif not (spec.get("provider") or {}).get("name"):
        yield "action CUSTOM needs provider.name, the extension provider that decides"
    for i, ap_rule in enumerate(spec.get("rules") or []):
        if not isinstance(ap_rule, dict):
            continue
        for j, source in enumerate(ap_rule.get("from") or []):
            for field in _CUSTOM_REFUSED_SOURCES:
                if ((source or {}).get("source") or {}).get(field):
                    yield f"rules[{i}].from[{j}].source.{field} is not supported with action CUSTOM"
        for condition in ap_rule.get("when") or []:
            key = str((condition or {}).get("key", ""))
            if key in ("source.namespace", "source.principal") or key.startswith("request.auth."):
                yield f"rules[{i}].when key {key} is not supported with action CUSTOM"


def _clauses(ap_rule: dict[str, Any], where: str, side: str, inner: str, fields: tuple[str, ...],
             anything: str) -> Iterator[str]:
    """A rule's `from` (sources) or `to` (operations): present means not empty, each clause not empty."""
    if side in ap_rule and not ap_rule[side]:
        yield f"{where}.{side} is empty (leave it out to match {anything})"
    for j, item in enumerate(ap_rule.get(side) or []):
        clause = (item or {}).get(inner)
        at = f"{where}.{side}[{j}]"
        if clause is None:
            yield f"{at} has no {inner}"
        elif not any(clause.get(f) for f in fields):
            yield f"{at}.{inner} is empty"
        else:
            for field in fields:
                yield from _empty_values(clause.get(field), f"{at}.{inner}.{field}")
                if field in ("ports", "notPorts"):
                    yield from _port_values(clause.get(field), f"{at}.{inner}.{field}")


def _ap_rule(ap_rule: Any, i: int) -> Iterator[str]:
    if not isinstance(ap_rule, dict):
        yield f"rules[{i}] is null"
        return
    yield from _clauses(ap_rule, f"rules[{i}]", "from", "source", _SOURCE_FIELDS, "any source")
    yield from _clauses(ap_rule, f"rules[{i}]", "to", "operation", _OPERATION_FIELDS, "any operation")
    for condition in ap_rule.get("when") or []:
        key = (condition or {}).get("key")
        if not key:
            yield f"rules[{i}].when has a condition without a key"
        elif not condition.get("values") and not condition.get("notValues"):
            yield f"rules[{i}].when key {key} has neither values nor notValues"


@_kind("AuthorizationPolicy")
def _authorization_policy(obj: K8sObject) -> Iterator[str]:
    spec = obj.spec
    action = spec.get("action") or "ALLOW"
    yield from _selector((spec.get("selector") or {}).get("matchLabels"), "selector.matchLabels")
    if action == "CUSTOM":
        yield from _custom(spec)
    elif spec.get("provider") is not None:
        yield f"provider is refused with action {action}: only CUSTOM delegates to a provider"
    if action == "DENY" and spec.get("rules") is None:
        yield "action DENY without rules is never triggered (an empty rule {} matches every request)"
    for i, ap_rule in enumerate(spec.get("rules") or []):
        yield from _ap_rule(ap_rule, i)


@_kind("RequestAuthentication")
def _request_authentication(obj: K8sObject) -> Iterator[str]:
    yield from _selector((obj.spec.get("selector") or {}).get("matchLabels"), "selector.matchLabels")
    for i, jwt_rule in enumerate(obj.spec.get("jwtRules") or []):
        where = f"jwtRules[{i}]"
        jwt_rule = jwt_rule or {}
        if not jwt_rule.get("issuer"):
            yield f"{where}.issuer must be set"
        yield from _empty_values(jwt_rule.get("audiences"), f"{where}.audiences")
        if any(not (h or {}).get("name") for h in jwt_rule.get("fromHeaders") or []):
            yield f"{where}.fromHeaders has a header without a name"
        yield from _empty_values(jwt_rule.get("fromParams"), f"{where}.fromParams")
        yield from _empty_values(jwt_rule.get("fromCookies"), f"{where}.fromCookies")
        for claim in jwt_rule.get("outputClaimToHeaders") or []:
            header = str((claim or {}).get("header") or "")
            if not header or not (claim or {}).get("claim"):
                yield f"{where}.outputClaimToHeaders needs both a header and a claim"
            elif not _HEADER_NAME.fullmatch(header):
                yield f"{where}.outputClaimToHeaders header {header!r} is not a valid header name"


@_kind("PeerAuthentication")
def _peer_authentication(obj: K8sObject) -> Iterator[str]:
    labels = (obj.spec.get("selector") or {}).get("matchLabels")
    yield from _selector(labels, "selector.matchLabels")
    ports = obj.spec.get("portLevelMtls")
    if ports and not labels:
        yield "a mesh or namespace PeerAuthentication (no selector) cannot have portLevelMtls"
    if ports is not None and isinstance(ports, dict) and not ports:
        yield "portLevelMtls, when set, needs at least one port"
    for port in ports if isinstance(ports, dict) else {}:
        if not str(port).isdigit() or not 1 <= int(str(port)) <= 65535:
            yield f"portLevelMtls port {port} is not in 1-65535"


def _retry_on(value: Any, where: str) -> Iterator[str]:
    for policy in (p.strip() for p in str(value).split(",")):
        if policy and policy not in RETRY_ON and not policy.isdigit():
            yield f"{where} {policy!r} is not a retry condition Envoy knows"


@_kind("VirtualService")
def _virtual_service(obj: K8sObject) -> Iterator[str]:
    spec = obj.spec
    gateways = spec.get("gateways") or []
    if (not gateways or "mesh" in gateways) and "*" in (spec.get("hosts") or []):
        yield "host * is not allowed for a VirtualService bound to the mesh"
    if spec.get("hosts") and not (spec.get("http") or spec.get("tcp") or spec.get("tls")):
        yield "it has no http, tcp or tls route"
    for i, http in enumerate(spec.get("http") or []):
        http = http or {}
        retries = http.get("retries") or {}
        if isinstance(retries.get("attempts"), int) and retries["attempts"] < 0:
            yield f"http[{i}].retries.attempts is negative"
        if retries.get("retryOn"):
            yield from _retry_on(retries["retryOn"], f"http[{i}].retries.retryOn")
        percent = (http.get("mirrorPercentage") or {}).get("value")
        if isinstance(percent, int | float) and not (percent == 0 or 0.0001 <= percent <= 100):
            yield f"http[{i}].mirrorPercentage {percent} is neither 0 nor in 0.0001-100"
        if http.get("redirect") and http.get("route"):
            yield f"http[{i}] has both a redirect and a route"


@_kind("Sidecar")
def _sidecar(obj: K8sObject) -> Iterator[str]:
    spec = obj.spec
    yield from _selector((spec.get("workloadSelector") or {}).get("labels"), "workloadSelector.labels")
    if not any(spec.get(f) for f in ("egress", "ingress", "outboundTrafficPolicy", "inboundConnectionPool")):
        yield "an empty Sidecar configuration is refused"
    egress = spec.get("egress") or []
    catch_all = [i for i, listener in enumerate(egress) if not (listener or {}).get("port")]
    if len(catch_all) > 1:
        yield "egress has more than one listener without a port"
    elif catch_all and catch_all[0] != len(egress) - 1:
        yield "the egress listener without a port must be the last one"
    for i, listener in enumerate(egress):
        hosts = (listener or {}).get("hosts") or []
        if not hosts:
            yield f"egress[{i}] has no hosts"
        for host in hosts:
            if "/" not in str(host):
                yield f"egress[{i}] host {host!r} is not of the form namespace/host"
    policy = spec.get("outboundTrafficPolicy") or {}
    if policy.get("egressProxy") and policy.get("mode", "REGISTRY_ONLY") != "ALLOW_ANY":
        yield "outboundTrafficPolicy.egressProxy is refused unless mode is ALLOW_ANY"


_HTTP_OR_TLS = frozenset({"HTTP", "HTTP2", "HTTPS", "GRPC", "GRPC-WEB", "TLS"})


@_kind("ServiceEntry")
def _service_entry(obj: K8sObject) -> Iterator[str]:
    spec = obj.spec
    hosts = [str(h) for h in spec.get("hosts") or []]
    resolution = spec.get("resolution") or "NONE"
    endpoints = spec.get("endpoints") or []
    if not hosts:
        yield "a ServiceEntry needs at least one host"
    if "*" in hosts:
        yield "host * is refused in a ServiceEntry"
    if spec.get("workloadSelector") and endpoints:
        yield "only one of workloadSelector and endpoints may be set"
    if any("/" in str(a) for a in spec.get("addresses") or []) and resolution not in ("NONE", "STATIC"):
        yield f"CIDR addresses are allowed only with resolution NONE or STATIC, not {resolution}"
    seen_names, seen_numbers = set(), set()
    for port in spec.get("ports") or []:
        port = port or {}
        name, number = port.get("name"), port.get("number")
        if name in seen_names:
            yield f"port name {name} is defined twice"
        if number in seen_numbers:
            yield f"port {number} is defined twice"
        seen_names.add(name)
        seen_numbers.add(number)
        if isinstance(name, str) and names.dns_label(name) is not None:
            yield f"port name {name!r} is not a DNS-1123 label"
    if resolution == "NONE" and endpoints:
        yield "resolution NONE takes no endpoints"
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not endpoints and any(h.startswith("*") for h in hosts):
        yield f"resolution {resolution} without endpoints needs fully qualified hosts, not wildcards"
    if resolution != "NONE" and len(hosts) > 1 and any(
            str((p or {}).get("protocol", "")).upper() not in _HTTP_OR_TLS for p in spec.get("ports") or []):
        yield "several hosts with a port that is neither HTTP nor TLS need resolution NONE"


@_kind("Telemetry")
def _telemetry(obj: K8sObject) -> Iterator[str]:
    spec = obj.spec
    yield from _selector((spec.get("selector") or {}).get("matchLabels"), "selector.matchLabels")
    for section in ("tracing", "accessLogging", "metrics"):
        for i, entry in enumerate(spec.get(section) or []):
            if any(not (p or {}).get("name") for p in (entry or {}).get("providers") or []):
                yield f"{section}[{i}].providers has a provider without a name"
    for i, entry in enumerate(spec.get("tracing") or []):
        entry = entry or {}
        rate = entry.get("randomSamplingPercentage")
        if isinstance(rate, int | float) and not 0 <= rate <= 100:
            yield f"tracing[{i}].randomSamplingPercentage {rate} is outside 0-100"
        for name, tag in (entry.get("customTags") or {}).items():
            tag = tag or {}
            for kind, key in (("literal", "value"), ("header", "name"), ("environment", "name")):
                if kind in tag and not (tag[kind] or {}).get(key):
                    yield f"tracing[{i}].customTags[{name}].{kind}.{key} may not be empty"


@_kind("Gateway")
def _gateway(obj: K8sObject) -> Iterator[str]:
    if obj.group != "networking.istio.io":
        return
    if (why := names.dns_label(obj.name)) is not None:
        yield f"a Gateway's name must be a DNS-1123 label (it is used in references); {obj.name!r} {why}"
    servers = obj.spec.get("servers") or []
    if not servers:
        yield "a Gateway needs at least one server"
    for i, server in enumerate(servers):
        server = server or {}
        if not server.get("hosts"):
            yield f"servers[{i}] has no hosts"
        port = server.get("port") or {}
        if not port.get("name"):
            yield f"servers[{i}].port has no name"
        protocol = str(port.get("protocol", "")).upper()
        if protocol in ("HTTPS", "TLS") and not server.get("tls"):
            yield f"servers[{i}] serves {protocol} without tls settings"
        if protocol not in ("HTTPS", "TLS", "HTTP", "HTTP2", "GRPC") and server.get("tls"):
            yield f"servers[{i}] has tls settings on a {protocol or 'protocol-less'} port"


@rule("SCHEMA-03")
def istiod_validation(bundle: Bundle) -> list[str]:
    """What istiod's validating webhook would refuse, one gap per reason."""
    gaps = []
    for obj in bundle.objects:
        if not obj.group.endswith(".istio.io"):
            continue
        problems = list(_metadata(obj))
        check = CHECKS.get(obj.kind)
        if check is not None:
            problems += list(check(obj))
        gaps += [f"{obj.ref}: istiod refuses it: {problem}" for problem in problems]
    return gaps
