"""GW: TLS at the Gateway, routes that match, no other way in.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance import fixtures
from conformance.live.evidence import judge, observe
from conformance.plugin import holds
from conformance.static.rules import gateway

static = pytest.mark.static


@static
@pytest.mark.control("GW-01")
def test_gateway_serves_tls_and_redirects(bundle):
    """GW-01: the Gateway serves HTTPS from a credential and redirects HTTP."""
    holds(gateway.gateway_serves_tls_and_redirects(bundle))


@static
@pytest.mark.control("GW-02")
def test_routes_match_gateway_and_service(bundle):
    """GW-02: VirtualService hosts, gateways and destinations resolve, with timeouts and retries."""
    holds(gateway.routes_match_gateway_and_service(bundle))


@static
@pytest.mark.control("GW-02")
def test_no_traffic_copied_out(bundle):
    """GW-02: no route mirrors requests outside the mesh's Services; no CORS admits any origin with credentials."""
    holds(gateway.no_traffic_copied_out(bundle))


@static
@pytest.mark.control("GW-02")
def test_retries_only_before_the_request(bundle):
    """GW-02: a route that lets POST through retries only when the request never reached the application."""
    holds(gateway.retries_only_before_the_request(bundle))


@static
@pytest.mark.control("GW-03")
def test_only_through_gateway(bundle):
    """GW-03: no LoadBalancer or NodePort Service, Ingress, Gateway API route, hostPort or hostNetwork."""
    holds(gateway.only_through_gateway(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live


@live
@pytest.mark.control("GW-01")
def test_http_redirects_to_https(live, gateway, evidence):
    """GW-01: plain HTTP to the gateway is redirected to HTTPS, never served."""
    spec, host = observe.expectations()["gateway"], fixtures.workload().gateway.host
    result = gateway.request(spec["api_path"], scheme="http")
    evidence.append(result.evidence())
    location = result.headers.get("location", "")
    if result.status not in spec["redirect_statuses"] or not location.startswith(f"https://{host}"):
        pytest.fail(f"{fixtures.workload().ref('Gateway')}: HTTP got {judge.answered(result.status, result.exit_code)} "
                    f"with location {location or 'none'}, expected a redirect to https://{host}", pytrace=False)


@live
@pytest.mark.control("GW-02")
def test_https_reaches_cortex_api(live, gateway, evidence):
    """GW-02: HTTPS through the gateway, with the run's certificate and a valid token, reaches cortex-api."""
    valid = live.workload.tokens.case("valid")
    path = observe.expectations()["gateway"]["models_path"]
    result = gateway.request(path, headers=valid.headers, what="the valid token")
    evidence.append(result.evidence())
    if result.status != 200 or '"object"' not in result.body:
        pytest.fail(f"{fixtures.workload().ref('Gateway')}: GET {path} got "
                    f"{judge.answered(result.status, result.exit_code)}, expected 200 from cortex-api"
                    + (f" ({result.note})" if result.note else ""), pytrace=False)
