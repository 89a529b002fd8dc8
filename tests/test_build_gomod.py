"""Wrapper go.mod generation: upstream replace directives restated so a wrapper builds the tag's code.

The go.mod texts are trimmed copies of the real shapes (Kubernetes staging, etcd's local modules
and FORBIDDEN_DEPENDENCY guards); one test feeds a generated wrapper to the real `go mod edit`.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conformance.images import gomod

KUBERNETES_GOMOD = """\
// This is a generated file. Do not edit directly.
module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/spf13/cobra v1.9.1
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""

ETCD_SERVER_GOMOD = """\
module go.etcd.io/etcd/server/v3

go 1.23.0

require go.etcd.io/etcd/api/v3 v3.6.4

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v3 => ../client/v3
)

// Bad imports are sometimes causing attempts to pull that code.
// This makes the error more explicit.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY

replace go.etcd.io/tests/v3 => ./FORBIDDEN_DEPENDENCY
"""

REMOTE_REPLACE_GOMOD = """\
module istio.io/istio

go 1.25

replace github.com/golang/glog => github.com/istio/glog v1.2.4
replace example.com/old v1.0.0 => example.com/fork v1.0.1
"""


def _replaces(text: str) -> dict[str, str]:
    lines = text.split("replace (\n", 1)[1].split(")", 1)[0].strip().splitlines()
    return dict(line.strip().split(" => ") for line in lines)


def test_kubernetes_staging_replaces_become_published_versions():
    """Each ./staging replace of k8s.io/kubernetes v1.34.0 points at the published v0.34.0 module."""
    text = gomod.wrapper("k8s.io/kubernetes", "v1.34.0", KUBERNETES_GOMOD,
                         local_version=gomod.kubernetes_staging_version("v1.34.0"))
    assert _replaces(text) == {
        "k8s.io/api": "k8s.io/api v0.34.0",
        "k8s.io/client-go": "k8s.io/client-go v0.34.0",
    }


def test_wrapper_requires_upstream_and_keeps_go_and_godebug():
    """The wrapper requires the upstream tag and restates its go and godebug lines."""
    text = gomod.wrapper("k8s.io/kubernetes", "v1.34.0", KUBERNETES_GOMOD,
                         local_version=gomod.kubernetes_staging_version("v1.34.0"))
    assert "\tk8s.io/kubernetes v1.34.0\n" in text
    assert "\ngo 1.24.0\n" in text
    assert "\ngodebug default=go1.24\n" in text


def test_tools_become_tool_directives():
    """Every package to build is a tool directive, so go mod tidy resolves what it imports."""
    text = gomod.wrapper("k8s.io/kubernetes", "v1.34.0", KUBERNETES_GOMOD,
                         local_version=gomod.kubernetes_staging_version("v1.34.0"),
                         tools=["k8s.io/kubernetes/cmd/kubeadm", "k8s.io/kubernetes/cmd/kubelet"])
    assert "tool (\n\tk8s.io/kubernetes/cmd/kubeadm\n\tk8s.io/kubernetes/cmd/kubelet\n)" in text


def test_etcd_guard_replaces_are_dropped():
    """etcd's ./FORBIDDEN_DEPENDENCY guards have no published module and are left out."""
    text = gomod.wrapper("go.etcd.io/etcd/server/v3", "v3.6.4", ETCD_SERVER_GOMOD,
                         local_version=gomod.etcd_version("v3.6.4"))
    assert _replaces(text) == {
        "go.etcd.io/etcd/api/v3": "go.etcd.io/etcd/api/v3 v3.6.4",
        "go.etcd.io/etcd/client/v3": "go.etcd.io/etcd/client/v3 v3.6.4",
    }
    assert "FORBIDDEN" not in text


def test_remote_replaces_are_copied():
    """A replace that already names a module version (Istio's forks) is copied unchanged."""
    text = gomod.wrapper("istio.io/istio", "v0.0.0-20260826214018-9739e10eb9d7", REMOTE_REPLACE_GOMOD)
    assert _replaces(text) == {
        "github.com/golang/glog": "github.com/istio/glog v1.2.4",
        "example.com/old v1.0.0": "example.com/fork v1.0.1",
    }


def test_local_replace_without_version_map_is_an_error():
    """Guessing the version of a local replace would build other code than the tag: refuse."""
    with pytest.raises(ValueError, match="local path"):
        gomod.wrapper("k8s.io/kubernetes", "v1.34.0", KUBERNETES_GOMOD)


def test_module_mismatch_is_an_error():
    """A go.mod of another module than the one required is a caller mistake and is refused."""
    with pytest.raises(ValueError, match=r"expected istio\.io/istio"):
        gomod.wrapper("istio.io/istio", "v1.0.0", KUBERNETES_GOMOD)


def test_extra_requires_raise_dependency_floors():
    """Extra requires (kube-router's patched dependencies) appear in the require block."""
    text = gomod.wrapper("istio.io/istio", "v1.0.0", REMOTE_REPLACE_GOMOD,
                         extra_requires=[("golang.org/x/net", "v0.56.0")])
    assert "\tgolang.org/x/net v0.56.0\n" in text


def test_kubernetes_staging_version_rejects_non_v1_tags():
    """Only v1.Y.Z tags have v0.Y.Z staging modules."""
    with pytest.raises(ValueError, match="not a Kubernetes"):
        gomod.kubernetes_staging_version("v2.0.0")


@pytest.mark.skipif(shutil.which("go") is None, reason="go toolchain not installed")
def test_generated_wrapper_parses_with_real_go(tmp_path):
    """The real `go mod edit -json` reads the generated wrapper: requires, replaces and tools."""
    (tmp_path / "go.mod").write_text(gomod.wrapper(
        "k8s.io/kubernetes", "v1.34.0", KUBERNETES_GOMOD,
        local_version=gomod.kubernetes_staging_version("v1.34.0"), tools=["k8s.io/kubernetes/cmd/kubeadm"]))
    out = subprocess.run(["go", "mod", "edit", "-json"], cwd=tmp_path, capture_output=True, text=True, check=True)
    parsed = json.loads(out.stdout)
    assert parsed["Require"] == [{"Path": "k8s.io/kubernetes", "Version": "v1.34.0"}]
    assert {r["Old"]["Path"]: r["New"]["Version"] for r in parsed["Replace"]} == {
        "k8s.io/api": "v0.34.0", "k8s.io/client-go": "v0.34.0"}
    assert [t["Path"] for t in parsed["Tool"]] == ["k8s.io/kubernetes/cmd/kubeadm"]
