"""What changed since an earlier report: controls newly failing, fixed, added and removed, inputs
added, removed or rendered differently, and faults of the catalogue killed another way.

The earlier report is a ``report.json`` this package wrote. Controls are matched by ID; a
control's overall status decides which list it lands in, and its tier results show how.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.errors import InputError
from conformance.report import document
from conformance.report.outcomes import FAILING


def load_report(path: Path) -> dict[str, Any]:
    """An earlier report.json, checked enough to compare against; one-line errors otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--compare {path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"--compare {path}: not valid JSON") from None
    if not isinstance(data, dict) or data.get("schema") != document.SCHEMA:
        raise InputError(f"--compare {path}: not a report.json (schema is not {document.SCHEMA!r})")
    if data.get("schema_version") != document.SCHEMA_VERSION:
        raise InputError(f"--compare {path}: schema_version {data.get('schema_version')!r} is not "
                         f"supported (this report reads {document.SCHEMA_VERSION})")
    controls = data.get("controls")
    if not isinstance(controls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("status"), str)
            for c in controls):
        raise InputError(f"--compare {path}: 'controls' must be a list of objects with id and status")
    return data


def _tier_change(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    return {tier: [old[tier]["result"], new[tier]["result"]] for tier in ("static", "live")
            if old.get(tier, {}).get("result") != new[tier]["result"]}


def compare(new: dict[str, Any], old: dict[str, Any], *, old_path: str) -> dict[str, Any]:
    """The differences between two report documents, for ``new["comparison"]``."""
    old_rows = {c["id"]: c for c in old["controls"]}
    new_rows = {c["id"]: c for c in new["controls"]}
    changes: dict[str, list[dict[str, Any]]] = {
        "newly_failing": [], "fixed": [], "still_failing": [], "other_changes": []}
    for cid, row in new_rows.items():
        before = old_rows.get(cid)
        if before is None:
            continue
        entry = {"id": cid, "title": row["title"], "from": before["status"], "to": row["status"],
                 "tiers": _tier_change(before, row)}
        if row["status"] in FAILING and before["status"] not in FAILING:
            changes["newly_failing"].append(entry)
        elif before["status"] in FAILING and row["status"] == "passed":
            changes["fixed"].append(entry)
        elif before["status"] in FAILING and row["status"] in FAILING:
            changes["still_failing"].append(entry)
        elif before["status"] != row["status"] or entry["tiers"]:
            changes["other_changes"].append(entry)

    return {
        "against": old_path,
        "against_date": old.get("date"),
        "against_commit": (old.get("git") or {}).get("commit"),
        "against_verdict": old.get("verdict"),
        "against_headline": old.get("headline"),
        **changes,
        "added": [{"id": cid, "title": row["title"], "to": row["status"]}
                  for cid, row in new_rows.items() if cid not in old_rows],
        "removed": [{"id": cid, "title": row.get("title", ""), "from": row["status"]}
                    for cid, row in old_rows.items() if cid not in new_rows],
        **input_changes(new.get("inputs") or [], old.get("inputs") or []),
        **fault_changes(new.get("faults"), old.get("faults")),
    }


def _kills(catalogue: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(catalogue, dict) or not isinstance(catalogue.get("faults"), list):
        return None
    return {str(f.get("name")): f for f in catalogue["faults"] if isinstance(f, dict)}


def fault_changes(new: Any, old: Any) -> dict[str, Any]:
    """The fault catalogues of both reports, fault by fault: judged another way (the fault's kill, or one
    expected control's), added or removed. `faults_compared` is None when either report has no catalogue,
    so that "no fault changed" is never said of catalogues that were not both there."""
    after, before = _kills(new), _kills(old)
    if after is None or before is None:
        return {"faults_compared": None, "faults_changed": [], "faults_added": [], "faults_removed": []}
    changed = [{"name": name, "from": before[name].get("kill"), "to": fault.get("kill"),
                "kills_from": before[name].get("kills") or {}, "kills_to": fault.get("kills") or {}}
               for name, fault in after.items() if name in before
               and (before[name].get("kill"), before[name].get("kills")) != (fault.get("kill"), fault.get("kills"))]
    return {"faults_compared": len(set(after) & set(before)), "faults_changed": changed,
            "faults_added": [{"name": n, "to": f.get("kill")} for n, f in after.items() if n not in before],
            "faults_removed": [{"name": n, "from": f.get("kill")} for n, f in before.items() if n not in after]}


def _by_name(inputs: list[Any]) -> dict[str, dict[str, Any]]:
    return {str(i.get("name")): i for i in inputs if isinstance(i, dict)}


def input_changes(new: list[dict[str, Any]], old: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Inputs added, removed, and rendered differently (by sha256 of the manifests, or by source).

    Inputs are matched by name: an overlay renamed, or a base+dev pair compared with a single
    file, shows as removed and added rather than as no change.
    """
    before, after = _by_name(old), _by_name(new)

    def entry(item: dict[str, Any]) -> dict[str, Any]:
        return {"name": str(item.get("name")), "source": item.get("source"), "sha256": item.get("sha256")}

    changed = [{"name": name, "source": item.get("source"), "from_source": before[name].get("source"),
                "from": before[name].get("sha256"), "to": item.get("sha256")}
               for name, item in after.items() if name in before
               and (before[name].get("sha256"), before[name].get("source")) != (item.get("sha256"), item.get("source"))]
    return {"inputs_changed": changed,
            "inputs_added": [entry(i) for name, i in after.items() if name not in before],
            "inputs_removed": [entry(i) for name, i in before.items() if name not in after]}
