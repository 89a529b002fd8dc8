"""SCHEMA: strict validation of every rendered object; live, the cluster admits every one.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance.plugin import holds
from conformance.static.rules import currency, validity, webhook

static = pytest.mark.static


@static
@pytest.mark.control("SCHEMA-01")
def test_kubernetes_objects_match_schema(bundle):
    """SCHEMA-01: Kubernetes kinds validate strictly against the pinned Kubernetes schemas."""
    holds(validity.kubernetes_schema(bundle))


@static
@pytest.mark.control("SCHEMA-01")
def test_apis_current_for_the_minor(bundle):
    """SCHEMA-01: no API the chosen Kubernetes minor no longer serves, no field it lacks or has deprecated."""
    holds(currency.apis_current(bundle))


@static
@pytest.mark.control("SCHEMA-02")
def test_istio_objects_match_schema(bundle):
    """SCHEMA-02: Istio kinds validate strictly against the pinned Istio CRD schemas."""
    holds(validity.istio_schema(bundle))


@static
@pytest.mark.control("SCHEMA-01")
def test_object_names_valid(bundle):
    """SCHEMA-01: names, namespaces, label and annotation keys are what the API server accepts."""
    holds(validity.object_names(bundle))


@static
@pytest.mark.control("SCHEMA-03")
def test_istio_objects_pass_istiod_validation(bundle):
    """SCHEMA-03: Istio objects pass the semantic rules of istiod's validating webhook, beyond the CRDs' own."""
    holds(webhook.istiod_validation(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live


@live
@pytest.mark.control("SCHEMA-03")
def test_cluster_admits_every_object(live, evidence):
    """SCHEMA-03: the API server and its admission webhooks admitted every object of the overlay, and each exists."""
    workload = live.workload
    if not workload.rendered:
        pytest.fail("the conformance overlay was never applied, so its admission could not be checked", pytrace=False)
    gaps = [f"{ref}: the cluster refused it at apply time: {why}" for ref, why in workload.refused]
    # What the cluster holds of what it admitted (refused objects are left out of `rendered`), asked by the objects
    # themselves: one that vanished after it was admitted (a controller or a later apply removed it) is NotFound.
    found = live.kube.run("get", "-f", "-", "-o", "name", input=workload.rendered, check=False)
    problems = [line.strip() for line in found.stderr.splitlines() if line.strip()]
    missing = [line for line in problems if "(NotFound)" in line]
    if len(missing) != len(problems):
        pytest.fail(f"the overlay's objects could not be listed: {next(p for p in problems if p not in missing)}",
                    pytrace=False)
    gaps += [f"{line.split(': ', 1)[-1]} in the cluster, though it was admitted" for line in missing]
    evidence.append({"command": "kubectl get -f <the applied overlay> -o name",
                     "note": f"{len(found.stdout.split())} object(s) of the overlay exist; "
                             f"{len(workload.refused)} refused at apply time"})
    holds(gaps)
