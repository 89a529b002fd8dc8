"""Check messages people can read: repeated gaps folded, and no pass for a check that saw nothing."""

from __future__ import annotations

import pytest

from conformance.plugin import holds
from conformance.static.gaps import fold
from conformance.static.mutations import apply
from conformance.static.rules import RULES, NothingToCheck, load_all

load_all()


def test_gaps_differing_only_in_the_object_fold():
    gaps = [f"Deployment cortex-dev/copy-{i:05d}: no HorizontalPodAutoscaler targets it" for i in range(10_000)]
    assert fold(gaps) == [
        "Deployment cortex-dev/copy-00000: no HorizontalPodAutoscaler targets it",
        "  … and 9,999 more like it (Deployment cortex-dev/copy-00001, cortex-dev/copy-00002, "
        "cortex-dev/copy-00003, ...)"]


def test_the_name_inside_the_message_does_not_keep_gaps_apart():
    gaps = [f"HorizontalPodAutoscaler ns/h{i}: scaleTargetRef apps/v1 Deployment h{i} is not in the manifests"
            for i in range(5)]
    assert fold(gaps)[1] == "  … and 4 more like it (HorizontalPodAutoscaler ns/h1, ns/h2, ns/h3, ...)"


def test_few_or_different_gaps_stay_as_they_are():
    gaps = ["Deployment ns/a container x: runAsNonRoot is false", "Deployment ns/b container x: runAsNonRoot is false",
            "Deployment ns/a container y: runAsNonRoot is false", "matrix of dev: 2 mismatch(es)\nfrom \\ to ...",
            "no Istio Gateway in the manifests"]
    assert fold(gaps) == gaps


def test_the_same_line_repeated_folds_too():
    assert fold(["PodDisruptionBudget ns/p: protects nothing"] * 6) == [
        "PodDisruptionBudget ns/p: protects nothing", "  … and the same 5 more time(s)"]


def test_holds_folds_the_message_and_keeps_every_gap():
    gaps = [f"Deployment ns/d{i}: no HorizontalPodAutoscaler targets it" for i in range(50)]
    with pytest.raises(pytest.fail.Exception) as failed:
        holds(gaps)
    assert failed.value.msg.splitlines() == ["Deployment ns/d0: no HorizontalPodAutoscaler targets it",
                                             "  … and 49 more like it (Deployment ns/d1, ns/d2, ns/d3, ...)"]
    assert failed.value.gaps == gaps


# Rules that look at something besides the workload, and so still pass without it: schemas, names,
# istiod's webhook rules, the closed world (a missing object is other rules' finding), the mirror, CORS,
# retry and telemetry-copy scans and the plaintext-secret scan judge every object; the Gateway,
# DestinationRules, default-deny and the allow-all scan are there; the Services and HPA are there to be
# judged.
PASS_WITHOUT_WORKLOAD = {
    "validity.kubernetes_schema", "validity.istio_schema", "validity.object_names", "webhook.istiod_validation",
    "closed.objects_named", "closed.fields_named", "closed.values_expected", "vault.no_plaintext_secrets",
    "gateway.no_traffic_copied_out", "gateway.retries_only_before_the_request", "telemetry.no_credentials_in_telemetry",
    "gateway.gateway_serves_tls_and_redirects", "gateway.routes_match_gateway_and_service",
    "gateway.only_through_gateway", "mtls.no_tls_downgrade", "network.default_deny", "jwt.no_allow_all",
    "scaling.cpu_requests_for_utilisation", "scaling.scale_up_possible", "currency.apis_current",
}


def test_without_the_workload_no_rule_passes_on_nothing(dev_bundle):
    """dev without cortex-api: each rule fails, has nothing to check, or looked at something else."""
    bundle = apply(dev_bundle, [{"target": "Deployment/cortex-api", "op": "delete"}])
    passed, nothing = set(), {}
    for name, rule in RULES.items():
        try:
            if not rule(bundle):
                passed.add(name)
        except NothingToCheck as reason:
            nothing[name] = str(reason)
    assert passed == PASS_WITHOUT_WORKLOAD & set(RULES)
    assert nothing["podsecurity.run_as_non_root"] == "no workload (an object with a pod template) in the manifests"
    assert nothing["network.egress_only_where_needed"].startswith("no workload that fixtures/expectations/network")
    assert all(reason.startswith("no ") for reason in nothing.values())


def test_a_gap_is_never_hidden_by_nothing_to_check(dev_bundle):
    """MTLS-01 needs a workload, but a PERMISSIVE policy without one still fails it."""
    bundle = apply(dev_bundle, [
        {"target": "Deployment/cortex-api", "op": "delete"},
        {"target": "PeerAuthentication/default", "path": "spec.mtls.mode", "value": "PERMISSIVE"}])
    assert RULES["mtls.strict_peer_authentication"](bundle) == ["PeerAuthentication cortex-dev/default: mtls.mode is "
                                                               "PERMISSIVE"]
