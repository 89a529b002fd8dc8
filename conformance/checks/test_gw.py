"""GW: TLS at the Gateway, routes that match, no other way in."""

import pytest

from conformance.plugin import holds
from conformance.rules import gateway

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
@pytest.mark.control("GW-03")
def test_only_through_gateway(bundle):
    """GW-03: no LoadBalancer or NodePort Service, Ingress, Gateway API route, hostPort or hostNetwork."""
    holds(gateway.only_through_gateway(bundle))
