"""From test results to a result per control and tier, and from those to the verdict.

A control's result in a tier is the worst outcome of its tests in that tier. A definite
``failed`` outranks ``error`` (the check could not decide), which outranks ``skipped``. A tier
with no test is ``not run``, or ``n/a`` when the catalogue gives the control no check there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conformance import controls
from conformance.controls import Control

TIERS = ("static", "live")
NOT_RUN = "not run"
NOT_APPLICABLE = "n/a"
NOT_RUN_REASON = "no check ran for this tier"
NO_CONTROL = "(none)"

_WORST_FIRST = ("failed", "error", "skipped", "passed")
# Display and sort order of a control's overall status: what needs a reader comes first.
STATUS_ORDER = ("failed", "error", "skipped", NOT_RUN, "passed")
FAILING = frozenset({"failed", "error"})


def matrix_value(value: Any) -> Any:
    """How a matrix cell reads: a network cell's true or false is a flow allowed or blocked."""
    if isinstance(value, bool):
        return "allowed" if value else "blocked"
    return value


def worst(outcomes: Iterable[str]) -> str:
    present = set(outcomes)
    for outcome in _WORST_FIRST:
        if outcome in present:
            return outcome
    return NOT_RUN


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def tier_result(control: Control | None, tier: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The result of one control in one tier, with the reason when it did not pass or fail."""
    if not results:
        declared = control is None or tier in control.tiers
        return {"result": NOT_RUN if declared else NOT_APPLICABLE,
                "reason": NOT_RUN_REASON if declared else f"the control has no {tier} check",
                "tests": []}
    result = worst(r["outcome"] for r in results)
    reason = ""
    if result != "passed":
        reason = "; ".join(_unique(_first_line(r.get("message") or "") for r in results
                                   if r["outcome"] == result)) or f"a check {result} without a message"
    return {"result": result, "reason": reason, "tests": sorted(r["test"] for r in results)}


def _counted_tiers(tiers: dict[str, dict[str, Any]], scope: Iterable[str]) -> list[str]:
    # A tier counts when the control has a check there and a run of that tier was made,
    # or when a check ran there anyway.
    return [t for t in TIERS
            if tiers[t]["tests"] or (tiers[t]["result"] != NOT_APPLICABLE and t in scope)]


def control_status(tiers: dict[str, dict[str, Any]], scope: Iterable[str]) -> str:
    """Overall status over the tiers that were in this report's scope and apply to the control."""
    counted = [tiers[t]["result"] for t in _counted_tiers(tiers, scope)]
    for status in ("failed", "error", "skipped", NOT_RUN):
        if status in counted:
            return status
    return "passed" if counted else NOT_RUN


def agreement(tiers: dict[str, dict[str, Any]]) -> bool | None:
    """Whether both tiers reached the same verdict; None unless both passed or failed."""
    static, live = tiers["static"]["result"], tiers["live"]["result"]
    decided = {"passed", "failed"}
    if static in decided and live in decided:
        return static == live
    return None


def control_rows(results: list[dict[str, Any]], scope: list[str]) -> list[dict[str, Any]]:
    """A row for every catalogue control, plus any control id the results name that it lacks."""
    by_control: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_control.setdefault(result.get("control") or NO_CONTROL, []).append(result)

    # Read at call time: the catalogue is data, and a new family must need no change here.
    catalogue = controls.CATALOGUE
    known = [(c.id, c) for c in catalogue]
    extra = [(cid, None) for cid in sorted(by_control) if cid not in {c.id for c in catalogue}]
    rows = []
    for position, (cid, control) in enumerate(known + extra):
        mine = by_control.get(cid, [])
        tiers = {t: tier_result(control, t, [r for r in mine if r["tier"] == t]) for t in TIERS}
        rows.append({
            "id": cid,
            "family": control.family if control else "",
            "family_title": controls.FAMILIES.get(control.family, "") if control else "",
            "title": control.title if control else (
                "results without a control ID" if cid == NO_CONTROL else "not in the control catalogue"),
            "rationale": control.rationale if control else "",
            "tiers": list(control.tiers) if control else [],
            "in_catalogue": control is not None,
            "static": tiers["static"],
            "live": tiers["live"],
            "agree": agreement(tiers),
            # The tiers the control has a check in that did not run: a "passed" over the others is partial.
            "untested_tiers": [t for t in TIERS if control and t in control.tiers and tiers[t]["result"] == NOT_RUN],
            "status": control_status(tiers, scope),
            "in_scope": bool(_counted_tiers(tiers, scope)),
            "_position": position,
        })
    rows.sort(key=lambda r: (STATUS_ORDER.index(r["status"]), r["_position"]))
    for row in rows:
        del row["_position"]
    return rows


def _where(matrix: dict[str, Any]) -> str:
    return f"{matrix['name']} matrix ({matrix['tier']}, {matrix['input']})"


def verdict(rows: list[dict[str, Any]], matrices: list[dict[str, Any]],
            also_failing: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``fail`` on any failing control, matrix mismatch or ``also_failing`` reason (the fault
    catalogue's); ``incomplete`` if anything in scope did not run or a matrix cell was not probed;
    else ``pass``. The reasons say which, in counts a reader can check."""
    reasons = []
    counts = {s: sum(1 for r in rows if r["status"] == s and r["in_scope"]) for s in STATUS_ORDER}
    if counts["failed"]:
        reasons.append(f"{counts['failed']} control(s) failed")
    if counts["error"]:
        reasons.append(f"{counts['error']} control(s) could not be checked (error)")
    reasons += [f"{_where(m)}: {m['mismatches']} mismatch(es)" for m in matrices if m["mismatches"]]
    reasons += list(also_failing)
    if reasons:
        return "fail", reasons
    if counts["skipped"]:
        reasons.append(f"{counts['skipped']} control(s) skipped")
    if counts[NOT_RUN]:
        reasons.append(f"{counts[NOT_RUN]} control(s) not run")
    # A cell nobody probed is not evidence that the flow behaves, so it cannot count as a pass.
    reasons += [f"{_where(m)}: {m['unprobed']} cell(s) not probed" for m in matrices if m.get("unprobed")]
    if reasons:
        return "incomplete", reasons
    return "pass", [f"all {counts['passed']} control(s) passed"]


def coverage(results: list[dict[str, Any]]) -> str:
    """Which tiers the verdict rests on: the tiers that have at least one result."""
    tiers = [t for t in TIERS if any(r["tier"] == t for r in results)]
    if not tiers:
        return "none"
    return "+".join(tiers) if len(tiers) > 1 else f"{tiers[0]}-only"


# What a PASS claims at each level: nothing short of a sign-off prints a bare PASS.
LEVELS = ("static", "live", "signoff")
PASS_AT = {"static": "PASS (static tier only)", "live": "PASS (live, not fault-proven)", "signoff": "SIGN-OFF PASS"}


def headline(verdict_name: str, covered: str, level: str = "static") -> str:
    """The verdict as every rendering prints it: a verdict resting on less than a sign-off says so in the words."""
    if verdict_name == "pass" and covered in ("static-only", "static+live"):
        return PASS_AT[level]
    qualifier = {"static-only": " (static tier only)", "live-only": " (live tier only)",
                 "none": " (no check ran)"}.get(covered, "")
    return verdict_name.upper() + qualifier
