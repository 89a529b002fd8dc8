"""`pytest -m static` on a copy of the repository whose source manifests are broken, as a user would.

These run the real plugin, real kustomize and real schemas in a subprocess, and read only its exit
code and output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.paths import REPO

COPIED = ("conformance", "base", "overlays", "fixtures", "pyproject.toml")


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path


def run_static(root: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="cortex-reports-") as reports:
        return subprocess.run([sys.executable, "-m", "pytest", "conformance/checks", "-m", "static", "-q",
                               "-p", "no:cacheprovider", "--report-dir", reports, *args],
                              cwd=root, capture_output=True, text=True, check=False)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_canonical_copy_passes(repo_copy):
    """The unmodified manifests pass every static control."""
    proc = run_static(repo_copy)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_base_regression_hidden_by_dev_patch_fails(repo_copy):
    """minReplicas 1 in base fails on base even though the dev patch overrides it."""
    replace(repo_copy / "base" / "horizontal_pod_autoscaler.yaml", "minReplicas: 3", "minReplicas: 1")
    proc = run_static(repo_copy)
    assert proc.returncode == 1
    assert "test_hpa_targets_deployment_with_room[base]" in proc.stdout
    assert "HorizontalPodAutoscaler default/cortex-api: minReplicas is 1" in proc.stdout


def test_permissive_overlay_fails(repo_copy):
    """A PERMISSIVE PeerAuthentication in the dev overlay fails MTLS-01 naming the object."""
    replace(repo_copy / "overlays" / "dev" / "peer_authentication.yaml", "mode: STRICT", "mode: PERMISSIVE")
    proc = run_static(repo_copy)
    assert proc.returncode == 1
    assert "PeerAuthentication cortex-dev/default: mtls.mode is PERMISSIVE" in proc.stdout


def test_rendered_file_is_checked(repo_copy, tmp_path):
    """--manifests checks an already rendered bundle instead of the overlays."""
    replace(repo_copy / "base" / "deployment.yaml", "readOnlyRootFilesystem: true\n            runAsNonRoot: true\n"
            "            capabilities:\n              drop:\n                - ALL\n          volumeMounts:\n"
            "            - name: tmp\n              mountPath: /tmp\n              subPath: redis-proxy",
            "readOnlyRootFilesystem: false\n            runAsNonRoot: true\n"
            "            capabilities:\n              drop:\n                - ALL\n          volumeMounts:\n"
            "            - name: tmp\n              mountPath: /tmp\n              subPath: redis-proxy")
    from conformance.static.manifests import kubectl
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(subprocess.run([kubectl(), "kustomize", str(repo_copy / "overlays" / "dev")],
                                       capture_output=True, text=True, check=True).stdout)
    proc = run_static(REPO, "--manifests", str(rendered))
    assert proc.returncode == 1
    assert "test_read_only_root_filesystem[rendered]" in proc.stdout
    assert "Deployment cortex-dev/cortex-api container redis-proxy: readOnlyRootFilesystem is false" in proc.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n spec: [\n", "invalid YAML at line 5"),
    ("apiVersion: v1\nmetadata:\n  name: x\n", "document 1 has no kind"),
], ids=["invalid-yaml", "no-kind"])
def test_bad_file_is_one_line(tmp_path, content, message):
    """Bad input ends the run with one ERROR line and a non-zero exit, no traceback."""
    path = tmp_path / "input.yaml"
    path.write_text(content)
    proc = run_static(REPO, "--manifests", str(path))
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert f"ERROR: {path}: {message}" in output
    assert "Traceback" not in output


def test_missing_file_is_one_line(tmp_path):
    """A manifests file that does not exist is named in one line."""
    proc = run_static(REPO, "--manifests", str(tmp_path / "absent.yaml"))
    assert proc.returncode != 0
    assert f"ERROR: manifests file {tmp_path / 'absent.yaml'} does not exist" in proc.stdout + proc.stderr


def test_overlay_that_does_not_build_is_one_line(repo_copy):
    """An overlay kustomize cannot build stops the run with kustomize's reason on one line."""
    replace(repo_copy / "overlays" / "dev" / "kustomization.yaml", "  - telemetry.yaml\n", "  - telemetry.yml\n")
    proc = run_static(repo_copy)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "ERROR: overlay" in output
    assert "does not build" in output
    assert "telemetry.yml" in output
    assert "Traceback" not in output


def test_wrong_option_is_refused(tmp_path):
    """An unknown choice for an option is a usage error, not a traceback."""
    proc = run_static(REPO, "--target", "staging")
    assert proc.returncode == 4
    assert "invalid choice: 'staging'" in proc.stderr
