"""Reading results files: what is accepted, how runs merge, and one-line errors for the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.errors import InputError
from conformance.report.results import load_run, load_runs, merge_matrices, merge_results


def _results(run: str, finished: str, results: list[dict], **extra) -> dict:
    return {"schema": "cortex-conformance/results", "schema_version": 1, "run": run,
            "started_at": "2026-11-25T20:00:00Z", "finished_at": finished,
            "git": {"commit": None, "dirty": None}, "inputs": [], "environment": {}, "phases": [],
            "results": results, "matrices": [], **extra}


def _result(test: str, outcome: str = "passed", tier: str = "static", control: str = "SEC-01") -> dict:
    return {"test": test, "control": control, "tier": tier, "input": "dev", "outcome": outcome,
            "message": "", "objects": [], "evidence": [], "duration_s": 0.1}


def _write(directory: Path, name: str, data) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_runs_are_read_oldest_first(tmp_path):
    """Runs sort by finished_at, whatever their file names."""
    _write(tmp_path, "results-static.json", _results("static", "2026-11-25T22:00:00Z", []))
    _write(tmp_path, "results-conformance.json", _results("conformance", "2026-11-25T21:00:00Z", []))
    assert [r.name for r in load_runs(tmp_path)] == ["conformance", "static"]


def test_newer_run_wins_per_test_id(tmp_path):
    """The same test in two runs keeps the outcome of the run that finished last."""
    _write(tmp_path, "results-static.json",
           _results("static", "2026-11-25T22:00:00Z", [_result("t::a", "failed")]))
    _write(tmp_path, "results-conformance.json",
           _results("conformance", "2026-11-25T21:00:00Z", [_result("t::a"), _result("t::b")]))
    merged = {r["test"]: (r["outcome"], r["run"]) for r in merge_results(load_runs(tmp_path))}
    assert merged == {"t::a": ("failed", "static"), "t::b": ("passed", "conformance")}


def test_newer_matrix_wins_per_name_tier_and_input(tmp_path):
    """A matrix recorded by two runs is taken from the later one."""
    cells = [{"case": "valid", "expected": 200, "observed": 200}]
    matrix = {"name": "jwt", "tier": "live", "input": "dev"}
    _write(tmp_path, "results-a.json", _results("a", "2026-11-25T20:00:00Z", [],
                                                matrices=[{**matrix, "cells": []}]))
    _write(tmp_path, "results-b.json", _results("b", "2026-11-25T21:00:00Z", [],
                                                matrices=[{**matrix, "cells": cells}]))
    assert [(m["run"], m["cells"]) for m in merge_matrices(load_runs(tmp_path))] == [("b", cells)]


def test_junit_count_mismatch_is_a_warning(tmp_path):
    """A JUnit file that holds more test cases than the results file is reported, not ignored."""
    path = _write(tmp_path, "results-static.json",
                  _results("static", "2026-11-25T20:00:00Z", [_result("t::a")]))
    _write(tmp_path, "junit-static.xml",
           '<testsuites><testsuite><testcase name="a"/><testcase name="b"/></testsuite></testsuites>')
    assert load_run(path).warnings == ["junit-static.xml holds 2 test cases but results-static.json holds "
                                       "1 results"]


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "not valid JSON (line 1: Expecting property name enclosed in double quotes)"),
    ({"schema": "something-else"}, "not a results file (schema is not 'cortex-conformance/results')"),
    ({"schema": "cortex-conformance/results", "schema_version": 2},
     "schema_version 2 is not supported (this report reads 1)"),
    (_results("static", "yesterday", []), "finished_at is not an ISO 8601 time: 'yesterday'"),
    (_results("static", "2026-11-25T20:00:00", []), "finished_at has no time zone: '2026-11-25T20:00:00'"),
    (_results("static", "2026-11-25T20:00:00Z", [_result("t::a", outcome="xpassed")]),
     "results[0] (t::a): unknown outcome 'xpassed'"),
    (_results("static", "2026-11-25T20:00:00Z", [_result("t::a", tier="smoke")]),
     "results[0] (t::a): unknown tier 'smoke'"),
    (_results("static", "2026-11-25T20:00:00Z", [], matrices=[{"name": "jwt", "cells": [{"case": "x"}]}]),
     "matrices[0] (jwt): cells must be objects with 'expected'"),
], ids=["invalid-json", "wrong-schema", "newer-version", "bad-time", "naive-time", "bad-outcome",
        "bad-tier", "bad-matrix"])
def test_bad_results_file_is_one_line_naming_file_and_field(tmp_path, content, problem):
    """A malformed results file raises InputError with the file and the problem on one line."""
    path = _write(tmp_path, "results-static.json", content)
    with pytest.raises(InputError) as caught:
        load_run(path)
    assert str(caught.value) == f"{path}: {problem}"


def test_missing_directory_is_one_line(tmp_path):
    """A report directory that does not exist is named in the error."""
    with pytest.raises(InputError, match=r"^no such report directory: .*/absent$"):
        load_runs(tmp_path / "absent")


def test_directory_without_results_says_what_to_run(tmp_path):
    """An empty report directory says which session writes results."""
    with pytest.raises(InputError, match=r"^no results-\*\.json in .*: run `nox -s static` or `nox -s conformance`"):
        load_runs(tmp_path)
