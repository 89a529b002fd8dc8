"""Translate a RequestAuthentication and AuthorizationPolicies into an Envoy config, as istiod does.

This lets the JWT statuses of fixtures/expectations/jwt.yaml be established against a real
verifier without a cluster: upstream Envoy runs the jwt_authn and RBAC filters built here in
front of a loopback upstream. The translation follows istiod's for the fields the overlay uses:

- every jwtRule becomes a jwt_authn provider; the requirement is "any provider, or no token at
  all" (allow_missing), so an invalid token is refused and a missing one is left to RBAC;
- the verified payload lands in dynamic metadata under ``payload``, where the RBAC principals
  for ``requestPrincipals`` ("ISS/SUB", "ISS/*", "*") match ``iss`` and ``sub``;
- ``principals`` match the peer certificate's URI SAN (``spiffe://`` + value), which a
  plaintext loopback listener never has, so such rules never match here, as without mTLS;
- DENY policies become an RBAC filter that runs before the ALLOW one.

Fields this module does not translate raise InputError naming the field, rather than being
silently dropped and making the verifier more permissive than the mesh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from conformance.errors import InputError
from conformance.static.manifests import K8sObject

JWT_FILTER = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "payload"
_ANY = {"safe_regex": {"regex": ".+"}}

_RULE_FIELDS = {"issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams", "fromCookies",
                "forwardOriginalToken", "outputPayloadToHeader", "outputClaimToHeaders", "timeout"}
_SOURCE_FIELDS = {"requestPrincipals", "notRequestPrincipals", "principals", "notPrincipals",
                  "namespaces", "notNamespaces"}
_OPERATION_FIELDS = {"methods", "notMethods", "paths", "notPaths", "ports", "notPorts"}


# --- jwt_authn ------------------------------------------------------------------------------


def _provider(rule: Mapping[str, Any], jwks: str | None) -> dict[str, Any]:
    unknown = set(rule) - _RULE_FIELDS
    if unknown:
        raise InputError(f"jwtRule for {rule.get('issuer')}: field(s) {', '.join(sorted(unknown))} not translated")
    inline = rule.get("jwks") or jwks
    if not inline:
        raise InputError(f"jwtRule for {rule.get('issuer')} has only a jwksUri; the local verifier needs the JWKS")
    provider: dict[str, Any] = {
        "issuer": rule["issuer"],
        "local_jwks": {"inline_string": inline if isinstance(inline, str) else json.dumps(inline)},
        "forward": bool(rule.get("forwardOriginalToken", False)),
        "payload_in_metadata": PAYLOAD_KEY,
    }
    if rule.get("audiences"):
        provider["audiences"] = list(rule["audiences"])
    # Without fromHeaders/fromParams Envoy, like Istio, reads both the Bearer header and access_token.
    if rule.get("fromHeaders"):
        provider["from_headers"] = [{"name": h["name"], **({"value_prefix": h["prefix"]} if h.get("prefix") else {})}
                                    for h in rule["fromHeaders"]]
    if rule.get("fromParams"):
        provider["from_params"] = list(rule["fromParams"])
    if rule.get("fromCookies"):
        provider["from_cookies"] = list(rule["fromCookies"])
    if rule.get("outputPayloadToHeader"):
        provider["forward_payload_header"] = rule["outputPayloadToHeader"]
    if rule.get("outputClaimToHeaders"):
        provider["claim_to_headers"] = [{"header_name": c["header"], "claim_name": c["claim"]}
                                        for c in rule["outputClaimToHeaders"]]
    return provider


def jwt_authn_filter(request_authentications: Iterable[Mapping[str, Any]], jwks: str | None = None) -> dict[str, Any]:
    """The jwt_authn HTTP filter for the jwtRules of these RequestAuthentication specs.

    ``jwks`` stands in for every rule's jwksUri, as the conformance overlay inlines the run's JWKS.
    """
    rules = [rule for spec in request_authentications for rule in spec.get("jwtRules") or []]
    if not rules:
        raise InputError("no jwtRules to translate")
    providers = {f"origins-{i}": _provider(rule, jwks) for i, rule in enumerate(rules)}
    requirement = {"requires_any": {"requirements": [{"provider_name": name} for name in providers]
                                    + [{"allow_missing": {}}]}}
    return {
        "name": JWT_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": requirement}],
        },
    }


# --- RBAC -----------------------------------------------------------------------------------


def _claim(claim: str, matcher: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": PAYLOAD_KEY}, {"key": claim}],
                         "value": {"string_match": matcher}}}


def _request_principal(value: str) -> dict[str, Any]:
    """istiod's reading of a requestPrincipals entry: split at the last "/" into issuer and subject."""
    if value == "*":
        iss, sub = _ANY, _ANY
    else:
        head, slash, tail = value.rpartition("/")
        if not slash:
            raise InputError(f"requestPrincipals entry {value!r} has no issuer/subject separator")
        if "*" in head or ("*" in tail and tail != "*"):
            raise InputError(f"requestPrincipals entry {value!r}: only ISS/SUB, ISS/* and * are translated")
        iss = {"exact": head}
        sub = _ANY if tail == "*" else {"exact": tail}
    return {"and_ids": {"ids": [_claim("iss", iss), _claim("sub", sub)]}}


def _peer_principal(value: str) -> dict[str, Any]:
    if "*" in value:
        raise InputError(f"principals entry {value!r}: wildcards are not translated")
    return {"authenticated": {"principal_name": {"exact": f"spiffe://{value}"}}}


def _namespace(value: str) -> dict[str, Any]:
    if "*" in value:
        raise InputError(f"namespaces entry {value!r}: wildcards are not translated")
    return {"authenticated": {"principal_name": {"safe_regex": {"regex": f".*/ns/{value}/.*"}}}}


def _path(value: str) -> dict[str, Any]:
    if "{" in value:
        raise InputError(f"path {value!r}: path templates are not translated")
    if value == "*":
        matcher: dict[str, Any] = {"safe_regex": {"regex": ".*"}}
    elif value.endswith("*"):
        matcher = {"prefix": value[:-1]}
    elif value.startswith("*"):
        matcher = {"suffix": value[1:]}
    else:
        matcher = {"exact": value}
    return {"url_path": {"path": matcher}}


def _any_of(items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return items[0] if len(items) == 1 else {f"or_{kind}": {kind: items}}


def _all_of(items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    if not items:
        return {"any": True}
    return items[0] if len(items) == 1 else {f"and_{kind}": {kind: items}}


def _source(source: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(source) - _SOURCE_FIELDS
    if unknown:
        raise InputError(f"source field(s) {', '.join(sorted(unknown))} not translated")
    builders = {"requestPrincipals": _request_principal, "principals": _peer_principal, "namespaces": _namespace}
    ids = []
    for field, build in builders.items():
        for negated, key in ((False, field), (True, "not" + field[0].upper() + field[1:])):
            if source.get(key):
                matcher = _any_of([build(v) for v in source[key]], "ids")
                ids.append({"not_id": matcher} if negated else matcher)
    return _all_of(ids, "ids")


def _operation(operation: Mapping[str, Any], port_map: Mapping[int, int]) -> dict[str, Any]:
    unknown = set(operation) - _OPERATION_FIELDS
    if unknown:
        raise InputError(f"operation field(s) {', '.join(sorted(unknown))} not translated")

    def method(v: str) -> dict[str, Any]:
        return {"header": {"name": ":method", "string_match": {"exact": v}}}

    def port(v: str | int) -> dict[str, Any]:
        return {"destination_port": port_map.get(int(v), int(v))}

    builders = {"methods": method, "paths": _path, "ports": port}
    rules = []
    for field, build in builders.items():
        for negated, key in ((False, field), (True, "not" + field[0].upper() + field[1:])):
            if operation.get(key):
                matcher = _any_of([build(v) for v in operation[key]], "rules")
                rules.append({"not_rule": matcher} if negated else matcher)
    return _all_of(rules, "rules")


def _policy(rule: Mapping[str, Any], port_map: Mapping[int, int]) -> dict[str, Any]:
    if rule.get("when"):
        raise InputError("AuthorizationPolicy rule conditions (when) are not translated")
    sources = [_source(f.get("source") or {}) for f in rule.get("from") or []]
    operations = [_operation(t.get("operation") or {}, port_map) for t in rule.get("to") or []]
    return {
        "permissions": [_any_of(operations, "rules")] if operations else [{"any": True}],
        "principals": [_any_of(sources, "ids")] if sources else [{"any": True}],
    }


def rbac_filters(authorization_policies: Iterable[K8sObject],
                 port_map: Mapping[int, int] | None = None) -> list[dict[str, Any]]:
    """RBAC HTTP filters for these AuthorizationPolicies: DENY first, then ALLOW, as istiod orders them.

    ``port_map`` moves the policies' container ports to the ports the local listener really
    uses; the test maps 8080 to its free loopback port.
    """
    port_map = port_map or {}
    policies: dict[str, dict[str, Any]] = {"DENY": {}, "ALLOW": {}}
    present: set[str] = set()
    for ap in authorization_policies:
        action = ap.spec.get("action", "ALLOW")
        if action not in policies:
            raise InputError(f"{ap.ref}: action {action} is not translated")
        # An ALLOW policy without rules still counts: it allows nothing, so its filter denies all.
        present.add(action)
        for i, rule in enumerate(ap.spec.get("rules") or []):
            policies[action][f"ns[{ap.namespace}]-policy[{ap.name}]-rule[{i}]"] = _policy(rule, port_map)
    return [{
        "name": f"envoy.filters.http.rbac.{action.lower()}",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                         "rules": {"action": action, "policies": policies[action]}},
    } for action in ("DENY", "ALLOW") if action in present]


# --- bootstrap ------------------------------------------------------------------------------


def bootstrap(request_authentications: Iterable[Mapping[str, Any]], authorization_policies: Iterable[K8sObject],
              *, jwks: str | None, listen_port: int, upstream_port: int, admin_port: int = 0,
              port_map: Mapping[int, int] | None = None, host: str = "127.0.0.1") -> dict[str, Any]:
    """A complete static Envoy config: one inbound listener with jwt_authn, RBAC and a router to upstream."""
    http_filters = [jwt_authn_filter(request_authentications, jwks), *rbac_filters(authorization_policies, port_map),
                    {"name": "envoy.filters.http.router",
                     "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    return {
        "admin": {"address": {"socket_address": {"address": host, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "inbound",
                "address": {"socket_address": {"address": host, "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                                 ".HttpConnectionManager",
                        "stat_prefix": "inbound",
                        "route_config": {"virtual_hosts": [{"name": "workload", "domains": ["*"], "routes": [
                            {"match": {"prefix": "/"}, "route": {"cluster": "workload"}}]}]},
                        "http_filters": http_filters,
                    },
                }]}],
            }],
            "clusters": [{
                "name": "workload",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "workload", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": host, "port_value": upstream_port}}}}]}]},
            }],
        },
    }
