"""The manifest conventions `nox -s lint` enforces, each shown failing on a repo broken its way."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.static import conventions

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - port: 80
"""


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def repo(tmp_path):
    write(tmp_path, "base/service.yaml", SERVICE)
    write(tmp_path, "base/kustomization.yaml", "resources:\n  - service.yaml\n")
    write(tmp_path, "overlays/dev/kustomization.yaml", "resources:\n  - ../../base\nnamespace: dev\n")
    return tmp_path


def test_canonical_repository_holds():
    """The repository itself keeps every convention."""
    assert conventions.check_repository() == []


def test_minimal_repository_holds(repo):
    """A well-formed base and overlay produce no gap (the checks are not vacuous either way)."""
    assert conventions.check_repository(repo) == []


def test_deprecated_field(repo):
    """commonLabels is reported with the replacement to use."""
    write(repo, "overlays/dev/kustomization.yaml", "resources:\n  - ../../base\ncommonLabels:\n  team: a\n")
    gaps = conventions.check_repository(repo)
    assert any("commonLabels is deprecated; use labels:" in g for g in gaps), gaps


def test_overlay_copies_base_object(repo):
    """An overlay that redefines a base object instead of patching it is reported."""
    write(repo, "overlays/dev/service.yaml", SERVICE)
    write(repo, "overlays/dev/kustomization.yaml", "resources:\n  - service.yaml\n")
    gaps = conventions.check_repository(repo)
    assert any("redefines Service web" in g for g in gaps), gaps


def test_key_order(repo):
    """A manifest that does not start apiVersion, kind, metadata is reported."""
    write(repo, "base/service.yaml", "kind: Service\napiVersion: v1\nmetadata:\n  name: web\n")
    gaps = conventions.check_repository(repo)
    assert any("service.yaml document 1: keys start ['kind', 'apiVersion', 'metadata']" in g for g in gaps), gaps


def test_unlisted_file(repo):
    """A manifest file the kustomization does not list is reported, since kustomize ignores it."""
    write(repo, "base/forgotten.yaml", SERVICE.replace("web", "other"))
    gaps = conventions.check_repository(repo)
    assert any("forgotten.yaml: not listed in the kustomization" in g for g in gaps), gaps


def test_overlay_that_does_not_build(repo):
    """An overlay kustomize cannot build is reported with kustomize's reason."""
    write(repo, "overlays/dev/kustomization.yaml", "resources:\n  - missing.yaml\n")
    gaps = conventions.check_repository(repo)
    assert any("overlays/dev: does not build:" in g and "missing.yaml" in g for g in gaps), gaps


def test_patch_without_target(repo):
    """A patch without target: is reported."""
    write(repo, "overlays/dev/patch.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n")
    write(repo, "overlays/dev/kustomization.yaml", "resources:\n  - ../../base\npatches:\n  - path: patch.yaml\n")
    gaps = conventions.check_repository(repo)
    assert any("patch patch.yaml has no target:" in g for g in gaps), gaps
