"""An object the cluster refuses at apply time is recorded for SCHEMA-03 with the cluster's reason, the rest of the
overlay is still applied, and the run goes on; an apply that fails for no object's sake still ends the run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conformance.live.access.kube import KubeError
from conformance.live.phases.workload import Workload, refusal

ALLOW = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "cortex-api", "namespace": "cortex-dev"}, "spec": {"action": "ALLOW"}}
CUSTOM = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
          "metadata": {"name": "cortex-api-ext-authz", "namespace": "cortex-dev"}, "spec": {"action": "CUSTOM"}}
REASON = ('admission webhook "validation.istio.io" denied the request: configuration is invalid: '
          "CUSTOM action without provider")


class FakeKube:
    """A cluster whose webhook refuses every CUSTOM policy; `broken` refuses every apply for no object's sake."""

    def __init__(self, broken: bool = False) -> None:
        self.broken, self.applied = broken, []

    def apply(self, manifest: str, *, what: str = "manifests", manager: str = "cortex-conformance") -> None:
        docs = [d for d in yaml.safe_load_all(manifest) if d]
        if self.broken:
            raise KubeError(f"applying {what} failed: the server is currently unable to handle the request")
        self.applied += [d["metadata"]["name"] for d in docs if d["spec"]["action"] != "CUSTOM"]
        if any(d["spec"]["action"] == "CUSTOM" for d in docs):
            raise KubeError(f"applying {what} failed: Error from server (Forbidden): error when creating: {REASON}")

    def run(self, *args: str, **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(args), 0, "", "")


def _workload(kube: FakeKube, tmp_path: Path) -> tuple[Workload, list[str]]:
    said: list[str] = []
    workload = Workload(options=None, images=None, kube=kube, work=tmp_path, progress=said.append)
    workload.wait_rollout = lambda timeout=0: None  # no cluster to roll out on
    return workload, said


def test_refused_object_is_recorded_with_the_webhooks_reason(tmp_path):
    kube = FakeKube()
    workload, said = _workload(kube, tmp_path)
    workload.apply_overlay(yaml.safe_dump_all([ALLOW, CUSTOM]))
    assert workload.refused == [("AuthorizationPolicy cortex-dev/cortex-api-ext-authz",
                                 f"Error from server (Forbidden): error when creating: {REASON}")]
    assert "cortex-api" in kube.applied, "the admitted objects must still be applied"
    assert workload.rendered
    assert any("cortex-api-ext-authz" in line for line in said)


def test_a_clean_apply_clears_the_last_refusals(tmp_path):
    workload, _ = _workload(FakeKube(), tmp_path)
    workload.apply_overlay(yaml.safe_dump_all([ALLOW, CUSTOM]))
    workload.apply_overlay(yaml.safe_dump_all([ALLOW]))
    assert workload.refused == []


def test_an_apply_the_cluster_did_not_judge_still_ends_the_run(tmp_path):
    """A server that does not answer refuses every object alike; that says nothing about the manifests."""
    workload, _ = _workload(FakeKube(broken=True), tmp_path)
    with pytest.raises(KubeError, match="unable to handle the request"):
        workload.apply_overlay(yaml.safe_dump_all([ALLOW, CUSTOM]))


@pytest.mark.parametrize(("reason", "refused"), [
    (REASON, True),
    ('The HorizontalPodAutoscaler "cortex-api" is invalid: spec.minReplicas: Invalid value: 0', True),
    ('Error from server (BadRequest): strict decoding error: unknown field "spec.mtls.mod"', True),
    ('Internal error occurred: failed calling webhook "validation.istio.io": connection refused', False),
    ("Unable to connect to the server: dial tcp 127.0.0.1:6443: connect: connection refused", False),
    ('Error from server (Forbidden): peerauthentications is forbidden: User "x" cannot patch', False),
])
def test_only_the_clusters_judgement_is_a_refusal(reason, refused):
    assert refusal(reason) is refused


def test_what_the_cluster_holds_is_what_the_next_apply_is_compared_with(tmp_path):
    """A refused new object is left out of `rendered`; a refused change keeps the version the cluster kept, so a
    fault's undo sees no Istio change to wait for a push of."""
    workload, _ = _workload(FakeKube(), tmp_path)
    workload.apply_overlay(yaml.safe_dump_all([ALLOW]))
    workload.apply_overlay(yaml.safe_dump_all([ALLOW, CUSTOM]))
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(workload.rendered)] == ["cortex-api"]
    changed = {**ALLOW, "spec": {"action": "CUSTOM"}}
    workload.apply_overlay(yaml.safe_dump_all([changed]))
    assert list(yaml.safe_load_all(workload.rendered)) == [ALLOW]
