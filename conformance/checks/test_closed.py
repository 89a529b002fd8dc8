"""CLOSED: what fixtures/expectations/closed_world.yaml does not name is a finding.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance.plugin import holds
from conformance.static.rules import closed

pytestmark = pytest.mark.static


@pytest.mark.control("CLOSED-01")
def test_only_named_objects(bundle):
    """CLOSED-01: each governed namespace holds only named objects and documented harmless additions."""
    holds(closed.objects_named(bundle))


@pytest.mark.control("CLOSED-02")
def test_only_named_fields(bundle):
    """CLOSED-02: named objects use only the fields, labels and annotations the expectations name."""
    holds(closed.fields_named(bundle))


@pytest.mark.control("CLOSED-03")
def test_values_as_expected(bundle):
    """CLOSED-03: every value the expectations name (sampling, retries, token locations, merged metrics, mesh
    capture, injection) is held exactly."""
    holds(closed.values_expected(bundle))
