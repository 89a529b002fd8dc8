"""`pytest -m static` as a user runs it, on inputs that used to read badly: a binary file, a mistyped
option, a custom resource and its CRD, a bundle without the workload. Real plugin, real schemas, in a
subprocess; only the exit code and the output are read."""

from __future__ import annotations

import textwrap

import yaml

from conformance.paths import REPO
from tests.test_schema_crds import CRD
from tests.test_static_end_to_end import run_static

FOO = textwrap.dedent("""\
    apiVersion: example.com/v1
    kind: Foo
    metadata: {name: a, namespace: cortex-dev}
    spec: {replicas: 1, maxReplicas: 2}
    """)


def test_binary_file_is_one_line(tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_bytes(b"PK\x03\x04\x14\x00\xd0\xcf\x11\xe0 not yaml")
    proc = run_static(REPO, "--manifests", str(path))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"ERROR: manifests file {path} is not a text YAML file" in output
    assert "codec" not in output
    assert "Traceback" not in output


def test_mistyped_option_is_one_line_naming_the_near_one():
    proc = run_static(REPO, "--manifest", "rendered.yaml")
    assert proc.returncode == 4
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["ERROR: unknown option --manifest (did you mean --manifests?); `pytest --help` lists every "
                     "option"]


def test_custom_resource_checked_against_crd_given_or_bundled(tmp_path, dev_bundle):
    bundle = tmp_path / "with-foo.yaml"
    bundle.write_text(dev_bundle.text + "---\n" + FOO)
    crd = tmp_path / "foo-crd.yaml"
    crd.write_text(CRD)
    without = run_static(REPO, "--manifests", str(bundle), "--controls", "SCHEMA-01")
    assert without.returncode == 1
    assert "Foo cortex-dev/a: no schema for example.com/v1 Foo" in without.stdout
    assert "given with --crd FILE|DIR" in without.stdout
    given = run_static(REPO, "--manifests", str(bundle), "--controls", "SCHEMA-01", "--crd", str(crd))
    assert given.returncode == 0, given.stdout[-2000:]
    missing = run_static(REPO, "--manifests", str(bundle), "--crd", str(tmp_path / "absent"))
    assert missing.returncode == 4
    assert f"ERROR: --crd {tmp_path / 'absent'} does not exist" in missing.stderr


def test_bundle_without_the_workload_says_so_first_and_passes_nothing_on_nothing(tmp_path, dev_bundle):
    docs = [d for d in yaml.safe_load_all(dev_bundle.text) if d and d["kind"] != "Deployment"]
    path = tmp_path / "no-api.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    proc = run_static(REPO, "--manifests", str(path), "-rs")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 1
    assert lines[0] == ("WARNING: no-api: Deployment cortex-api is not in the manifests (fixtures/expectations/"
                        "workload.yaml names it), so the checks that examine it fail or have nothing to check")
    assert sum("WARNING: no-api" in line for line in lines) == 1
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    assert skipped
    assert all("nothing to check: no " in line for line in skipped)
    assert any("not passed, skipped: " in line and "SEC-01" in line for line in lines)
