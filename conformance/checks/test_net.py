"""NET: default deny, the expected flow matrix, narrow ingress and egress."""

import pytest

from conformance.plugin import holds
from conformance.rules import network

static = pytest.mark.static


@static
@pytest.mark.control("NET-01")
def test_default_deny(bundle):
    """NET-01: every namespace denies ingress and egress by default."""
    holds(network.default_deny(bundle))


@static
@pytest.mark.control("NET-02")
def test_matrix_matches_expectations(bundle, record_matrix):
    """NET-02: the flows the policies allow equal fixtures/expectations/network.yaml."""
    record_matrix("network", "static", bundle.name, [c.as_json() for c in network.model(bundle).cells()])
    holds(network.matrix_matches_expectations(bundle))


@static
@pytest.mark.control("NET-03")
def test_api_ingress_only_from_gateway_and_scraping(bundle):
    """NET-03: no ingress rule admits cortex-api traffic around the gateway or beyond metrics scraping."""
    holds(network.api_ingress_only_from_gateway_and_scraping(bundle))


@static
@pytest.mark.control("NET-04")
def test_policies_select_pods(bundle):
    """NET-04: every NetworkPolicy with a podSelector selects pods that exist."""
    holds(network.policies_select_pods(bundle))


@static
@pytest.mark.control("NET-05")
def test_egress_only_where_needed(bundle):
    """NET-05: cortex-api egress names its destinations and ports; broad blocks only for external HTTPS."""
    holds(network.egress_only_where_needed(bundle))
