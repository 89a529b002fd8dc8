"""The image-list check that stops a node image from being committed without an image it needs."""

from __future__ import annotations

import pytest

from conformance.images import nodecheck

KUBEADM_LIST = [
    "registry.k8s.io/kube-apiserver:v1.34.0",
    "registry.k8s.io/kube-controller-manager:v1.34.0",
    "registry.k8s.io/kube-scheduler:v1.34.0",
    "registry.k8s.io/kube-proxy:v1.34.0",
    "registry.k8s.io/coredns/coredns:v1.12.1",
    "registry.k8s.io/pause:3.10.1",
    "registry.k8s.io/etcd:3.6.4-0",
]


def test_complete_node_passes():
    """A node holding every image kubeadm lists passes."""
    nodecheck.assert_complete(KUBEADM_LIST, KUBEADM_LIST, node="n")


def test_missing_image_is_named():
    """A node without etcd fails, and the message names etcd and the node."""
    present = [ref for ref in KUBEADM_LIST if "etcd" not in ref]
    with pytest.raises(nodecheck.NodeImageIncomplete, match=r"node image n lacks 1 .*registry\.k8s\.io/etcd:3\.6\.4-0"):
        nodecheck.assert_complete(KUBEADM_LIST, present, node="n")


def test_wrong_tag_counts_as_missing():
    """pause:3.10 does not stand in for the pause:3.10.1 kubeadm asks for."""
    present = [ref.replace("pause:3.10.1", "pause:3.10") for ref in KUBEADM_LIST]
    assert nodecheck.missing(KUBEADM_LIST, present) == ["registry.k8s.io/pause:3.10.1"]


def test_docker_hub_short_names_match_containerd_names():
    """A short Docker Hub name matches containerd's fully qualified one."""
    required = ["cloudnativelabs/kube-router:v2.1.0", "busybox"]
    present = ["docker.io/cloudnativelabs/kube-router:v2.1.0", "docker.io/library/busybox:latest"]
    assert nodecheck.missing(required, present) == []


def test_extra_images_are_fine():
    """Images beyond the required list (the CNI, add-ons, digests) do not fail the check."""
    present = [*KUBEADM_LIST, "docker.io/cloudnativelabs/kube-router:v2.1.0"]
    assert nodecheck.missing(KUBEADM_LIST, present) == []


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("x/y:1", "docker.io/x/y:1"),
        ("localhost:5000/y", "localhost:5000/y:latest"),
        ("registry.k8s.io/pause@sha256:abc", "registry.k8s.io/pause@sha256:abc"),
        ("cortex.local/kind-node:v1.34.0", "cortex.local/kind-node:v1.34.0"),
    ],
    ids=["hub-library", "hub-user", "registry-port", "digest", "local-domain"],
)
def test_normalize(ref, expected):
    """References are compared fully qualified, the way containerd lists them."""
    assert nodecheck.normalize(ref) == expected
