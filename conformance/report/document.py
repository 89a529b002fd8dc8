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


def _git(runs: list[Run]) -> dict[str, Any]:
    commits = {run.name: run.data["git"].get("commit") for run in runs}
    distinct = sorted({c for c in commits.values() if c})
    flags = [run.data["git"].get("dirty") for run in runs]
    dirty = True if True in flags else (False if flags and all(f is False for f in flags) else None)
    return {"commit": runs[-1].data["git"].get("commit"), "dirty": dirty, "commits": distinct}


def _inputs(runs: list[Run]) -> list[dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:
        for item in run.data["inputs"]:
            name = str(item.get("name", ""))
            newest[name] = {"name": name, "source": item.get("source"), "sha256": item.get("sha256"),
                            "objects": item.get("objects"), "in_commit": item.get("in_commit"), "run": run.name}
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
            # Controls whose check in a tier did not run, per tier: a static-only report has every live half
            # not run, and the header says so beside the statuses.
            "tier_not_run": {t: sum(1 for r in rows if t in r["untested_tiers"]) for t in outcomes.TIERS},
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


def _level(verdict_name: str, runs: list[Run], scope: list[str], catalogue: dict[str, Any] | None,
           git: dict[str, Any], environment: dict[str, Any], inputs: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """How far the evidence goes (static, live, signoff), and why it goes no further.

    Sign-off is static + live + the whole fault catalogue, every fault killed as expected and undone, on the
    same commit and manifests (evidence.check_one_run refused anything else before this) from a clean tree,
    on the platform the live checks ran on.
    """
    if "live" not in scope:
        return "static", ["the live tier was not run"]
    short = []
    if catalogue is None:
        short.append("the fault catalogue was not run (faults.json is missing): nothing proved the live checks "
                     "can fail; `nox -s signoff` runs it")
    else:
        if catalogue["not_run"]:
            short.append(f"the fault catalogue is partial: {len(catalogue['not_run'])} fault(s) not run")
        if catalogue["problems"]:
            short.append("the fault catalogue did not prove the live tier can fail")
        platform = {k: (catalogue["environment"].get(k), environment.get(k)) for k in ("kubernetes", "istio")}
        differs = {k: v for k, v in platform.items() if v[0] != v[1]}
        if differs:
            short.append("the fault catalogue ran on another platform than the live checks: " + ", ".join(
                f"{k} {a} vs {b}" for k, (a, b) in differs.items()))
        # One `nox -s signoff` made both, on one cluster state: not a catalogue of one day beside checks of another.
        ids = {run.data.get("signoff_run") for run in runs if "live" in RUN_TIERS.get(run.name, [])}
        if not catalogue.get("signoff_run") or ids != {catalogue["signoff_run"]}:
            short.append("the live checks and the fault catalogue were not made by one `nox -s signoff` run")
    if git.get("dirty") is not False:
        short.append("the working tree had uncommitted changes (or git could not tell), so no commit holds "
                     "what was checked")
    outside = [i["name"] for i in inputs if i.get("in_commit") is False]
    if outside:
        short.append(f"the commit does not hold the input(s) checked: {', '.join(outside)}")
    if verdict_name != "pass":
        short.append(f"the verdict is {verdict_name.upper()}")
    return ("live", short) if short else ("signoff", [])

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
    git = _git(runs)
    environment = _environment(runs)
    inputs = _inputs(runs)
    level, short_of_signoff = _level(verdict, runs, scope, catalogue, git, environment, inputs)
    order = {row["id"]: i for i, row in enumerate(rows)}

    def by_control(result: dict[str, Any]) -> tuple[int, str]:
        return order.get(result.get("control") or outcomes.NO_CONTROL, len(order)), result["test"]

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": _utc(generated_at),
        "date": runs[-1].data["finished_at"],
        "verdict": verdict,
        "headline": outcomes.headline(verdict, covered, level),
        "level": level,
        "short_of_signoff": short_of_signoff,
        "coverage": covered,
        "verdict_reasons": reasons,
        "scope": scope,
        "git": git,
        "environment": environment,
        "inputs": inputs,
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
