"""The live fault catalogue's record, ``faults.json``: whether the live tier proved it can fail.

``nox -s faults`` applies each fault of ``fixtures/faults.yaml`` to a passing cluster, runs the
live checks and undoes the fault. A fault is killed as expected when every control it expects to
fail did, for the reason the catalogue states (conformance.kills). A fault missed or killed for
another reason, a failed baseline or a fault left in place means a live PASS could be a check that
cannot fail, so any of them makes the report's verdict FAIL. A catalogue that did not run every
fault is not wrong, but partial: it proves only what it ran, and is never a sign-off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformance import kills
from conformance.errors import InputError
from conformance.report import shards
from conformance.report.results import read_record

FILE = "faults.json"
SCHEMA = "cortex-conformance/faults"
SCHEMA_VERSION = 1
_BASELINES = (("baseline_before", "the baseline before the catalogue"),
              ("baseline_after", "the baseline after the catalogue"))
_OUTCOMES = ("passed", "failed")


def _fail(path: Path, problem: str) -> InputError:
    return InputError(f"{path}: {problem}")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_baseline(path: Path, data: dict[str, Any], key: str) -> None:
    baseline = data.get(key)
    if baseline is None:
        return
    if not isinstance(baseline, dict) or baseline.get("outcome") not in _OUTCOMES:
        raise _fail(path, f"{key} must be an object with outcome passed or failed")
    if not _strings(baseline.get("failed_controls", [])):
        raise _fail(path, f"{key}.failed_controls must be a list of control IDs")


def _check_fault(path: Path, index: int, fault: Any) -> None:
    if not isinstance(fault, dict) or not isinstance(fault.get("name"), str):
        raise _fail(path, f"faults[{index}] has no name")
    where = f"faults[{index}] ({fault['name']})"
    if not _strings(fault.get("expect")):
        raise _fail(path, f"{where}: expect must be a list of control IDs")
    failed = fault.get("failed_controls", {})
    if not isinstance(failed, dict) or not all(_strings(v) for v in failed.values()):
        raise _fail(path, f"{where}: failed_controls must map control IDs to lists of messages")
    because = fault.get("because", {})
    if not isinstance(because, dict) or not all(isinstance(v, str) for v in because.values()):
        raise _fail(path, f"{where}: because must map control IDs to reason fragments")
    checks = fault.get("failed_checks", [])
    if not isinstance(checks, list) or not all(isinstance(c, dict) and isinstance(c.get("control"), str)
                                               for c in checks):
        raise _fail(path, f"{where}: failed_checks must be a list of checks, each naming its control")


def load(report_dir: Path) -> dict[str, Any] | None:
    """faults.json in ``report_dir``, checked; None when the catalogue was not run."""
    path = report_dir / FILE
    # A catalogue run in shards (faults-K-of-N.json) is merged into one record first, checked below as one.
    data = shards.load(report_dir, lambda at: read_record(at, SCHEMA, SCHEMA_VERSION, "a fault catalogue record"))
    if data is None and not path.exists():
        return None
    data = data or read_record(path, SCHEMA, SCHEMA_VERSION, "a fault catalogue record")
    if not isinstance(data.get("faults"), list):
        raise _fail(path, "missing field 'faults' (a list)")
    for key, _label in _BASELINES:
        _check_baseline(path, data, key)
    for index, fault in enumerate(data["faults"]):
        _check_fault(path, index, fault)
    return data


def _checks(fault: dict[str, Any]) -> list[dict[str, Any]]:
    # A record of before reasons were kept names only each failed control's messages.
    if "failed_checks" in fault:
        return fault["failed_checks"]
    return [{"test": "", "control": control, "outcome": "failed", "message": message}
            for control, messages in (fault.get("failed_controls") or {}).items() for message in messages]


def _fault(fault: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    failed_controls = fault.get("failed_controls") or {}
    # Judged here from expect, because and the failed checks rather than taken from the file, so that
    # the report and the catalogue cannot disagree on what killed means.
    per_control = kills.judge(fault["expect"], fault.get("because") or {}, _checks(fault))
    kill = kills.overall(per_control) if not fault.get("error") else kills.MISSED
    killed = kill == kills.AS_EXPECTED and not fault.get("error")
    if fault.get("killed") is not None and bool(fault.get("killed")) != killed:
        warnings.append(f"{FILE}: fault {fault['name']!r} is recorded as killed={fault.get('killed')} "
                        f"but its expected and failed checks say killed={killed}; the report counts the latter")
    return {"name": fault["name"], "description": fault.get("description") or "",
            "kind": fault.get("kind") or "", "expect": list(fault["expect"]),
            "because": dict(fault.get("because") or {}), "kills": per_control,
            "kill": kill if not fault.get("error") else "error",
            "failed": sorted(failed_controls), "failed_controls": failed_controls,
            "killed": killed, "missed": [c for c, k in per_control.items() if k == kills.MISSED],
            "other_reason": [c for c, k in per_control.items() if k == kills.OTHER_REASON],
            "leftovers": list(fault.get("leftovers") or []), "seconds": fault.get("seconds"),
            "undone": fault.get("undone"), "undo": fault.get("undo"), "error": fault.get("error"),
            "phase_seconds": fault.get("phase_seconds") or {}}


def _baseline(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    baseline = data.get(key)
    if baseline is None:
        return None
    return {"outcome": baseline["outcome"], "failed_controls": list(baseline.get("failed_controls") or []),
            "seconds": baseline.get("seconds")}


def _problems(summary: dict[str, Any]) -> list[str]:
    problems = []
    for key, label in _BASELINES:
        baseline = summary[key]
        if baseline is None:
            problems.append(f"{label} was not recorded")
        elif baseline["outcome"] != "passed":
            problems.append(f"{label} failed ({', '.join(baseline['failed_controls']) or 'no control named'})")
    if not summary["faults"]:
        problems.append("the catalogue holds no fault")
    missed = [f for f in summary["faults"] if f["missed"] or (not f["killed"] and not f["other_reason"])]
    if missed:
        names = ", ".join(f"{f['name']} (missed {', '.join(f['missed']) or 'nothing: it errored'})"
                          for f in missed)
        problems.append(f"{len(missed)} of {summary['total']} fault(s) not killed: {names}")
    other = [f for f in summary["faults"] if f["other_reason"] and not f["missed"]]
    if other:
        names = ", ".join(f"{f['name']} ("
                          + ", ".join(f"{c} not for {f['because'].get(c)!r}" for c in f["other_reason"]) + ")"
                          for f in other)
        problems.append(f"{len(other)} of {summary['total']} fault(s) killed, but not for the stated reason: {names}")
    left = [f["name"] for f in summary["faults"] if f["undone"] is not True]
    if left:
        problems.append(f"fault(s) not undone, so later results ran on a changed cluster: {', '.join(left)}")
    problems += [f"fault {f['name']} errored: {str(f['error']).strip().splitlines()[0]}"
                 for f in summary["faults"] if f["error"] and str(f["error"]).strip()]
    return problems


def _source(data: dict[str, Any]) -> str:
    """Where the record came from: faults.json, or the shard files merged into it."""
    shards = data.get("shards") or []
    return " + ".join(s["file"] for s in shards) if shards else FILE


def summarise(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The report's ``faults`` object for a checked (and redacted) faults.json, and any warnings."""
    warnings: list[str] = []
    faults = [_fault(f, warnings) for f in data["faults"]]
    summary = {
        "file": _source(data), "started_at": data.get("started_at"), "finished_at": data.get("finished_at"),
        "git": {"commit": (data.get("git") or {}).get("commit"), "dirty": (data.get("git") or {}).get("dirty")},
        "environment": data.get("environment") or {},
        "baseline_before": _baseline(data, "baseline_before"), "baseline_after": _baseline(data, "baseline_after"),
        "faults": faults, "killed": sum(1 for f in faults if f["killed"]), "total": len(faults),
        "by_kill": {k: sum(1 for f in faults if f["kill"] == k) for k in (*reversed(kills.ORDER), "error")},
        "wall_seconds": data.get("wall_seconds"),
        # The faults of fixtures/faults.yaml that this record did not run (`--only`): a partial catalogue
        # proves only what it ran, and the report says so beside its count.
        "signoff_run": data.get("signoff_run"),
        "not_run": sorted(set(data.get("catalogue") or []) - {f["name"] for f in faults}),
        "not_run_reasons": dict(data.get("not_run") or {}) if isinstance(data.get("not_run"), dict) else {},
        "inputs": [i for i in data.get("inputs") or [] if isinstance(i, dict)],
    }
    if summary["not_run"]:
        why = summary["not_run_reasons"]
        total = len(faults) + len(summary["not_run"])
        warnings.append(f"{summary['file']} ran {len(faults)} of the catalogue's {total} "
                        "faults; not run: " + ", ".join(f"{n} ({why.get(n, '--only')})" for n in summary["not_run"]))
    summary["problems"] = _problems(summary)
    return summary, warnings


def verdict_reason(summary: dict[str, Any] | None) -> list[str]:
    """The one line that fails the verdict when the catalogue did not prove the live tier can fail."""
    if not summary or not summary["problems"]:
        return []
    return ["the live tier could not prove it can fail: " + "; ".join(summary["problems"])]
