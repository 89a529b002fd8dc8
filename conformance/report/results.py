"""Reading the results files a suite run leaves in ``--report-dir``.

Each pytest run writes ``results-<run>.json`` (schema ``cortex-conformance/results``, version 1)
next to pytest's own ``junit-<run>.xml``. A directory may hold a static run and a conformance
run made at different times; where both hold the same test, the run that finished last wins,
because the conformance run repeats the static checks against the same overlay.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from conformance.errors import InputError

SCHEMA = "cortex-conformance/results"
SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "skipped", "error")
TIERS = ("static", "live")


@dataclass
class Run:
    """One results file, as written by one pytest run."""

    path: Path
    data: dict[str, Any]
    finished: datetime
    junit: Path | None = None
    junit_cases: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.data["run"]


def _fail(path: Path, problem: str) -> InputError:
    return InputError(f"{path}: {problem}")


def _timestamp(path: Path, data: dict[str, Any], key: str) -> datetime:
    value = data.get(key)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise _fail(path, f"{key} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise _fail(path, f"{key} has no time zone: {value!r}")
    return parsed


def _require(path: Path, data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise _fail(path, f"missing field {key!r}")
    if not isinstance(data[key], kind):
        raise _fail(path, f"field {key!r} has the wrong type ({type(data[key]).__name__})")
    return data[key]


def _check_result(path: Path, index: int, result: Any) -> None:
    where = f"results[{index}]"
    if not isinstance(result, dict):
        raise _fail(path, f"{where} is not an object")
    for key in ("test", "outcome", "tier"):
        if not isinstance(result.get(key), str):
            raise _fail(path, f"{where} has no {key!r}")
    if result["outcome"] not in OUTCOMES:
        raise _fail(path, f"{where} ({result['test']}): unknown outcome {result['outcome']!r}")
    if result["tier"] not in TIERS:
        raise _fail(path, f"{where} ({result['test']}): unknown tier {result['tier']!r}")
    if result.get("control") is not None and not isinstance(result["control"], str):
        raise _fail(path, f"{where} ({result['test']}): control is not a string")


def _check_matrix(path: Path, index: int, matrix: Any) -> None:
    where = f"matrices[{index}]"
    if not isinstance(matrix, dict) or not isinstance(matrix.get("name"), str):
        raise _fail(path, f"{where} has no name")
    cells = matrix.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) and "expected" in c for c in cells):
        raise _fail(path, f"{where} ({matrix['name']}): cells must be objects with 'expected'")


def _count_junit_cases(path: Path) -> int:
    # The suite's own pytest output, written on this machine: not untrusted XML.
    try:
        root = ET.parse(path).getroot()  # noqa: S314
    except ET.ParseError as exc:
        raise _fail(path, f"not valid JUnit XML ({exc})") from None
    return len(root.findall(".//testcase"))


def read_record(path: Path, schema: str, version: int, what: str) -> dict[str, Any]:
    """A JSON record the suite wrote (results, the fault catalogue's): read, with its schema and version
    checked; any problem is one line naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("schema") != schema:
        raise _fail(path, f"not {what} (schema is not {schema!r})")
    if data.get("schema_version") != version:
        raise _fail(path, f"schema_version {data.get('schema_version')!r} is not supported "
                          f"(this report reads {version})")
    return data


def load_run(path: Path) -> Run:
    """Read and check one results file; any problem is one line naming the file and the field."""
    data = read_record(path, SCHEMA, SCHEMA_VERSION, "a results file")
    _require(path, data, "run", str)
    for key, kind in (("results", list), ("inputs", list), ("phases", list), ("matrices", list),
                      ("environment", dict), ("git", dict)):
        data.setdefault(key, kind())
        _require(path, data, key, kind)
    _timestamp(path, data, "started_at")
    finished = _timestamp(path, data, "finished_at")
    for index, result in enumerate(data["results"]):
        _check_result(path, index, result)
    for index, matrix in enumerate(data["matrices"]):
        _check_matrix(path, index, matrix)

    run = Run(path=path, data=data, finished=finished)
    junit = path.with_name(f"junit-{run.name}.xml")
    if junit.is_file():
        run.junit = junit
        run.junit_cases = _count_junit_cases(junit)
        if run.junit_cases != len(data["results"]):
            run.warnings.append(f"{junit.name} holds {run.junit_cases} test cases but {path.name} "
                                f"holds {len(data['results'])} results")
    return run


def load_runs(report_dir: Path) -> list[Run]:
    """Every results file in ``report_dir``, oldest first."""
    if not report_dir.exists():
        raise InputError(f"no such report directory: {report_dir}")
    if not report_dir.is_dir():
        raise InputError(f"report directory {report_dir} is a file, not a directory")
    paths = sorted(report_dir.glob("results-*.json"))
    if not paths:
        raise InputError(f"no results-*.json in {report_dir}: run `nox -s static` or "
                         f"`nox -s conformance` with --report-dir {report_dir} first")
    return sorted((load_run(p) for p in paths), key=lambda r: (r.finished, r.path.name))


def merge_results(runs: list[Run]) -> list[dict[str, Any]]:
    """One result per test id; the run that finished last wins. Each result names its run."""
    merged: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first, so later runs overwrite
        for result in run.data["results"]:
            merged[result["test"]] = {**result, "run": run.name}
    return list(merged.values())


def merge_matrices(runs: list[Run]) -> list[dict[str, Any]]:
    """One matrix per (name, tier, input); the run that finished last wins."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:
        for matrix in run.data["matrices"]:
            key = (matrix["name"], str(matrix.get("tier", "")), str(matrix.get("input", "")))
            merged[key] = {**matrix, "run": run.name}
    return list(merged.values())
