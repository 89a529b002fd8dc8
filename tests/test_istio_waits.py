"""The install's rollout wait against a real cluster: a pod that cannot start ends it at once.

The fault is real: a Deployment whose image is absent from the node and may not be pulled
(imagePullPolicy Never), so the kubelet reports ErrImageNeverPull. Needs CORTEX_KUBECONFIG.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from conformance.errors import WaitTimeout
from conformance.live.access.kube import Kube
from conformance.live.platform import istio

KUBECONFIG = os.environ.get("CORTEX_KUBECONFIG")

STUCK = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: stuck, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: stuck}}}}
  template:
    metadata: {{labels: {{app: stuck}}}}
    spec:
      containers:
        - name: app
          image: cortex.local/absent/never:1
          imagePullPolicy: Never
"""


@pytest.fixture
def scratch():
    if not KUBECONFIG:
        pytest.skip("no cluster: set CORTEX_KUBECONFIG")
    kube = Kube(kubeconfig=Path(KUBECONFIG), context=os.environ.get("CORTEX_KUBE_CONTEXT"))
    namespace = f"istio-wait-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", namespace)
    try:
        yield kube, namespace
    finally:
        kube.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_stuck_pod_ends_the_rollout_wait_early_with_its_reason(scratch):
    """A rollout whose pod is stuck fails in seconds, naming the pod, the container and the reason."""
    kube, namespace = scratch
    kube.run("apply", "-f", "-", input=STUCK.format(ns=namespace))
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"container app is ErrImageNeverPull") as raised:
        istio.wait_rolled_out(kube, namespace, "deployment/stuck", timeout=240)
    assert time.monotonic() - started < 120, "the wait ran toward its deadline instead of ending early"
    assert f"pod {namespace}/stuck-" in str(raised.value)


def test_failed_wait_saves_events_pods_and_logs(scratch, tmp_path):
    """The evidence of a failed wait lands in the report directory, as for every live-tier wait."""
    kube, namespace = scratch
    kube.run("apply", "-f", "-", input=STUCK.format(ns=namespace))
    with pytest.raises(WaitTimeout):
        istio.wait_rolled_out(kube, namespace, "deployment/stuck", timeout=240)
    saved = istio.save_evidence(kube, namespace, tmp_path)
    assert "ErrImageNeverPull" in (saved / "describe.txt").read_text() + (saved / "pods.yaml").read_text()
    assert (saved / "events.txt").is_file()
