"""JWT: token validation, a principal required on every API path, no allow-all rule.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance import fixtures
from conformance.live.evidence import judge, observe
from conformance.live.evidence.traffic import in_parallel
from conformance.plugin import holds
from conformance.static.rules import jwt

static = pytest.mark.static


@static
@pytest.mark.control("JWT-01")
def test_request_authentication(bundle):
    """JWT-01: a RequestAuthentication with issuer, https JWKS, audiences and header-only tokens selects the API."""
    holds(jwt.request_authentication(bundle))


@static
@pytest.mark.control("JWT-02")
def test_principal_required_on_api(bundle):
    """JWT-02: every ALLOW rule reaching an API path requires a request principal."""
    holds(jwt.principal_required_on_api(bundle))


@static
@pytest.mark.control("JWT-03")
def test_no_allow_all(bundle):
    """JWT-03: no AuthorizationPolicy has an ALLOW rule that matches everything."""
    holds(jwt.no_allow_all(bundle))


@static
@pytest.mark.control("JWT-03")
def test_allow_rules_name_callers(bundle):
    """JWT-03: every ALLOW rule reaching a workload names its callers (principal, namespace or token), on any port."""
    holds(jwt.allow_rules_name_callers(bundle))


# --- live: the rejection matrix through the ingress gateway --------------------------------------------

live = pytest.mark.live
CASES = fixtures.expectations("jwt")["cases"]
# A case without a usable principal (no token, or one Istio must not read) is the AuthorizationPolicy's
# job (JWT-02), as is the valid token getting through; every other case is the verifier's (JWT-01).
PRINCIPAL_CASES = {c["name"] for c in CASES if c.get("token") == "none" or c.get("transport") == "query"} | {"valid"}
BODY = '{"model": "cortex-small", "messages": [{"role": "user", "content": "conformance"}]}'


@pytest.fixture(scope="module")
def answers(live, gateway, record_matrix) -> dict:
    """Every token case sent through the gateway at once (each a request of its own), and the JWT matrix."""
    path = observe.expectations()["gateway"]["api_path"]

    def send(name: str):
        case = live.workload.tokens.case(name)
        return gateway.request(path, method="POST", data=BODY, headers=case.headers, query=case.query,
                               what=f"the {name} token")

    names = [c["name"] for c in CASES]
    results = dict(zip(names, in_parallel([lambda n=n: send(n) for n in names]), strict=True))
    record_matrix("jwt", "live", "dev", [
        {"case": n, "expected": live.workload.tokens.case(n).status,
         "observed": r.status or f"exit {r.exit_code}"} for n, r in results.items()])
    return results


def _send(live, answers, evidence, name: str) -> None:
    case = live.workload.tokens.case(name)
    result = answers[name]
    evidence.append(result.evidence())
    if result.status != case.status:
        got = judge.answered(result.status, result.exit_code)
        pytest.fail(f"{fixtures.workload().ref('Gateway')}: token case {name} got {got}, expected {case.status} "
                    f"({case.why})", pytrace=False)


@live
@pytest.mark.control("JWT-01")
@pytest.mark.parametrize("name", [c["name"] for c in CASES if c["name"] not in PRINCIPAL_CASES])
def test_bad_token_rejected(live, answers, evidence, name):
    """JWT-01: a token the verifier must refuse gets exactly its status from jwt.yaml through the gateway."""
    _send(live, answers, evidence, name)


@live
@pytest.mark.control("JWT-02")
@pytest.mark.parametrize("name", [c["name"] for c in CASES if c["name"] in PRINCIPAL_CASES])
def test_principal_required(live, answers, evidence, name):
    """JWT-02: no usable token is refused by the AuthorizationPolicy; only the valid token gets through."""
    _send(live, answers, evidence, name)
