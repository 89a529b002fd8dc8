"""faults.json, the live fault catalogue's record: killed or missed, and what that does to the verdict."""

from __future__ import annotations

import copy
import json
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conformance.errors import InputError
from conformance.report import faults, html_faults, write_report

DATA = Path(__file__).parent / "data" / "report"
NOW = datetime(2026, 11, 25, 22, 0, 0, tzinfo=UTC)
# The dev overlay's digest in the recorded results: a catalogue stands behind those manifests only.
DEV_SHA256 = "9a1f0c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a"


def _fault(name: str, expect: list[str], failed: dict[str, list[str]], **extra) -> dict:
    # The stated reason: the first word of the control's first message when it failed.
    because = {c: (failed[c][0].split()[0] if failed.get(c) else "denied") for c in expect}
    return {"name": name, "description": f"{name} description", "kind": "overlay", "expect": expect,
            "because": because, "failed_controls": failed, "killed": all(c in failed for c in expect),
            "missed": [c for c in expect if c not in failed], "seconds": 60.0, "undone": True, "error": None,
            **extra}


def _catalogue(*fault_list: dict, **extra) -> dict:
    return {"schema": "cortex-conformance/faults", "schema_version": 1,
            "started_at": "2026-11-25T21:20:00Z", "finished_at": "2026-11-25T21:40:00Z",
            "git": {"commit": "3f9c2a7d5e1b4c6a8f0e2d4b6a8c0e2f4a6b8d0c", "dirty": False}, "environment": {},
            "baseline_before": {"outcome": "passed", "failed_controls": [], "seconds": 80.1},
            "baseline_after": {"outcome": "passed", "failed_controls": [], "seconds": 79.0},
            "inputs": [{"name": "dev", "source": "overlays/dev", "sha256": DEV_SHA256}],
            "faults": list(fault_list), "killed": 0, "total": len(fault_list), "wall_seconds": 300.0, **extra}


KILLED = _fault("permissive-workload-mtls", ["MTLS-01"], {"MTLS-01": ["plaintext got through"]})
MISSED = _fault("vault-role-wildcard", ["VAULT-03", "VAULT-02"], {"VAULT-02": ["read allowed"]})


def _problems(data: dict) -> list[str]:
    return faults.summarise(data)[0]["problems"]


def test_every_fault_killed_proves_the_live_tier():
    """All faults killed, both baselines passing and everything undone: no problem, no verdict change."""
    summary, warnings = faults.summarise(_catalogue(KILLED))
    assert (summary["killed"], summary["total"], summary["problems"], warnings) == (1, 1, [], [])
    assert faults.verdict_reason(summary) == []


def test_missed_fault_is_named_with_the_controls_that_did_not_fail():
    """A fault is killed only when every expected control failed; the others are listed as missed."""
    summary, _ = faults.summarise(_catalogue(KILLED, MISSED))
    assert [(f["name"], f["killed"], f["missed"]) for f in summary["faults"]] == [
        ("permissive-workload-mtls", True, []), ("vault-role-wildcard", False, ["VAULT-03"])]
    assert faults.verdict_reason(summary) == [
        "the live tier could not prove it can fail: 1 of 2 fault(s) not killed: vault-role-wildcard (missed VAULT-03)"]


@pytest.mark.parametrize(("change", "problem"), [
    ({"baseline_before": {"outcome": "failed", "failed_controls": ["NET-02"], "seconds": 1}},
     "the baseline before the catalogue failed (NET-02)"),
    ({"baseline_after": None}, "the baseline after the catalogue was not recorded"),
    ({"faults": [{**KILLED, "undone": False}]},
     "fault(s) not undone, so later results ran on a changed cluster: permissive-workload-mtls"),
    ({"faults": [{**KILLED, "error": "kubectl apply: connection refused\ndetail"}]},
     "fault permissive-workload-mtls errored: kubectl apply: connection refused"),
    ({"faults": []}, "the catalogue holds no fault"),
], ids=["baseline-failed", "no-baseline-after", "not-undone", "errored", "empty"])
def test_each_way_the_catalogue_proves_nothing(change, problem):
    """A failed or missing baseline, a fault left in place, an error or no fault at all is a problem."""
    assert problem in _problems({**_catalogue(KILLED), **change})


def test_killed_is_judged_from_expect_not_taken_on_trust():
    """A fault recorded as killed whose expected control did not fail counts as missed, with a warning."""
    summary, warnings = faults.summarise(_catalogue({**MISSED, "killed": True}))
    assert summary["faults"][0]["killed"] is False
    assert warnings == ["faults.json: fault 'vault-role-wildcard' is recorded as killed=True but its expected "
                        "and failed checks say killed=False; the report counts the latter"]


def test_no_faults_file_is_no_section(tmp_path):
    """Without faults.json there is no catalogue: None, and no section on the page."""
    assert faults.load(tmp_path) is None
    assert html_faults.section({"faults": None}) == ""


@pytest.mark.parametrize(("content", "problem"), [
    ("{", "not valid JSON (line 1: Expecting property name enclosed in double quotes)"),
    ({"schema": "cortex-conformance/results"},
     "not a fault catalogue record (schema is not 'cortex-conformance/faults')"),
    ({**_catalogue(), "schema_version": 2}, "schema_version 2 is not supported (this report reads 1)"),
    ({**_catalogue(), "faults": None}, "missing field 'faults' (a list)"),
    (_catalogue({"expect": []}), "faults[0] has no name"),
    (_catalogue({**KILLED, "expect": "MTLS-01"}),
     "faults[0] (permissive-workload-mtls): expect must be a list of control IDs"),
    (_catalogue({**KILLED, "failed_controls": {"MTLS-01": "x"}}),
     "faults[0] (permissive-workload-mtls): failed_controls must map control IDs to lists of messages"),
    (_catalogue(baseline_after={"outcome": "maybe"}), "baseline_after must be an object with outcome passed or failed"),
], ids=["invalid-json", "wrong-schema", "newer-version", "no-faults", "no-name", "expect-not-list",
        "messages-not-list", "bad-baseline"])
def test_bad_faults_file_is_one_line(tmp_path, content, problem):
    """A malformed faults.json is one line naming the file and the problem."""
    path = tmp_path / "faults.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InputError) as caught:
        faults.load(tmp_path)
    assert str(caught.value) == f"{path}: {problem}"


@pytest.fixture
def report_dir(tmp_path) -> Path:
    out = tmp_path / "reports"
    shutil.copytree(DATA, out)
    return out


def _with_faults(out: Path, data: dict) -> dict:
    (out / "faults.json").write_text(json.dumps(data))
    return write_report(out, now=NOW)


def test_missed_fault_fails_a_live_run(report_dir):
    """The recorded run fails anyway; the catalogue's reason is one more line of the verdict."""
    doc = _with_faults(report_dir, _catalogue(KILLED, MISSED))
    assert doc["verdict"] == "fail"
    assert doc["verdict_reasons"][-1].startswith("the live tier could not prove it can fail: 1 of 2 fault(s)")


def test_live_pass_without_a_killed_catalogue_is_fail(tmp_path):
    """A live run with every check passing is FAIL once the catalogue shows a check that cannot fail."""
    out = tmp_path / "reports"
    out.mkdir()
    data = json.loads((DATA / "results-conformance.json").read_text())
    for result in data["results"]:
        result.update(outcome="passed", message="")
    data["matrices"] = []
    (out / "results-conformance.json").write_text(json.dumps(data))
    # Without the catalogue the same run is not a failure (a few live checks never ran).
    assert write_report(out, now=NOW)["verdict"] == "incomplete"
    doc = _with_faults(out, _catalogue(KILLED, MISSED))
    assert (doc["verdict"], doc["headline"]) == ("fail", "FAIL")


def test_faults_in_all_three_files(report_dir):
    """report.json holds the catalogue; the summary a table with killed/total; the page a red missed row."""
    doc = _with_faults(report_dir, _catalogue(KILLED, MISSED))
    assert (doc["faults"]["killed"], doc["faults"]["total"]) == (1, 2)
    summary = (report_dir / "report.md").read_text()
    assert "### Fault catalogue: 1/2 killed" in summary
    assert "| Fault | Kind | Expected | Failed | Killed | Seconds |" in summary
    assert "| vault-role-wildcard | overlay | VAULT-03, VAULT-02 | VAULT-02 | ✗ missed VAULT-03 | 60.0 |" in summary
    assert "| permissive-workload-mtls | overlay | MTLS-01 | MTLS-01 | ✓ as expected | 60.0 |" in summary
    page = (report_dir / "report.html").read_text()
    assert '<tr class="missed"><td><b>vault-role-wildcard</b>' in page
    assert "✗ MISSED (VAULT-03 did not fail)" in page
    messages = "<details><summary><code>VAULT-02</code></summary><dl><dt><code>VAULT-02</code></dt><dd><pre>"
    assert messages + "read allowed" in page


def test_fault_messages_are_redacted(report_dir):
    """A credential in a fault's message is gone from all three files."""
    token = "hvs." + secrets.token_urlsafe(60)
    leaky = copy.deepcopy(MISSED)
    leaky["failed_controls"]["VAULT-02"] = [f"read allowed with X-Vault-Token: {token}"]
    doc = _with_faults(report_dir, _catalogue(leaky))
    for name in ("report.html", "report.md", "report.json"):
        assert token not in (report_dir / name).read_text(), name
    assert doc["faults"]["faults"][0]["failed_controls"]["VAULT-02"] == [
        "read allowed with X-Vault-Token: [REDACTED:vault-token]"]


def test_markdown_lists_the_problems(report_dir):
    """The summary says why the catalogue proves nothing, under its table."""
    _with_faults(report_dir, _catalogue(KILLED, baseline_after={"outcome": "failed", "failed_controls": ["NET-01"]}))
    assert "- ❌ the baseline after the catalogue failed (NET-01)\n" in (report_dir / "report.md").read_text()


def test_a_partial_catalogue_says_what_it_did_not_run():
    """A record of `--only` runs proves only its faults: the faults of the catalogue it skipped are named."""
    data = _catalogue(KILLED, catalogue=["permissive-workload-mtls", "pdb-deleted", "vault-sealed"])
    summary, warnings = faults.summarise(data)
    assert summary["not_run"] == ["pdb-deleted", "vault-sealed"]
    assert warnings == ["faults.json ran 1 of the catalogue's 3 faults; not run: pdb-deleted (--only), "
                        "vault-sealed (--only)"]
    assert faults.summarise(_catalogue(KILLED, catalogue=["permissive-workload-mtls"]))[0]["not_run"] == []
