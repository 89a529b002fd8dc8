"""MTLS: STRICT mutual TLS for the workload, no downgrade, sidecars injected."""

import pytest

from conformance.plugin import holds
from conformance.rules import mtls

static = pytest.mark.static


@static
@pytest.mark.control("MTLS-01")
def test_strict_peer_authentication(bundle):
    """MTLS-01: STRICT PeerAuthentication covers every pod, with no port- or workload-level exception."""
    holds(mtls.strict_peer_authentication(bundle))


@static
@pytest.mark.control("MTLS-02")
def test_no_tls_downgrade(bundle):
    """MTLS-02: DestinationRules keep ISTIO_MUTUAL toward in-mesh hosts and never downgrade TLS."""
    holds(mtls.no_tls_downgrade(bundle))


@static
@pytest.mark.control("MTLS-03")
def test_sidecar_injected(bundle):
    """MTLS-03: injection is on for the namespace and no pod opts out."""
    holds(mtls.sidecar_injected(bundle))
