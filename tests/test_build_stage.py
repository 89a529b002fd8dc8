"""Stage ordering and naming: dependencies first, cycles refused, binaries named as go names them."""

from __future__ import annotations

import pytest

from conformance.images import gobuild, stage


@pytest.fixture
def registry(monkeypatch):
    """An empty stage registry for the test, so the real stages are left alone."""
    monkeypatch.setattr(stage, "REGISTRY", {})

    def add(name, *deps):
        stage.register(stage.Stage(name=name, group="t", summary=name, inputs=lambda ctx: {},
                                   build=lambda ctx, out: {}, deps=deps))

    return add


def test_closure_puts_dependencies_first(registry):
    """A stage comes after everything it depends on, each stage once."""
    registry("rootfs")
    registry("binaries")
    registry("images", "rootfs", "binaries")
    registry("node", "images", "rootfs")
    assert stage.closure(["node"]) == ["rootfs", "binaries", "images", "node"]


def test_closure_refuses_cycles(registry):
    """A dependency cycle is named, not recursed into for ever."""
    registry("a", "b")
    registry("b", "a")
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        stage.closure(["a"])


def test_duplicate_stage_names_are_refused(registry):
    """Two builders cannot claim one stage name (and so one cache directory)."""
    registry("kind")
    with pytest.raises(ValueError, match="registered twice"):
        registry("kind")


def test_real_stages_form_a_graph():
    """Every registered stage's dependencies exist and order without a cycle."""
    order = stage.closure(stage.REGISTRY)
    assert set(order) == set(stage.REGISTRY)
    for name in order:
        assert all(order.index(dep) < order.index(name) for dep in stage.REGISTRY[name].deps), name


@pytest.mark.parametrize(
    ("package", "binary"),
    [("go.etcd.io/etcd/server/v3", "server"), ("sigs.k8s.io/kind", "kind"),
     ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"), ("github.com/x/y/v2/cmd/tool", "tool")],
    ids=["major-suffix", "module-root", "cmd", "cmd-under-major"],
)
def test_binary_name(package, binary):
    """Binaries are found under the name `go build -o dir/` gives them."""
    assert gobuild.binary_name(package) == binary
