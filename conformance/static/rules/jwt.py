"""JWT: tokens are validated, required on every API path, and nothing allows everything."""

from __future__ import annotations

from urllib.parse import urlparse

from conformance import fixtures
from conformance.static import mesh
from conformance.static.manifests import Bundle
from conformance.static.rules import WORKLOADS, Needs, kinds, rule


def _api() -> dict:
    return fixtures.expectations("workload")["api"]


def _contract() -> dict:
    """The issuer, audiences and JWKS location of fixtures/expectations/jwt.yaml."""
    return fixtures.expectations("jwt")


def _api_pods(bundle: Bundle):
    """Pods the gateway routes the API to; a missing route is reported by GW-02."""
    return mesh.api_pods(bundle)


@rule("JWT-01")
def request_authentication(bundle: Bundle) -> list[str]:
    gaps = []
    pods = _api_pods(bundle)
    if not pods:
        gaps.append("no gateway route reaches any pod, so no workload is known to need JWT validation")
    contract = _contract()
    for pod, _routes in pods:
        applying = [ra for ra in bundle.of_kind("RequestAuthentication") if mesh.applies_to(ra, pod)]
        if not applying:
            gaps.append(f"{pod.owner.ref}: no RequestAuthentication selects its pods")
        elif not any(r.get("issuer") == contract["issuer"] for ra in applying for r in ra.spec.get("jwtRules") or []):
            issuers = ", ".join(sorted({r.get("issuer") or "none" for ra in applying
                                        for r in ra.spec.get("jwtRules") or []}))
            gaps.append(f"{pod.owner.ref}: no RequestAuthentication validates the expected issuer "
                        f"{contract['issuer']} (it validates {issuers})")
    for ra in bundle.of_kind("RequestAuthentication"):
        rules = ra.spec.get("jwtRules") or []
        if not rules:
            gaps.append(f"{ra.ref}: jwtRules is empty")
        for i, jwt_rule in enumerate(rules):
            where = f"{ra.ref} jwtRules[{i}]"
            issuer = jwt_rule.get("issuer")
            if not issuer:
                gaps.append(f"{where}: issuer is not set")
            elif issuer != contract["issuer"]:
                gaps.append(f"{where}: issuer {issuer} is not the expected {contract['issuer']}")
            uri = jwt_rule.get("jwksUri")
            if issuer == contract["issuer"] and uri != contract["jwks_uri"]:
                gaps.append(f"{where}: the keys of {issuer} come from {uri or 'inline jwks'}, not from the "
                            f"expected jwksUri {contract['jwks_uri']}")
            if uri:
                parsed = urlparse(uri)
                if parsed.scheme != "https" or not parsed.netloc:
                    gaps.append(f"{where}: jwksUri {uri} is not an https URL, so keys can be swapped in transit")
            elif not jwt_rule.get("jwks"):
                gaps.append(f"{where}: neither jwksUri nor jwks is set")
            audiences = jwt_rule.get("audiences") or []
            if not audiences:
                gaps.append(f"{where}: audiences is empty, so tokens minted for any service are accepted")
            elif sorted(audiences) != sorted(contract["audiences"]):
                gaps.append(f"{where}: audiences {', '.join(audiences)} are not the expected "
                            f"{', '.join(contract['audiences'])}")
            headers = jwt_rule.get("fromHeaders")
            if not headers:
                gaps.append(f"{where}: fromHeaders is not set, so Istio also takes tokens from the "
                            "access_token query parameter, which lands in access logs")
            elif any(h.get("name", "").lower() != "authorization" for h in headers):
                names = ", ".join(h.get("name", "") for h in headers)
                gaps.append(f"{where}: fromHeaders takes tokens from {names}, not only Authorization")
            if jwt_rule.get("fromParams"):
                gaps.append(f"{where}: fromParams takes tokens from the query string")
            if jwt_rule.get("fromCookies"):
                gaps.append(f"{where}: fromCookies takes tokens from cookies, open to CSRF")
            # The token stops at the proxy: passed on, or copied into headers, it reaches the application
            # and whatever it logs or calls.
            if jwt_rule.get("forwardOriginalToken"):
                gaps.append(f"{where}: forwardOriginalToken passes the caller's token on to the workload")
            if jwt_rule.get("outputPayloadToHeader") or jwt_rule.get("outputClaimToHeaders"):
                gaps.append(f"{where}: the token's payload or claims are copied into request headers for the workload")
    return gaps


def _principal_fits(principal: str, issuer: str) -> bool:
    """Whether a requestPrincipals pattern (`<iss>/<sub>`, `*` as prefix or suffix) can match a
    token from `issuer`."""
    if principal == "*" or principal.startswith(f"{issuer}/"):
        return True
    if principal.endswith("*"):
        return f"{issuer}/".startswith(principal[:-1])
    return principal.startswith("*")


def _issuers(bundle: Bundle, pod) -> set[str]:
    return {r.get("issuer", "") for ra in bundle.of_kind("RequestAuthentication") if mesh.applies_to(ra, pod)
            for r in ra.spec.get("jwtRules") or []}


@rule("JWT-02", Needs("pod that a gateway route reaches", lambda bundle: bool(mesh.api_pods(bundle))))
def principal_required_on_api(bundle: Bundle) -> list[str]:
    gaps = []
    prefix = _api()["path_prefix"]
    for pod, routes in _api_pods(bundle):
        ports = {mesh.target_port(bundle, route, pod) for route in routes}
        policies = mesh.allow_policies(bundle, pod)
        if not policies:
            dry = [ap.ref for ap in bundle.of_kind("AuthorizationPolicy")
                   if mesh.dry_run(ap) and mesh.applies_to(ap, pod)]
            gaps.append(f"{pod.owner.ref}: no ALLOW AuthorizationPolicy applies, so requests to {prefix} "
                        "without a token pass (RequestAuthentication rejects only bad tokens)"
                        + (f"; {', '.join(dry)} is in dry run ({mesh.DRY_RUN}) and enforces nothing" if dry else ""))
            continue
        issuers = _issuers(bundle, pod)
        for ap in policies:
            for i, ap_rule in enumerate(ap.spec.get("rules") or []):
                if not any(mesh.rule_reaches(ap_rule, prefix, port) for port in ports):
                    continue
                where = f"{ap.ref} rules[{i}]"
                if mesh.when_requires_principal(ap_rule):
                    continue
                sources = [f.get("source") or {} for f in ap_rule.get("from") or []]
                if not sources:
                    gaps.append(f"{where}: allows requests to {prefix} from any source without a request principal")
                for j, source in enumerate(sources):
                    if not mesh.source_requires_principal(source):
                        gaps.append(f"{where} from[{j}]: allows requests to {prefix} without a request principal")
                        continue
                    for principal in source["requestPrincipals"]:
                        if not _principal_fits(principal, _contract()["issuer"]):
                            gaps.append(f"{where} from[{j}]: requestPrincipal {principal} does not name the "
                                        f"expected issuer {_contract()['issuer']}")
                        if not any(_principal_fits(principal, iss) for iss in issuers):
                            known = ", ".join(sorted(issuers)) or "none"
                            gaps.append(f"{where} from[{j}]: requestPrincipal {principal} names an issuer no "
                                        f"RequestAuthentication of the workload validates ({known})")
    return gaps


@rule("JWT-03", kinds("AuthorizationPolicy"))
def no_allow_all(bundle: Bundle) -> list[str]:
    gaps = []
    for ap in bundle.of_kind("AuthorizationPolicy"):
        if (ap.spec.get("action") or "ALLOW") != "ALLOW":
            continue
        for i, ap_rule in enumerate(ap.spec.get("rules") or []):
            if mesh.is_allow_all(ap_rule):
                gaps.append(f"{ap.ref}: rules[{i}] is {{}} (or only empty clauses), which allows every request")
    return gaps


# Source fields that name who the caller is (a peer identity, its namespace, a token's principal); an
# address or a negation alone admits every caller it does not exclude.
IDENTITY_FIELDS = ("principals", "requestPrincipals", "namespaces")
IDENTITY_KEYS = ("request.auth.principal", "request.auth.claims", "source.principal", "source.namespace")


def _names_callers(ap_rule: dict) -> bool:
    """Whether an ALLOW rule admits only callers it identifies: every source names an identity (not just
    `*`), or a condition does."""
    if any(c.get("key", "").startswith(IDENTITY_KEYS) and c.get("values") for c in ap_rule.get("when") or []):
        return True
    sources = [(f or {}).get("source") or {} for f in ap_rule.get("from") or []]
    return bool(sources) and all(
        any(v not in (None, "*") for field in IDENTITY_FIELDS for v in source.get(field) or []) for source in sources)


@rule("JWT-03", WORKLOADS)
def allow_rules_name_callers(bundle: Bundle) -> list[str]:
    """Every ALLOW rule that reaches a workload admits only identified callers, on whatever port it opens:
    a rule for another port without a principal is an allow-all for that port."""
    gaps = []
    for ap in bundle.of_kind("AuthorizationPolicy"):
        if (ap.spec.get("action") or "ALLOW") != "ALLOW" or not any(mesh.applies_to(ap, p) for p in bundle.pods):
            continue
        for i, ap_rule in enumerate(ap.spec.get("rules") or []):
            if isinstance(ap_rule, dict) and not mesh.is_allow_all(ap_rule) and not _names_callers(ap_rule):
                ports = sorted({str(p) for t in ap_rule.get("to") or [] for p in
                                ((t or {}).get("operation") or {}).get("ports") or []})
                gaps.append(f"{ap.ref}: rules[{i}] admits callers without a principal, a namespace or a token "
                            f"(on {'port ' + ', '.join(ports) if ports else 'every port'})")
    return gaps
