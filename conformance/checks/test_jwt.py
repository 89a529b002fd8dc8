"""JWT: token validation, a principal required on every API path, no allow-all rule."""

import pytest

from conformance.plugin import holds
from conformance.rules import jwt

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
