"""The exit codes the README documents for the commands users type, through nox itself.

nox ends with 1 for every failed session; the noxfile raises SystemExit for the documented codes,
which nox 2026.10.20 lets through as its own exit status. Each case runs the real `nox` (the one
scripts/setup links onto PATH) in a subprocess, with its own venv directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.controls import CATALOGUE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nox_cmd(tmp_path_factory) -> list[str]:
    """`nox` with a venv directory of this module's own, so that the repository's .nox stays as it is."""
    found = shutil.which("nox")
    if found is None:
        pytest.skip("nox is not on PATH: run `bash scripts/setup`")
    return [found, "--envdir", str(tmp_path_factory.mktemp("nox-envs"))]


def _environment() -> dict[str, str]:
    """The caller's environment less this test session's venv, as a user's shell would have it."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "NOX_CURRENT_SESSION")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def _nox(nox_cmd: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*nox_cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          check=False, env=_environment())


def _static_results(directory: Path, outcomes: dict[str, str]) -> Path:
    """A static run in which every static control passed, except those given another outcome."""
    directory.mkdir(parents=True, exist_ok=True)
    results = [{"test": f"t::{c.id}", "control": c.id, "tier": "static", "input": "dev",
                "outcome": outcomes.get(c.id, "passed"), "message": "", "evidence": []}
               for c in CATALOGUE if "static" in c.tiers]
    (directory / "results-static.json").write_text(json.dumps({
        "schema": "cortex-conformance/results", "schema_version": 1, "run": "static",
        "started_at": "2026-11-25T20:00:00Z", "finished_at": "2026-11-25T20:00:04Z",
        "git": {"commit": "a" * 40, "dirty": False},
        "inputs": [{"name": "dev", "source": "overlays/dev", "sha256": "1" * 64, "objects": 17}],
        "results": results}))
    return directory


@pytest.mark.parametrize(("outcomes", "extra", "code"), [
    pytest.param({}, [], 0, id="pass-0"),
    pytest.param({"SEC-01": "failed"}, [], 1, id="fail-1"),
    pytest.param({"AVAIL-02": "skipped"}, [], 3, id="incomplete-3"),
    pytest.param({"AVAIL-02": "skipped"}, ["--accept-incomplete"], 0, id="incomplete-accepted-0"),
])
def test_report_session_exits_with_the_verdict(nox_cmd, tmp_path, outcomes, extra, code):
    """`nox -s report`: 0 PASS, 1 FAIL, 3 INCOMPLETE (0 with --accept-incomplete)."""
    out = _static_results(tmp_path / "reports", outcomes)
    proc = _nox(nox_cmd, "-s", "report", "--", "--report-dir", str(out), *extra)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert (out / "report.json").is_file()


def test_report_session_exits_2_on_bad_input(nox_cmd, tmp_path):
    """`nox -s report` on a directory without results: the report's `error:` line, and exit 2."""
    proc = _nox(nox_cmd, "-s", "report", "--", "--report-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: no results-*.json" in proc.stdout + proc.stderr


def test_static_session_exits_4_on_bad_input(nox_cmd, tmp_path):
    """`nox -s static -- --manifests MISSING`: one `ERROR:` line, and exit 4 (not nox's 1)."""
    proc = _nox(nox_cmd, "-s", "static", "--", "--manifests", str(tmp_path / "missing.yaml"),
                "--report-dir", str(tmp_path))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("ERROR:")] == [
        f"ERROR: manifests file {tmp_path / 'missing.yaml'} does not exist"]
