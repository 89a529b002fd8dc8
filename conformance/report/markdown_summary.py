"""The sign-off report as a short Markdown summary, for a CI job summary or a pull-request comment.

It carries what someone needs in the first ten seconds: the verdict, what failed and where the
full page is. Everything else stays in the HTML, which the summary points to.
"""

from __future__ import annotations

from typing import Any

from conformance.report import matrices, outcomes, spans

_ICON = {"pass": "✅", "fail": "❌", "incomplete": "⚠️"}
# A pass that rests on one tier must not wear the green tick of a full sign-off.
_ONE_TIER_ICON = "☑️"


def _cell(value: Any) -> str:
    # Table cells hold one line; a pipe would end the cell and a backtick could open code.
    text = "—" if value is None else str(value)
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def _fenced(text: str) -> list[str]:
    # Three backticks inside the block would end it early.
    return ["```text", *text.replace("```", "'''").splitlines(), "```"]


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _icon(doc: dict[str, Any]) -> str:
    # Only a sign-off gets the plain pass icon: a pass short of it must not read as one at a glance.
    if doc["verdict"] == "pass" and doc.get("level") != "signoff":
        return _ONE_TIER_ICON
    return _ICON[doc["verdict"]]


def _header(doc: dict[str, Any]) -> list[str]:
    counts = doc["summary"]["by_status"]
    git = doc["git"]
    commit = f"`{git['commit'][:12]}`" if git.get("commit") else "unknown"
    dirty = {True: " (dirty working tree)", False: "", None: " (dirty state unknown)"}[git.get("dirty")]
    return [
        f"## cortex-api conformance: {_icon(doc)} {doc['headline']}",
        "",
        f"**Date** {doc['date']} · **Commit** {commit}{dirty} · "
        f"**Tiers run** {' and '.join(doc['scope']) or 'none'} · **Verdict rests on** {doc['coverage']}",
        "",
        f"{counts['failed']} failed, {counts['error']} error, {counts['skipped']} skipped, "
        f"{counts[outcomes.NOT_RUN]} not run, {counts['passed']} passed "
        f"of {doc['summary']['controls']} controls"
        + "".join(f"; {n} {tier} check(s) not run" for tier, n in doc["summary"].get("tier_not_run", {}).items() if n)
        + ".",
        "",
        *_platform(doc),
        *(f"- {_cell(r)}" for r in doc["verdict_reasons"]),
        *(f"- Not a sign-off: {_cell(r)}" for r in doc.get("short_of_signoff") or [] if doc["verdict"] == "pass"),
        *(f"- ⚠️ {_cell(w)}" for w in doc["warnings"]),
    ]


def _platform(doc: dict[str, Any]) -> list[str]:
    """One line naming what the live tier ran on; a pair outside Istio's support says so first."""
    env = doc.get("environment") or {}
    if not env:
        return []
    named = (("Kubernetes", "kubernetes"), ("Istio", "istio_release"), ("module", "istio_version"),
             ("Envoy", "envoy"), ("kind", "kind"), ("node image", "node_image_digest"), ("Vault", "vault"),
             ("collector", "collector"))
    parts = [f"{label} {_cell(env[key])}" for label, key in named if env.get(key)]
    ahead = " ⚠️ **ahead of support**" if env.get("supported") is False else ""
    support = f" · {_cell(env['support'])}" if env.get("support") else ""
    return [f"**Platform**{ahead} " + " · ".join(parts) + support, ""]


def _failed(doc: dict[str, Any]) -> list[str]:
    failing = [c for c in doc["controls"] if c["status"] in outcomes.FAILING]
    if not failing:
        return []
    first: dict[str, str] = {}
    for f in doc["failures"]:
        first.setdefault(f.get("control") or outcomes.NO_CONTROL, _first_line(f.get("message")))
    return ["", "### Failed controls", "", "| Control | Title | Static | Live | First failure |",
            "|---|---|---|---|---|",
            *(f"| `{c['id']}` | {_cell(c['title'])} | {c['static']['result']} | {c['live']['result']} "
              f"| {_cell(first.get(c['id'], ''))} |" for c in failing)]


def _cells(m: dict[str, Any], state: str, describe) -> str:
    cells = [c for c in m["cells"] if c["state"] == state]
    shown = "; ".join(", ".join(_cell(c.get(k)) for k in m["columns"]) + f": {describe(c)}" for c in cells[:10])
    return shown + (f" (and {len(cells) - 10} more)" if len(cells) > 10 else "")


def _mismatch(cell: dict[str, Any]) -> str:
    return (f"expected {_cell(outcomes.matrix_value(cell['expected']))}, "
            f"observed {_cell(outcomes.matrix_value(cell['observed']))}")


def _matrices(doc: dict[str, Any]) -> list[str]:
    lines = []
    for key, title, describe in (("mismatches", "Matrix mismatches", _mismatch),
                                 ("unprobed", "Matrix cells not probed",
                                  lambda c: _cell(c.get("note") or "no note"))):
        shown = [m for m in doc["matrices"] if m.get(key)]
        if shown:
            state = matrices.MISMATCH if key == "mismatches" else matrices.NOT_PROBED
            lines += ["", f"### {title}", ""]
            lines += [f"- **{_cell(m['name'])}** ({m['tier']}, {_cell(m['input'])}): {_cells(m, state, describe)}"
                      for m in shown]
    deferred = sum(m.get("deferred", 0) for m in doc["matrices"])
    if deferred:
        lines += ["", f"{deferred} matrix cell(s) were left to the static tier on purpose "
                      f"(their note starts with “{matrices.DEFERRED}”)."]
    return lines


def _faults(doc: dict[str, Any]) -> list[str]:
    catalogue = doc.get("faults")
    if not catalogue:
        return []
    lines = ["", f"### Fault catalogue: {catalogue['killed']}/{catalogue['total']} killed", "",
             "| Fault | Kind | Expected | Failed | Killed | Seconds |", "|---|---|---|---|---|---|"]
    for f in catalogue["faults"]:
        killed = "✓ as expected" if f["killed"] else ("✗ missed " + ", ".join(f["missed"]) if f["missed"] else
                                                     f"✗ {f.get('kill', 'error')}")
        seconds = f"{f['seconds']:.1f}" if isinstance(f["seconds"], int | float) else "—"
        lines.append(f"| {_cell(f['name'])} | {_cell(f['kind'])} | {_cell(', '.join(f['expect']))} "
                     f"| {_cell(', '.join(f['failed']) or 'none')} | {_cell(killed)} | {seconds} |")
    partial = (f" A partial catalogue: {len(catalogue['not_run'])} fault(s) of fixtures/faults.yaml not run."
               if catalogue.get("not_run") else "")
    lines += ["", f"**{catalogue['killed']}/{catalogue['total']}** faults killed.{partial}"]
    problems = [f"- ❌ {_cell(p)}" for p in catalogue["problems"]]
    return lines + (["", *problems] if problems else [])


def _telemetry(result: dict[str, Any]) -> list[str]:
    lines = []
    for ev in result.get("evidence") or []:
        if not isinstance(ev, dict) or not spans.has_telemetry(ev):
            continue
        if ev.get("span_tree"):
            lines += ["", f"Trace `{_cell(ev.get('trace_id'))}`:", "", *_fenced(spans.text_tree(ev["span_tree"]))]
        if ev.get("metrics"):
            lines += ["", "Metrics: " + ", ".join(f"`{_cell(m)}`" for m in ev["metrics"])]
    return lines


def _traces(doc: dict[str, Any]) -> list[str]:
    failed = [r for r in doc["failures"] if any(isinstance(ev, dict) and spans.has_telemetry(ev)
                                                for ev in r.get("evidence") or [])]
    passed = spans.passed_with_telemetry(doc["results"])
    if not failed and not passed:
        return []
    lines = ["", "### Traces and metrics"]
    for r in failed:
        lines += ["", f"**`{r.get('control')}`** {r['outcome']} · `{_cell(r['test'])}`", *_telemetry(r)]
    for r in passed:
        # Collapsed: a passing trace is there to be checked, not to push the failures down.
        lines += ["", f"<details><summary>{_cell(r.get('control'))} passed · {_cell(r['test'])}</summary>",
                  *_telemetry(r), "", "</details>"]
    return lines


def _inputs(comp: dict[str, Any]) -> list[str]:
    items = [f"`{_cell(c['name'])}`: manifests changed (sha256 {_cell((c['from'] or '')[:12])}→"
             f"{_cell((c['to'] or '')[:12])})" for c in comp["inputs_changed"] if c["from"] != c["to"]]
    items += [f"`{_cell(c['name'])}`: source changed ({_cell(c.get('from_source'))}→{_cell(c['source'])})"
              for c in comp["inputs_changed"] if c.get("from_source", c["source"]) != c["source"]]
    items += [f"added input `{_cell(i['name'])}` (from {_cell(i['source'])})" for i in comp.get("inputs_added", [])]
    items += [f"removed input `{_cell(i['name'])}` (was {_cell(i['source'])})"
              for i in comp.get("inputs_removed", [])]
    return [f"- Manifests: {'; '.join(items) if items else 'unchanged (same inputs, same sha256)'}"]


def _comparison(doc: dict[str, Any]) -> list[str]:
    comp = doc["comparison"]
    if not comp:
        return []
    against = comp.get("against_headline") or comp["against_verdict"]
    lines = ["", f"### Since {_cell(comp['against'])} ({_cell(against)}, {_cell(comp['against_date'])})", ""]
    for key, title in (("newly_failing", "Newly failing"), ("fixed", "Fixed"),
                       ("added", "Added"), ("removed", "Removed")):
        ids = ", ".join(f"`{item['id']}`" for item in comp[key]) or "none"
        lines.append(f"- {title}: {ids}")
    return lines + _inputs(comp) + _fault_changes(comp)


def _fault_changes(comp: dict[str, Any]) -> list[str]:
    if comp.get("faults_compared") is None:
        return ["- Fault catalogue: not in both reports, so not compared"]
    items = [f"`{_cell(c['name'])}` {_cell(c['from'])} → {_cell(c['to'])}" for c in comp["faults_changed"]]
    items += [f"added `{_cell(f['name'])}`" for f in comp["faults_added"]]
    items += [f"removed `{_cell(f['name'])}`" for f in comp["faults_removed"]]
    same = f"each of the {comp['faults_compared']} faults in both judged the same way"
    return [f"- Fault catalogue: {'; '.join(items) if items else same}"]


def render(doc: dict[str, Any], *, html_link: str) -> str:
    """The Markdown summary of a report document; ``html_link`` is where the full page lives."""
    lines = [*_header(doc), *_failed(doc), *_matrices(doc), *_faults(doc), *_traces(doc), *_comparison(doc),
             "", f"Full report: [report.html]({html_link})", ""]
    return "\n".join(lines)
