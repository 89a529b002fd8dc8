"""What a verdict may claim: evidence of one commit and one rendering, levels up to a sign-off, kills for the
stated reason, and no verdict left behind by a run that stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import controls, kills
from conformance.paths import REPO
from conformance.report import cli

COMMIT = "3f9c2a7d5e1b4c6a8f0e2d4b6a8c0e2f4a6b8d0c"
DEV = {"name": "dev", "source": "overlays/dev", "sha256": "9a" * 32, "objects": 17}
PLATFORM = {"kubernetes": "v1.36.3", "istio": "1.31"}
SIGNOFF_RUN = "5b0c1f"


def _results(run: str, tiers: tuple[str, ...], *, commit: str = COMMIT, dev: dict | None = None,
             outcome: str = "passed") -> dict:
    """A results file with one check per control and tier, every one with `outcome`."""
    results = [{"test": f"conformance/checks/test_{c.family.lower()}.py::test_{c.id}_{tier}[dev]", "control": c.id,
                "tier": tier, "input": "dev", "outcome": outcome, "message": "", "objects": [], "evidence": [],
                "duration_s": 0.1}
               for c in controls.CATALOGUE for tier in tiers if tier in c.tiers]
    return {"schema": "cortex-conformance/results", "schema_version": 1, "run": run,
            "started_at": "2026-12-07T21:00:00Z", "finished_at": "2026-12-07T21:10:00Z",
            "git": {"commit": commit, "dirty": False}, "inputs": [dev or DEV], "signoff_run": SIGNOFF_RUN,
            "environment": PLATFORM if "live" in tiers else {}, "phases": [], "results": results, "matrices": []}


def _fault(name: str, control: str, message: str, because: str) -> dict:
    return {"name": name, "description": name, "kind": "overlay", "expect": [control], "because": {control: because},
            "failed_checks": [{"test": f"t.py::test_{name.replace('-', '_')}", "control": control,
                               "outcome": "failed", "message": message}],
            "failed_controls": {control: [message]}, "seconds": 10.0, "undone": True, "error": None}


def _catalogue(*faults: dict, commit: str = COMMIT, catalogue: list[str] | None = None,
               dev: dict | None = None) -> dict:
    return {"schema": "cortex-conformance/faults", "schema_version": 1, "started_at": "2026-12-07T21:10:00Z",
            "finished_at": "2026-12-07T21:30:00Z", "git": {"commit": commit, "dirty": False},
            "environment": PLATFORM, "inputs": [dev or DEV], "signoff_run": SIGNOFF_RUN,
            "baseline_before": {"outcome": "passed", "failed_controls": [], "seconds": 60.0},
            "baseline_after": {"outcome": "passed", "failed_controls": [], "seconds": 60.0},
            "faults": list(faults), "catalogue": catalogue or [f["name"] for f in faults], "not_run": {}}


KILLED = _fault("permissive-workload-mtls", "MTLS-01", "plaintext got HTTP 200", "plaintext got HTTP")


def _write(out: Path, *documents: dict, faults: dict | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for document in documents:
        (out / f"results-{document['run']}.json").write_text(json.dumps(document))
    if faults is not None:
        (out / "faults.json").write_text(json.dumps(faults))
    return out


def _report(out: Path, *args: str) -> tuple[int, dict | None]:
    code = cli.main(["--report-dir", str(out), *args])
    path = out / "report.json"
    return code, json.loads(path.read_text()) if code != cli.EXIT_BAD_INPUT else None


def test_static_pass_says_static_tier_only(tmp_path):
    code, doc = _report(_write(tmp_path, _results("static", ("static",))))
    assert (code, doc["level"], doc["headline"]) == (0, "static", "PASS (static tier only)")


def test_live_pass_without_the_catalogue_is_not_fault_proven(tmp_path):
    """A live PASS never reads as a sign-off, and one asked for exits 4 with the reason."""
    out = _write(tmp_path, _results("conformance", ("static", "live")))
    code, doc = _report(out)
    assert (code, doc["level"], doc["headline"]) == (0, "live", "PASS (live, not fault-proven)")
    assert doc["short_of_signoff"][0].startswith("the fault catalogue was not run")
    assert _report(out, "--require", "signoff")[0] == cli.EXIT_SHORT


def test_whole_catalogue_killed_as_expected_on_the_same_commit_is_a_signoff(tmp_path):
    out = _write(tmp_path, _results("conformance", ("static", "live")), faults=_catalogue(KILLED))
    code, doc = _report(out, "--require", "signoff")
    assert (code, doc["level"], doc["headline"]) == (0, "signoff", "SIGN-OFF PASS")


def test_checks_and_a_catalogue_of_two_runs_are_no_signoff(tmp_path):
    """`nox -s conformance` then `nox -s faults`: two cluster states, so at most a live pass."""
    catalogue = {**_catalogue(KILLED), "signoff_run": None}
    code, doc = _report(_write(tmp_path, _results("conformance", ("static", "live")), faults=catalogue))
    assert (code, doc["level"]) == (cli.EXIT_SHORT, "live")
    assert doc["short_of_signoff"] == [
        "the live checks and the fault catalogue were not made by one `nox -s signoff` run"]


def test_a_kill_for_another_reason_is_no_proof(tmp_path):
    """The check failed, but not for the reason the fault states: FAIL, naming the fault and the reason."""
    other = _fault("permissive-workload-mtls", "MTLS-01", "the probe pod could not start", "plaintext got HTTP")
    code, doc = _report(_write(tmp_path, _results("conformance", ("static", "live")), faults=_catalogue(other)))
    assert (code, doc["verdict"], doc["faults"]["faults"][0]["kill"]) == (1, "fail", kills.OTHER_REASON)
    assert "killed, but not for the stated reason: permissive-workload-mtls (MTLS-01 not for 'plaintext got HTTP')" \
        in doc["verdict_reasons"][-1]


def test_a_partial_catalogue_is_short_of_a_signoff(tmp_path):
    partial = _catalogue(KILLED, catalogue=["permissive-workload-mtls", "pdb-deleted"])
    partial["not_run"] = {"pdb-deleted": "applies only to --images build"}
    code, doc = _report(_write(tmp_path, _results("conformance", ("static", "live")), faults=partial))
    assert (code, doc["level"], doc["headline"]) == (cli.EXIT_SHORT, "live", "PASS (live, not fault-proven)")
    assert "the fault catalogue is partial: 1 fault(s) not run" in doc["short_of_signoff"]
    assert "pdb-deleted (applies only to --images build)" in doc["warnings"][-1]


def test_a_dirty_tree_is_short_of_a_signoff(tmp_path):
    results = _results("conformance", ("static", "live"))
    results["git"]["dirty"] = True
    code, doc = _report(_write(tmp_path, results, faults=_catalogue(KILLED)))
    assert (code, doc["level"]) == (cli.EXIT_SHORT, "live")


@pytest.mark.parametrize(("documents", "faults", "problem"), [
    ([_results("static", ("static",), commit="a" * 40), _results("conformance", ("static", "live"))], None,
     "results of different commits cannot make one verdict: results-conformance.json at 3f9c2a7d5e1b, "
     "results-static.json at aaaaaaaaaaaa"),
    ([_results("static", ("static",), dev={**DEV, "sha256": "b" * 64}), _results("conformance", ("static", "live"))],
     None, "input 'dev' was rendered differently by different runs"),
    ([_results("conformance", ("static", "live"))], _catalogue(KILLED, commit="c" * 40), "faults.json at cccccccccccc"),
    ([_results("conformance", ("static", "live"))], _catalogue(KILLED, dev={**DEV, "sha256": "d" * 64}),
     "faults.json sha256 dddddddddddd"),
], ids=["two-commits", "two-renderings", "catalogue-of-another-commit", "catalogue-of-other-manifests"])
def test_evidence_of_two_runs_is_refused_in_one_line(tmp_path, capsys, documents, faults, problem):
    """Never merged with a warning: one `error:` line, exit 2, no report written."""
    out = _write(tmp_path, *documents, faults=faults)
    assert cli.main(["--report-dir", str(out)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert problem in err
    assert err.count("\n") == 1
    assert not (out / "report.json").exists()


def test_a_run_that_stops_leaves_no_verdict(tmp_path):
    """A static run on a good input, then one on a missing file: the report has nothing to read, not the old PASS."""
    out = tmp_path / "reports"
    _write(out, _results("static", ("static",)))
    (out / "junit-static.xml").write_text("<testsuites/>")
    proc = subprocess.run([sys.executable, "-m", "pytest", "conformance/checks", "-m", "static", "-p",
                           "no:cacheprovider", "--run-name", "static", "--report-dir", str(out),
                           "--manifests", str(tmp_path / "missing.yaml")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert not (out / "results-static.json").exists()
    assert not (out / "junit-static.xml").exists()
    assert cli.main(["--report-dir", str(out)]) == cli.EXIT_BAD_INPUT


@pytest.mark.parametrize(("checks", "kill"), [
    ([{"test": "a::test_plaintext", "control": "MTLS-01", "outcome": "failed", "message": "plaintext got HTTP 200"}],
     kills.AS_EXPECTED),
    ([{"test": "a::test_plaintext_client[x]", "control": "MTLS-01", "outcome": "error", "message": "exec failed"}],
     kills.OTHER_REASON),
    ([{"test": "a::test_x", "control": "MTLS-02", "outcome": "failed", "message": "plaintext got HTTP 200"}],
     kills.MISSED),
    ([{"test": "a::test_x", "control": "MTLS-01", "outcome": "passed", "message": "plaintext got HTTP 200"}],
     kills.MISSED),
], ids=["message-holds-the-reason", "errored-for-another-reason", "other-control", "passed"])
def test_a_kill_is_judged_on_the_failing_checks_text(checks, kill):
    assert kills.judge(["MTLS-01"], {"MTLS-01": "PLAINTEXT got http"}, checks) == {"MTLS-01": kill}


def test_the_check_name_can_state_the_reason():
    checks = [{"test": "m.py::test_role_bound_to_workload_only[dev]", "control": "VAULT-03", "outcome": "failed",
               "message": "login succeeded"}]
    assert kills.judge(["VAULT-03"], {"VAULT-03": "role_bound_to_workload"}, checks) == {"VAULT-03": kills.AS_EXPECTED}
    assert kills.overall({"A": kills.AS_EXPECTED, "B": kills.OTHER_REASON}) == kills.OTHER_REASON


def test_a_static_report_names_the_live_halves_it_did_not_run(tmp_path):
    """No "0 not run" beside rows saying "not run", nor a plain pass for a control whose live half never ran."""
    out = _write(tmp_path, _results("static", ("static",)))
    _report(out)
    page = (out / "report.html").read_text()
    live = sum(1 for c in controls.CATALOGUE if "live" in c.tiers)
    assert f"({live} live check(s) not run)" in page
    assert "live not run: this pass covers only the static tier" in page
    assert f"; {live} live check(s) not run." in (out / "report.md").read_text()


def test_an_input_the_commit_does_not_hold_is_no_clean_tree(tmp_path):
    """A --manifests file from elsewhere is not what the commit holds, however clean the tree."""
    results = _results("conformance", ("static", "live"))
    results["inputs"] = [{**DEV, "name": "mine", "source": "/tmp/mine.yaml", "in_commit": False}]
    code, doc = _report(_write(tmp_path, results, faults=_catalogue(KILLED, dev={**DEV, "name": "other"})))
    assert (code, doc["level"]) == (cli.EXIT_SHORT, "live")
    assert "the commit does not hold the input(s) checked: mine" in doc["short_of_signoff"]
    assert "(the commit does not hold the input(s) checked: mine)" in (tmp_path / "report.html").read_text()
