"""``python -m conformance.report``: the files it writes, its exit code (the verdict) and its one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.controls import CATALOGUE
from conformance.report.cli import exit_code

REPO = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data" / "report"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.report", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def results_dir(tmp_path) -> Path:
    out = tmp_path / "reports"
    shutil.copytree(DATA, out)
    return out


def _static_run(directory: Path, outcomes: dict[str, str] | None = None) -> Path:
    """A static run in which every static control passed, except those given another outcome."""
    outcomes = outcomes or {}
    results = [{"test": f"t::{c.id}", "control": c.id, "tier": "static", "input": "dev",
                "outcome": outcomes.get(c.id, "passed"), "message": "", "evidence": []}
               for c in CATALOGUE if "static" in c.tiers]
    directory.mkdir(exist_ok=True)
    (directory / "results-static.json").write_text(json.dumps({
        "schema": "cortex-conformance/results", "schema_version": 1, "run": "static",
        "started_at": "2026-11-25T20:00:00Z", "finished_at": "2026-11-25T20:00:04Z",
        "git": {"commit": "a" * 40, "dirty": False},
        "inputs": [{"name": "dev", "source": "overlays/dev", "sha256": "1" * 64, "objects": 17}],
        "results": results}))
    return directory


def test_writes_three_files_and_one_summary_line(results_dir):
    """A results directory gets report.html, report.md and report.json, stdout one line, exit 1 on FAIL."""
    proc = _run("--report-dir", str(results_dir))
    assert (proc.returncode, proc.stderr) == (1, "")
    # "not run": the catalogue's controls that the recorded runs of tests/data/report predate.
    assert proc.stdout == (f"report: FAIL: 5 failed, 1 error, 3 skipped, 12 not run, 25 passed, 3/4 faults killed "
                           f"-> {results_dir / 'report.html'}\n")
    assert sorted(p.name for p in results_dir.glob("report.*")) == ["report.html", "report.json", "report.md"]


def test_static_only_pass_says_so_and_exits_0(tmp_path):
    """A static run alone that passes exits 0 and reads "PASS (static tier only)" everywhere, never a bare PASS."""
    out = _static_run(tmp_path / "reports")
    proc = _run("--report-dir", str(out))
    assert (proc.returncode, proc.stderr) == (0, "")
    # The live-only controls (SCHEMA-03, MTLS-04, TEL-05) are not run by a static run.
    live_only = sum(1 for c in CATALOGUE if "static" not in c.tiers)
    assert proc.stdout.startswith(f"report: PASS (static tier only): 0 failed, 0 error, 0 skipped, {live_only} "
                                  "not run, ")
    doc = json.loads((out / "report.json").read_text())
    assert (doc["verdict"], doc["coverage"], doc["headline"]) == ("pass", "static-only", "PASS (static tier only)")
    assert (out / "report.md").read_text().startswith("## cortex-api conformance: ☑️ PASS (static tier only)\n")
    page = (out / "report.html").read_text()
    assert '<section class="verdict v-pass-partial" id="verdict"><h1>Verdict: PASS (static tier only)</h1>' in page
    assert "v-pass\"" not in page


def test_incomplete_exits_3_unless_accepted(tmp_path):
    """INCOMPLETE exits 3; --accept-incomplete turns that into 0 without changing the report."""
    out = _static_run(tmp_path / "reports", {"AVAIL-02": "skipped"})
    proc = _run("--report-dir", str(out))
    assert (proc.returncode, proc.stdout.split(":")[1]) == (3, " INCOMPLETE (static tier only)")
    accepted = _run("--report-dir", str(out), "--accept-incomplete")
    assert (accepted.returncode, accepted.stdout) == (0, proc.stdout)
    assert json.loads((out / "report.json").read_text())["verdict"] == "incomplete"


@pytest.mark.parametrize(("verdict", "accept", "code"), [
    ("pass", False, 0), ("fail", False, 1), ("incomplete", False, 3), ("incomplete", True, 0), ("fail", True, 1),
])
def test_exit_code_follows_the_verdict(verdict, accept, code):
    """0 pass, 1 fail, 3 incomplete; accepting incomplete never turns a FAIL into 0."""
    assert exit_code(verdict, accept_incomplete=accept) == code


def test_help_documents_the_exit_codes():
    """--help ends with what each exit code means."""
    proc = _run("--help")
    assert proc.returncode == 0
    epilog = proc.stdout[proc.stdout.index("exit codes:"):]
    for line in ("  0  PASS", "  1  FAIL", "  2  bad input", "  3  INCOMPLETE", "--accept-incomplete"):
        assert line in epilog


def test_compare_with_the_previous_report(results_dir, tmp_path):
    """--compare puts the changes since an earlier report.json into all three files."""
    assert _run("--report-dir", str(results_dir)).returncode == 1
    old = json.loads((results_dir / "report.json").read_text())
    sec02 = next(c for c in old["controls"] if c["id"] == "SEC-02")
    sec02["status"], sec02["static"]["result"] = "passed", "passed"
    old["controls"] = [c for c in old["controls"] if c["id"] != "GW-03"]
    (tmp_path / "old.json").write_text(json.dumps(old))

    proc = _run("--report-dir", str(results_dir), "--compare", str(tmp_path / "old.json"))
    assert proc.returncode == 1, proc.stderr
    comparison = json.loads((results_dir / "report.json").read_text())["comparison"]
    assert ([i["id"] for i in comparison["newly_failing"]], [i["id"] for i in comparison["added"]]) == (
        ["SEC-02"], ["GW-03"])
    assert "- Newly failing: `SEC-02`" in (results_dir / "report.md").read_text()
    assert "Changes since the previous report" in (results_dir / "report.html").read_text()


def test_static_only_report_says_the_live_tier_did_not_run(results_dir):
    """A failing static run alone is still FAIL, says it rests on the static tier and does not cover the live one."""
    (results_dir / "results-conformance.json").unlink()
    (results_dir / "junit-conformance.xml").unlink()
    assert _run("--report-dir", str(results_dir)).returncode == 1
    doc = json.loads((results_dir / "report.json").read_text())
    assert (doc["scope"], doc["coverage"], doc["headline"]) == (["static"], "static-only", "FAIL (static tier only)")
    assert doc["verdict_reasons"][-1] == "the live tier was not run: this verdict does not cover it"
    assert "- the live tier was not run: this verdict does not cover it" in (results_dir / "report.md").read_text()


def test_html_link_goes_into_the_summary(results_dir):
    """--html-link sets where the Markdown summary points for the full report."""
    url = "https://ci.example/run/42#artifacts"
    assert _run("--report-dir", str(results_dir), "--html-link", url).returncode == 1
    assert f"Full report: [report.html]({url})" in (results_dir / "report.md").read_text()


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda d: d / "absent", "error: no such report directory: {d}/absent\n"),
    (lambda d: (d / "file").write_text("x") and d / "file",
     "error: report directory {d}/file is a file, not a directory\n"),
    (lambda d: d, "error: no results-*.json in {d}: run `nox -s static` or `nox -s conformance` "
                  "with --report-dir {d} first\n"),
    (lambda d: (d / "results-static.json").write_text("{") and d,
     "error: {d}/results-static.json: not valid JSON (line 1: Expecting property name enclosed in "
     "double quotes)\n"),
    (lambda d: _static_run(d) and (d / "faults.json").write_text("[") and d,
     "error: {d}/faults.json: not valid JSON (line 1: Expecting value)\n"),
], ids=["missing-dir", "dir-is-a-file", "no-results", "bad-json", "bad-faults-json"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, setup, expected):
    """Bad input ends with one `error:` line on stderr, exit code 2 and no traceback."""
    proc = _run("--report-dir", str(setup(tmp_path)))
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", expected.format(d=tmp_path))


def test_missing_compare_file_is_one_line(results_dir):
    """A --compare file that does not exist is one line and exit 2, and nothing is written."""
    proc = _run("--report-dir", str(results_dir), "--compare", str(results_dir / "old.json"))
    assert (proc.returncode, proc.stderr) == (
        2, f"error: --compare {results_dir}/old.json: cannot read (No such file or directory)\n")
    assert not list(results_dir.glob("report.*"))


def test_wrong_option_is_a_usage_error():
    """An unknown option prints usage and exits 2, as argparse does, without a traceback."""
    proc = _run("--reportdir", "x")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "python -m conformance.report: error: unrecognized arguments: --reportdir x")
