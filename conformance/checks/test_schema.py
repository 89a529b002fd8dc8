"""SCHEMA: strict validation of every rendered object.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance.plugin import holds
from conformance.static.rules import currency, validity, webhook

pytestmark = pytest.mark.static


@pytest.mark.control("SCHEMA-01")
def test_kubernetes_objects_match_schema(bundle):
    """SCHEMA-01: Kubernetes kinds validate strictly against the pinned Kubernetes schemas."""
    holds(validity.kubernetes_schema(bundle))


@pytest.mark.control("SCHEMA-01")
def test_apis_current_for_the_minor(bundle):
    """SCHEMA-01: no API the chosen Kubernetes minor no longer serves, no field it lacks or has deprecated."""
    holds(currency.apis_current(bundle))


@pytest.mark.control("SCHEMA-02")
def test_istio_objects_match_schema(bundle):
    """SCHEMA-02: Istio kinds validate strictly against the pinned Istio CRD schemas."""
    holds(validity.istio_schema(bundle))


@pytest.mark.control("SCHEMA-01")
def test_object_names_valid(bundle):
    """SCHEMA-01: names, namespaces, label and annotation keys are what the API server accepts."""
    holds(validity.object_names(bundle))


@pytest.mark.control("SCHEMA-03")
def test_istio_objects_pass_istiod_validation(bundle):
    """SCHEMA-03: Istio objects pass the semantic rules of istiod's validating webhook, beyond the CRDs' own."""
    holds(webhook.istiod_validation(bundle))
