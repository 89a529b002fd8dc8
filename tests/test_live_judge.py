"""The judgements of live evidence, on evidence written by hand: every vacuous case must be a gap."""

from __future__ import annotations

import subprocess

import pytest

from conformance.live.access import diagnose
from conformance.live.evidence import judge, traffic
from conformance.live.evidence.traffic import _parse_curl

# --- curl output ----------------------------------------------------------------------------------


def test_curl_parse_takes_the_last_response_of_a_redirect_chain():
    raw = ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
           "www-authenticate: Bearer\r\n\r\nRBAC: access denied")
    status, headers, body = _parse_curl(raw)
    assert (status, headers["www-authenticate"], body) == (403, "Bearer", "RBAC: access denied")


def test_curl_parse_without_an_answer_has_no_status():
    assert _parse_curl("") == (None, {}, "")


# --- probes: how an exec's output becomes outcomes -------------------------------------------------------


class _Exec:
    """A stand-in for Kube whose every `kubectl exec` ends as given."""

    def __init__(self, returncode: int, stdout: str = "", stderr: str = "") -> None:
        self.answer = subprocess.CompletedProcess([], returncode, stdout, stderr)

    def run(self, *args, **kwargs) -> subprocess.CompletedProcess:
        return self.answer


def test_bash_tcp_batch_maps_exit_codes_and_errors_the_rest():
    found = traffic.bash_tcp_batch(_Exec(0, "0 0\n1 1\n2 124\n3 127\n"), "ns", "p", "istio-proxy",
                                   [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)])
    assert [r.outcome for r in found] == ["connected", "refused", "timeout", "error", "error"]


def test_bash_tcp_failed_exec_is_an_error_not_refused():
    """kubectl exec exits 1 when it cannot run at all, the code bash gives a refused connect."""
    found = traffic.bash_tcp(_Exec(1, "", 'Error from server (NotFound): pods "p" not found'), "ns", "p",
                             "istio-proxy", "10.0.0.1", 80)
    assert found.outcome == "error"
    assert "NotFound" in found.note


def test_standin_batch_with_wrong_line_count_is_all_errors():
    line = '{"outcome": "timeout"}\n'
    found = traffic.standin_batch(_Exec(0, line), "ns", "p", [{"kind": "tcp", "target": "a:1"},
                                                              {"kind": "tcp", "target": "b:2"}])
    assert [r.outcome for r in found] == ["error", "error"]


def test_standin_batch_unparseable_line_is_an_error():
    found = traffic.standin_batch(_Exec(0, 'garbage\n{"outcome": "refused"}\n'), "ns", "p",
                                  [{"kind": "tcp", "target": "a:1"}, {"kind": "tcp", "target": "b:2"}])
    assert [r.outcome for r in found] == ["error", "refused"]


def test_standin_probe_without_output_is_an_error():
    assert traffic.standin_probe(_Exec(1, "", "error: unable to upgrade connection"), "ns", "p", "tcp",
                                 "a:1").outcome == "error"


def test_curl_in_pod_reset_is_a_curl_outcome():
    found = traffic.curl_in_pod(_Exec(56, "", "curl: (56) Recv failure: Connection reset by peer"), "ns", "p",
                                "http://x")
    assert (found.outcome, found.error) == ("", "")
    assert judge.plaintext_refused("Service x", found.status, found.exit_code, [56], found.note,
                                   errored=bool(found.error)) == []


def test_curl_in_pod_failed_exec_is_an_error_not_a_curl_exit():
    """kubectl's own failure exits 1 with no curl line: the probe never ran, whatever the code says."""
    found = traffic.curl_in_pod(_Exec(1, "", 'Error from server (NotFound): pods "p" not found'), "ns", "p",
                                "http://x")
    assert found.outcome == "error"
    assert "could not run" in found.answered()
    gaps = judge.plaintext_refused("Service x", found.status, found.exit_code, [1], found.note,
                                   errored=bool(found.error))
    assert gaps
    assert "could not probe" in gaps[0]


def test_curl_in_pod_answer_is_not_an_error():
    found = traffic.curl_in_pod(_Exec(0, "HTTP/1.1 403 Forbidden\r\n\r\nRBAC: access denied"), "ns", "p",
                                "http://x")
    assert (found.status, found.error, found.answered()) == (403, "", "HTTP 403")


# --- MTLS-01 ----------------------------------------------------------------------------------------


def test_plaintext_reset_by_the_sidecar_holds():
    assert judge.plaintext_refused("Service x", None, 56, [56]) == []


def test_plaintext_answered_is_a_gap():
    assert "got HTTP 200" in judge.plaintext_refused("Service x", 200, 0, [56])[0]


@pytest.mark.parametrize("exit_code", [7, 28, 6])
def test_plaintext_stopped_before_mtls_is_a_gap(exit_code):
    """Refused by a NetworkPolicy, timed out or unresolvable: mTLS was never exercised, so it cannot pass."""
    gaps = judge.plaintext_refused("Service x", None, exit_code, [56])
    assert gaps
    assert "never reached mTLS" in gaps[0]


def test_plaintext_client_missing_is_a_gap():
    gaps = judge.plaintext_refused("Service x", None, 1, [56], note='Error from server (NotFound): pods "c" not found')
    assert gaps
    assert "could not probe" in gaps[0]


# --- the network matrix -----------------------------------------------------------------------------


def _cell(expected: bool, outcome: str | None, reason: str = "") -> judge.Cell:
    return judge.Cell("a", "b", "8080/TCP", expected, outcome, reason)


def test_matrix_matching_holds():
    assert judge.matrix_verdict([_cell(True, "connected"), _cell(False, "timeout")], "m") == []


def test_matrix_mismatch_names_the_flow():
    gaps = judge.matrix_verdict([_cell(False, "connected")], "m")
    assert gaps == ["NetworkPolicy flow a -> b 8080/TCP: allowed but not expected (probe outcome connected)"]


def test_matrix_with_nothing_probed_fails():
    gaps = judge.matrix_verdict([_cell(True, None, "no Ready pod")], "m")
    assert any("could not be probed" in g for g in gaps)
    assert any("nothing was observed" in g for g in gaps)


def test_matrix_empty_fails():
    assert judge.matrix_verdict([], "m") == ["no cell of m was probed: nothing was observed"]


def test_matrix_deliberately_unprobed_cells_do_not_fail_but_do_not_count():
    cells = [_cell(True, "connected"), _cell(True, None, f"{judge.DELIBERATELY_UNPROBED} no public address")]
    assert judge.matrix_verdict(cells, "m") == []
    assert judge.matrix_verdict(cells[1:], "m") == ["no cell of m was probed: nothing was observed"]


def test_dns_nxdomain_means_the_server_answered():
    assert _cell(True, "nxdomain").observed is True


@pytest.mark.parametrize("expected", [True, False])
def test_errored_probe_is_unprobed_never_blocked(expected):
    """A failed exec reads as no observation: a row expecting only blocked cells cannot pass on it."""
    cell = _cell(expected, "error", "Error from server (NotFound): pods \"c\" not found (kubectl exec ...)")
    assert cell.observed is None
    gaps = judge.matrix_verdict([cell], "m")
    assert any("could not be probed" in g and "errored" in g and "not found" in g for g in gaps)
    assert any("nothing was observed" in g for g in gaps)


def test_one_errored_cell_fails_a_row_that_otherwise_matches():
    cells = [_cell(False, "timeout"), _cell(False, "refused"), _cell(False, "error", "exit 137")]
    gaps = judge.matrix_verdict(cells, "cortex-api's ingress")
    assert len(gaps) == 1
    assert "1 cell(s) of cortex-api's ingress could not be probed" in gaps[0]
    assert "exit 137" in gaps[0]


@pytest.mark.parametrize("outcome", ["", "weird", "ERROR"])
def test_unknown_outcome_is_not_blocked(outcome):
    assert _cell(False, outcome).observed is None
    assert judge.matrix_verdict([_cell(False, outcome)], "m")


@pytest.mark.parametrize("outcome", sorted(judge.BLOCKED_OUTCOMES))
def test_blocked_outcomes(outcome):
    assert _cell(False, outcome).observed is False


def test_address_block_without_reason_is_a_hole():
    """Only a deliberate reason (live.yaml's) leaves a cell to the static tier; anything else is unprobed."""
    gaps = judge.matrix_verdict([_cell(True, "connected"), _cell(False, None, "address block x has no pod")], "m")
    assert any("could not be probed" in g for g in gaps)


def test_deferred_cells_are_named_with_their_reason():
    cells = [_cell(True, "connected"), _cell(True, None, f"{judge.DELIBERATELY_UNPROBED} answers nowhere")]
    assert judge.deferred_cells(cells) == ["a -> b 8080/TCP: not probed live; answers nowhere"]


# --- NET-01: the canary ---------------------------------------------------------------------------------


def test_canary_connects_then_is_denied():
    assert judge.canary_gaps("c", "connected", "", "timeout", "") == []
    assert judge.canary_gaps("c", "connected", "", "refused", "") == []


def test_canary_still_connecting_is_a_gap():
    assert "still succeeds" in judge.canary_gaps("c", "connected", "", "connected", "")[0]


def test_canary_error_after_the_deny_is_not_the_deny_working():
    gaps = judge.canary_gaps("c", "connected", "", "error", "exec failed")
    assert gaps
    assert "after the deny policy errored" in gaps[0]
    assert "exec failed" in gaps[0]


def test_canary_error_before_the_deny_is_named():
    gaps = judge.canary_gaps("c", "error", "no such pod", "timeout", "")
    assert "before any policy errored" in gaps[0]


def test_canary_blocked_before_any_policy_is_a_broken_network():
    assert "network itself is broken" in judge.canary_gaps("c", "timeout", "", "timeout", "")[0]


# --- AVAIL-01: the Eviction API ------------------------------------------------------------------------


def test_budget_of_one_grants_one_refuses_the_rest():
    assert judge.eviction_gaps("PDB x", {"p1": 201, "p2": 429, "p3": 429}, 1) == []


def test_no_budget_lets_every_pod_go():
    gaps = judge.eviction_gaps("PDB x", {"p1": 201, "p2": 201}, 1)
    assert gaps
    assert "more than the 1 the budget allows" in gaps[0]


def test_budget_that_blocks_every_eviction_is_a_drain_deadlock():
    gaps = judge.eviction_gaps("PDB x", {"p1": 429, "p2": 429}, 1)
    assert gaps
    assert "a drain would hang" in gaps[0]


def test_one_pod_cannot_show_a_budget():
    assert "only 1 pod(s)" in judge.eviction_gaps("PDB x", {"p1": 201}, 1)[0]


def test_an_eviction_error_is_not_a_refusal():
    gaps = judge.eviction_gaps("PDB x", {"p1": 201, "p2": 0}, 1)
    assert any("neither granted nor refused" in g for g in gaps)


# --- HPA-01, SEC-04 -----------------------------------------------------------------------------------


def test_replica_bounds_and_target():
    spec = {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "minReplicas": 2, "maxReplicas": 4}
    assert judge.replica_gaps("HPA x", spec, {"min_replicas": 2, "max_replicas": 4}, "api") == []
    gaps = judge.replica_gaps("HPA x", {**spec, "minReplicas": 1, "scaleTargetRef": {"kind": "Deployment",
                                                                                      "name": "gone"}},
                              {"min_replicas": 2, "max_replicas": 4}, "api")
    assert len(gaps) == 2


@pytest.mark.parametrize(("ref", "mutable"), [
    ("cortex.local/agent:latest", True), ("cortex.local/agent", True), ("localhost:5000/agent", True),
    ("cortex.local/agent:2.7.2", False), ("localhost:5000/agent@sha256:" + "a" * 64, False),
])
def test_mutable_image(ref, mutable):
    assert judge.mutable_image(ref, ["latest"]) is mutable


# --- diagnosis ----------------------------------------------------------------------------------------


def test_unavailable_apiservice_is_named():
    found = diagnose.unavailable_apiservices({"items": [
        {"metadata": {"name": "v1beta1.metrics.k8s.io"},
         "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}},
        {"metadata": {"name": "v1.apps"}, "status": {"conditions": [{"type": "Available", "status": "True"}]}}]})
    assert len(found) == 1
    assert "v1beta1.metrics.k8s.io is unavailable (MissingEndpoints)" in found[0]


def test_stuck_namespace_names_its_condition():
    found = diagnose.stuck_namespaces({"items": [{"metadata": {"name": "cortex-dev"}, "status": {
        "phase": "Terminating", "conditions": [
            {"type": "NamespaceDeletionDiscoveryFailure", "status": "True",
             "message": "Discovery failed for some groups: metrics.k8s.io/v1beta1"}]}}]})
    assert found == ["namespace cortex-dev is stuck terminating: NamespaceDeletionDiscoveryFailure: Discovery failed "
                     "for some groups: metrics.k8s.io/v1beta1"]


def test_component_without_endpoints():
    slices = {"items": [{"metadata": {"namespace": "istio-system", "labels": {
        "kubernetes.io/service-name": "istiod"}}, "endpoints": [{"conditions": {"ready": False}}]}]}
    found = diagnose.components_without_endpoints(slices, {("istio-system", "istiod"), ("vault", "vault")})
    assert len(found) == 2
    assert any("istiod" in f for f in found)
    assert any("vault/vault" in f for f in found)


# --- VAULT-02: the agent's files, by digest -----------------------------------------------------------


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


KNOWN = {_sha("gh-value"): "the value of key token of cortex-api/dev/github",
         _sha("oa-value"): "the value of key api_key of cortex-api/dev/openai"}


def test_secret_file_with_the_contract_content_holds():
    seen = {"path": "/vault/secrets/github-token", "sha256": _sha("gh-value"), "bytes": 8}
    assert judge.secret_file_gaps("Pod x", "/vault/secrets/github-token", seen, _sha("gh-value"), "key token",
                                  KNOWN) == []


def test_secret_file_with_another_key_names_it():
    """A template that renders the wrong key: the file exists, but holds another secret's value."""
    seen = {"sha256": _sha("oa-value"), "bytes": 8}
    gaps = judge.secret_file_gaps("Pod x", "/vault/secrets/github-token", seen, _sha("gh-value"),
                                  "key token of cortex-api/dev/github", KNOWN)
    assert gaps == ["Pod x: /vault/secrets/github-token does not hold what the contract renders (key token of "
                    "cortex-api/dev/github); it holds the value of key api_key of cortex-api/dev/openai"]


@pytest.mark.parametrize(("seen", "fragment"), [
    (None, "not reported"), ({"error": "no such file or directory"}, "is missing or unreadable"),
    ({"sha256": _sha(""), }, "an empty file"), ({"sha256": _sha("other"), "bytes": 5}, "5 bytes matching no value"),
])
def test_secret_file_gaps_name_what_was_found(seen, fragment):
    gaps = judge.secret_file_gaps("Pod x", "/f", seen, _sha("gh-value"), "key token", KNOWN)
    assert fragment in gaps[0]
