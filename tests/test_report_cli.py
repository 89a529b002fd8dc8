"""``python -m conformance.report``: the files it writes and its one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_writes_three_files_and_one_summary_line(results_dir):
    """A results directory gets report.html, report.md and report.json, and stdout one line."""
    proc = _run("--report-dir", str(results_dir))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == (f"report: FAIL (5 failed, 1 error, 3 skipped, 2 not run, 25 passed) "
                           f"-> {results_dir / 'report.html'}\n")
    assert sorted(p.name for p in results_dir.glob("report.*")) == ["report.html", "report.json", "report.md"]


def test_compare_with_the_previous_report(results_dir, tmp_path):
    """--compare puts the changes since an earlier report.json into all three files."""
    assert _run("--report-dir", str(results_dir)).returncode == 0
    old = json.loads((results_dir / "report.json").read_text())
    sec02 = next(c for c in old["controls"] if c["id"] == "SEC-02")
    sec02["status"], sec02["static"]["result"] = "passed", "passed"
    old["controls"] = [c for c in old["controls"] if c["id"] != "GW-03"]
    (tmp_path / "old.json").write_text(json.dumps(old))

    proc = _run("--report-dir", str(results_dir), "--compare", str(tmp_path / "old.json"))
    assert proc.returncode == 0, proc.stderr
    comparison = json.loads((results_dir / "report.json").read_text())["comparison"]
    assert ([i["id"] for i in comparison["newly_failing"]], [i["id"] for i in comparison["added"]]) == (
        ["SEC-02"], ["GW-03"])
    assert "- Newly failing: `SEC-02`" in (results_dir / "report.md").read_text()
    assert "Changes since the previous report" in (results_dir / "report.html").read_text()


def test_static_only_report_says_the_live_tier_did_not_run(results_dir):
    """A report of a static run alone says, in its verdict, that it does not cover the live tier."""
    (results_dir / "results-conformance.json").unlink()
    (results_dir / "junit-conformance.xml").unlink()
    assert _run("--report-dir", str(results_dir)).returncode == 0
    doc = json.loads((results_dir / "report.json").read_text())
    assert doc["scope"] == ["static"]
    assert doc["verdict_reasons"][-1] == "the live tier was not run: this verdict does not cover it"
    assert "- the live tier was not run: this verdict does not cover it" in (results_dir / "report.md").read_text()


def test_html_link_goes_into_the_summary(results_dir):
    """--html-link sets where the Markdown summary points for the full report."""
    url = "https://ci.example/run/42#artifacts"
    assert _run("--report-dir", str(results_dir), "--html-link", url).returncode == 0
    assert f"Full report: [report.html]({url})" in (results_dir / "report.md").read_text()


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda d: d / "absent", "report: no such report directory: {d}/absent\n"),
    (lambda d: d, "report: no results-*.json in {d}: run `nox -s static` or `nox -s conformance` "
                  "with --report-dir {d} first\n"),
    (lambda d: (d / "results-static.json").write_text("{") and d,
     "report: {d}/results-static.json: not valid JSON (line 1: Expecting property name enclosed in "
     "double quotes)\n"),
], ids=["missing-dir", "no-results", "bad-json"])
def test_bad_input_is_one_line_and_exit_1(tmp_path, setup, expected):
    """Bad input ends with one line on stderr, exit code 1 and no traceback."""
    proc = _run("--report-dir", str(setup(tmp_path)))
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", expected.format(d=tmp_path))


def test_missing_compare_file_is_one_line(results_dir):
    """A --compare file that does not exist is one line and exit 1, and nothing is written."""
    proc = _run("--report-dir", str(results_dir), "--compare", str(results_dir / "old.json"))
    assert (proc.returncode, proc.stderr) == (
        1, f"report: --compare {results_dir}/old.json: cannot read (No such file or directory)\n")
    assert not list(results_dir.glob("report.*"))


def test_wrong_option_is_a_usage_error():
    """An unknown option prints usage and exits 2, as argparse does, without a traceback."""
    proc = _run("--reportdir", "x")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "python -m conformance.report: error: unrecognized arguments: --reportdir x")
