"""The fault catalogue on the HTML page: which faults the live tier caught, and which it missed.

A missed fault is the one row a reviewer must not overlook: it is red and says MISSED in words.
"""

from __future__ import annotations

from typing import Any

from conformance.report.html_parts import badge, codes, e, seconds, table


def _messages(failed_controls: dict[str, list[str]]) -> str:
    if not failed_controls:
        return "none"
    items = "".join(f"<dt><code>{e(cid)}</code></dt>" + "".join(f"<dd><pre>{e(m)}</pre></dd>" for m in lines)
                    for cid, lines in failed_controls.items())
    return f"<details><summary>{codes(list(failed_controls))}</summary><dl>{items}</dl></details>"


def _kill(fault: dict[str, Any]) -> str:
    """Killed as expected, killed for another reason (with the reason it should have failed for), or missed."""
    if fault["killed"]:
        return "✓ killed as expected"
    if fault["missed"]:
        return f"✗ MISSED ({', '.join(fault['missed'])} did not fail)"
    other = fault.get("other_reason") or []
    if other:
        return "✗ killed, other reason (" + "; ".join(
            f"{c} did not fail for “{fault.get('because', {}).get(c, '')}”" for c in other) + ")"
    return "✗ MISSED"


def _fault_row(fault: dict[str, Any]) -> str:
    killed = _kill(fault)
    undone = {True: "yes", False: "NO: left in place"}.get(fault["undone"], "not recorded")
    if fault["undone"] and fault.get("undo"):
        undone += f", {fault['undo']}"
    error = f'<pre class="fault-error">{e(fault["error"])}</pre>' if fault["error"] else ""
    return (f'<tr class="{"" if fault["killed"] else "missed"}"><td><b>{e(fault["name"])}</b>'
            f'<span class="reason">{e(fault["description"])}</span>{error}</td><td>{e(fault["kind"])}</td>'
            f"<td>{codes(fault['expect'])}</td><td>{_messages(fault['failed_controls'])}</td>"
            f"<td>{e(killed)}</td><td>{e(undone)}</td><td class=num>{seconds(fault['seconds'])}</td></tr>")


def _baselines(catalogue: dict[str, Any]) -> str:
    rows = []
    for key, label in (("baseline_before", "before the faults"), ("baseline_after", "after the faults")):
        base = catalogue[key]
        if base is None:
            rows.append(f"<tr><td>{label}</td><td>{badge('not run')}</td><td>not recorded</td><td>—</td></tr>")
            continue
        rows.append(f"<tr><td>{label}</td><td>{badge(base['outcome'])}</td>"
                    f"<td>{codes(base['failed_controls'])}</td><td class=num>{seconds(base['seconds'])}</td></tr>")
    return table(["Baseline", "Outcome", "Failed controls", "Seconds"], rows)


def section(doc: dict[str, Any]) -> str:
    """The fault catalogue's section, or nothing when faults.json was not in the report directory."""
    catalogue = doc.get("faults")
    if not catalogue:
        return ""
    commit = catalogue["git"]["commit"]
    head = (f'<h2 id="faults">Fault catalogue</h2><p class="meta">Each fault is applied to the passing cluster, '
            "the live checks run, and the fault is undone and the cluster seen back to the baseline. A fault is "
            "killed as expected when every control it expects to fail did fail, for the reason the catalogue "
            f"states. Run {e(catalogue['started_at'])} to {e(catalogue['finished_at'])}, commit "
            f"<code>{e((commit or '')[:12] or None)}</code>, {seconds(catalogue['wall_seconds'])} s.</p>"
            f'<p class="killed"><b>{catalogue["killed"]} of {catalogue["total"]} fault(s) killed as expected</b>'
            + (f" (a partial catalogue; not run: {e(', '.join(catalogue['not_run']))})"
               if catalogue.get("not_run") else "") + "</p>")
    problems = ""
    if catalogue["problems"]:
        items = "".join(f"<li>{e(p)}</li>" for p in catalogue["problems"])
        problems = (f'<div class="fault-problems"><b>The live tier could not prove it can fail</b>'
                    f"<ul>{items}</ul></div>")
    faults = table(["Fault", "Kind", "Expected to fail", "Failed", "Killed", "Undone", "Seconds"],
                   [_fault_row(f) for f in catalogue["faults"]], "faults")
    return head + problems + _baselines(catalogue) + faults
