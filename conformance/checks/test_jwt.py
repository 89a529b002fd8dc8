"""JWT: token validation, a principal required on every API path, no allow-all rule.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance import fixtures
from conformance.live import judge, observe
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


# --- live: the rejection matrix through the ingress gateway --------------------------------------------

live = pytest.mark.live
CASES = fixtures.expectations("jwt")["cases"]
# A case without a usable principal (no token, or one Istio must not read) is the AuthorizationPolicy's
# job (JWT-02), as is the valid token getting through; every other case is the verifier's (JWT-01).
PRINCIPAL_CASES = {c["name"] for c in CASES if c.get("token") == "none" or c.get("transport") == "query"} | {"valid"}
BODY = '{"model": "cortex-small", "messages": [{"role": "user", "content": "conformance"}]}'


@pytest.fixture(scope="session")
def observed() -> dict[str, dict]:
    """Each token case's status as seen so far in this run, for the JWT matrix of the report."""
    return {}


def _send(live, gateway, record_matrix, evidence, observed, name: str) -> None:
    case = live.workload.tokens.case(name)
    result = gateway.request(observe.expectations()["gateway"]["api_path"], method="POST", data=BODY,
                             headers=case.headers, query=case.query, what=f"the {name} token")
    evidence.append(result.evidence())
    observed[name] = {"case": name, "expected": case.status, "observed": result.status or f"exit {result.exit_code}"}
    record_matrix("jwt", "live", "dev", [observed[c["name"]] for c in CASES if c["name"] in observed])
    if result.status != case.status:
        got = judge.answered(result.status, result.exit_code)
        pytest.fail(f"{fixtures.workload().ref('Gateway')}: token case {name} got {got}, expected {case.status} "
                    f"({case.why})", pytrace=False)


@live
@pytest.mark.control("JWT-01")
@pytest.mark.parametrize("name", [c["name"] for c in CASES if c["name"] not in PRINCIPAL_CASES])
def test_bad_token_rejected(live, gateway, record_matrix, evidence, observed, name):
    """JWT-01: a token the verifier must refuse gets exactly its status from jwt.yaml through the gateway."""
    _send(live, gateway, record_matrix, evidence, observed, name)


@live
@pytest.mark.control("JWT-02")
@pytest.mark.parametrize("name", [c["name"] for c in CASES if c["name"] in PRINCIPAL_CASES])
def test_principal_required(live, gateway, record_matrix, evidence, observed, name):
    """JWT-02: no usable token is refused by the AuthorizationPolicy; only the valid token gets through."""
    _send(live, gateway, record_matrix, evidence, observed, name)
