"""The report document: everything the sign-off report says, as one JSON-ready dict.

``report.json`` is this dict as it is; the HTML page and the Markdown summary are renderings of
it, so the three files cannot disagree: each prints ``headline``, which names the tiers the
verdict rests on. The schema is ``cortex-conformance/report``, version 1, described field by
field in ``report.schema.json`` beside this module.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from conformance.report import faults as fault_catalogue
from conformance.report import matrices as matrix_cells
from conformance.report import outcomes
from conformance.report.redact import redact
from conformance.report.results import Run, merge_matrices, merge_results

SCHEMA = "cortex-conformance/report"
SCHEMA_VERSION = 1
# The tiers each kind of run sets out to cover. A conformance run that dies before its live
# checks must leave the live tier "not run", not out of scope.
RUN_TIERS = {"static": ["static"], "conformance": ["static", "live"]}


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scope(runs: list[Run]) -> list[str]:
    tiers: set[str] = set()
    for run in runs:
        tiers.update(RUN_TIERS.get(run.name, []))
        tiers.update(r["tier"] for r in run.data["results"])
    return [t for t in outcomes.TIERS if t in tiers]


def _git(runs: list[Run], warnings: list[str]) -> dict[str, Any]:
    commits = {run.name: run.data["git"].get("commit") for run in runs}
    distinct = sorted({c for c in commits.values() if c})
    if len(distinct) > 1:
        warnings.append("the runs were made from different commits: "
                        + ", ".join(f"{name} at {(c or 'unknown')[:12]}" for name, c in commits.items()))
    flags = [run.data["git"].get("dirty") for run in runs]
    dirty = True if True in flags else (False if flags and all(f is False for f in flags) else None)
    return {"commit": runs[-1].data["git"].get("commit"), "dirty": dirty, "commits": distinct}


def _inputs(runs: list[Run], warnings: list[str]) -> list[dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    seen: dict[str, set[str]] = {}
    for run in runs:
        for item in run.data["inputs"]:
            name = str(item.get("name", ""))
            newest[name] = {"name": name, "source": item.get("source"), "sha256": item.get("sha256"),
                            "objects": item.get("objects"), "run": run.name}
            seen.setdefault(name, set()).add(str(item.get("sha256")))
    for name, digests in seen.items():
        if len(digests) > 1:
            warnings.append(f"input {name!r} was rendered differently by different runs "
                            f"(sha256 {', '.join(sorted(d[:12] for d in digests))}): "
                            "the tiers did not check the same manifests")
    return list(newest.values())


def _environment(runs: list[Run]) -> dict[str, Any]:
    for run in reversed(runs):
        if run.data["environment"]:
            return {**run.data["environment"], "run": run.name}
    return {}


def _phases(runs: list[Run]) -> list[dict[str, Any]]:
    return [{"run": run.name, "name": str(p.get("name", "")), "seconds": p.get("seconds")}
            for run in runs for p in run.data["phases"]]


def _run_entry(run: Run) -> dict[str, Any]:
    return {"run": run.name, "file": run.path.name,
            "junit": run.junit.name if run.junit else None, "junit_cases": run.junit_cases,
            "started_at": run.data["started_at"], "finished_at": run.data["finished_at"],
            "git": {"commit": run.data["git"].get("commit"), "dirty": run.data["git"].get("dirty")},
            "results": len(run.data["results"]), "tiers": RUN_TIERS.get(run.name, [])}


def _summary(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"controls": len(rows),
            "by_status": {s: sum(1 for r in rows if r["status"] == s) for s in outcomes.STATUS_ORDER},
            "tests": {o: sum(1 for r in results if r["outcome"] == o)
                      for o in ("passed", "failed", "error", "skipped")}}


def _control_warnings(results: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    warnings = []
    if any(not r.get("control") for r in results):
        warnings.append("some results name no control ID; they are listed under "
                        f"{outcomes.NO_CONTROL!r}")
    unknown = [r["id"] for r in rows if not r["in_catalogue"] and r["id"] != outcomes.NO_CONTROL]
    if unknown:
        warnings.append(f"results name controls that are not in the catalogue: {', '.join(unknown)}")
    return warnings


def _faults(faults: dict[str, Any] | None, warnings: list[str]) -> dict[str, Any] | None:
    if faults is None:
        return None
    summary, found = fault_catalogue.summarise(faults)
    warnings += found
    return summary


def build(runs: list[Run], *, generated_at: datetime, faults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report for ``runs`` (oldest first) and the fault catalogue's record, if any, with every
    embedded string redacted."""
    (redacted, faults), redactions = redact([[run.data for run in runs], faults])
    runs = [dataclasses.replace(run, data=data) for run, data in zip(runs, redacted, strict=True)]

    warnings = [w for run in runs for w in run.warnings]
    scope = _scope(runs)
    results = merge_results(runs)
    matrices = [matrix_cells.summarise(m) for m in merge_matrices(runs)]
    rows = outcomes.control_rows(results, scope)
    catalogue = _faults(faults, warnings)
    verdict, reasons = outcomes.verdict(rows, matrices, fault_catalogue.verdict_reason(catalogue))
    covered = outcomes.coverage(results)
    # A pass of the static tier alone must not read as a release sign-off.
    reasons += [f"the {tier} tier was not run: this verdict does not cover it"
                for tier in outcomes.TIERS if tier not in scope]

    warnings += _control_warnings(results, rows)
    git = _git(runs, warnings)
    warnings += fault_catalogue.commit_warning(catalogue, git["commits"])
    order = {row["id"]: i for i, row in enumerate(rows)}

    def by_control(result: dict[str, Any]) -> tuple[int, str]:
        return order.get(result.get("control") or outcomes.NO_CONTROL, len(order)), result["test"]

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": _utc(generated_at),
        "date": runs[-1].data["finished_at"],
        "verdict": verdict,
        "headline": outcomes.headline(verdict, covered),
        "coverage": covered,
        "verdict_reasons": reasons,
        "scope": scope,
        "git": git,
        "environment": _environment(runs),
        "inputs": _inputs(runs, warnings),
        "summary": _summary(rows, results),
        "controls": rows,
        "failures": sorted((r for r in results if r["outcome"] in outcomes.FAILING), key=by_control),
        "skips": sorted((r for r in results if r["outcome"] == "skipped"), key=by_control),
        "matrices": matrices,
        "phases": _phases(runs),
        "runs": [_run_entry(run) for run in runs],
        "results": sorted(results, key=by_control),
        "warnings": warnings,
        "faults": catalogue,
        "redactions": redactions,
        "comparison": None,
    }
