"""The sign-off report as one self-contained HTML page.

The page is attached to releases and opened offline, years later: inline CSS, no script, no
font, image or link outside the file. Every value comes from the report document and is
escaped here; state is spelled out in words next to any colour, so it survives printing in
black and white and reading by screen readers.
"""

from __future__ import annotations

from html import escape
from typing import Any

from conformance.report import html_evidence, html_faults, html_matrices, outcomes, spans
from conformance.report.html_parts import badge, e, seconds, table
from conformance.report.html_style import CSS


def _commit(git: dict[str, Any], inputs: list[dict[str, Any]]) -> str:
    commit = git.get("commit")
    text = f'<code title="{e(commit)}">{e(commit[:12])}</code>' if commit else "unknown"
    outside = [i["name"] for i in inputs if i.get("in_commit") is False]
    if git.get("dirty") is True:
        text += ' <span class="dirty">(working tree dirty: uncommitted changes were tested)</span>'
    elif git.get("dirty") is None:
        text += " (dirty state unknown)"
    elif outside:
        # A clean tree says nothing of a --manifests file from elsewhere: the commit does not hold it.
        text += f' <span class="dirty">(the commit does not hold the input(s) checked: {e(", ".join(outside))})</span>'
    else:
        text += " (clean working tree)"
    return text


LEVEL_WORDS = {"static": "static tier only", "live": "static and live, not fault-proven",
               "signoff": "sign-off: static, live and the whole fault catalogue"}


def _halves_not_run(doc: dict[str, Any]) -> str:
    """The tiers whose checks did not run, so that "0 not run" never stands beside rows that say "not run"."""
    halves = [f"{n} {tier} check(s) not run" for tier, n in doc["summary"].get("tier_not_run", {}).items() if n]
    return f" ({'; '.join(halves)})" if halves else ""


def _verdict(doc: dict[str, Any]) -> str:
    verdict = doc["verdict"]
    counts = doc["summary"]["by_status"]
    scope = " and ".join(doc["scope"]) or "none"
    facts = [
        f"<span><b>Date</b> {e(doc['date'])}</span>",
        f"<span><b>Commit</b> {_commit(doc['git'], doc['inputs'])}</span>",
        f"<span><b>Tiers run</b> {e(scope)}</span>",
        f"<span><b>Verdict rests on</b> {e(doc['coverage'])}</span>",
        f"<span><b>Controls</b> {counts['failed']} failed, {counts['error']} error, "
        f"{counts['skipped']} skipped, {counts[outcomes.NOT_RUN]} not run, {counts['passed']} passed "
        f"of {doc['summary']['controls']}{_halves_not_run(doc)}</span>",
        f"<span><b>Level</b> {e(LEVEL_WORDS[doc['level']])}</span>",
    ]
    if doc.get("faults"):
        facts.append(f"<span><b>Faults</b> {doc['faults']['killed']} of {doc['faults']['total']} killed</span>")
    reasons = "".join(f"<li>{e(r)}</li>" for r in doc["verdict_reasons"])
    warnings = ""
    if doc["warnings"]:
        items = "".join(f"<li>{e(w)}</li>" for w in doc["warnings"])
        warnings = f'<div class="warnings"><b>Check before signing off</b><ul>{items}</ul></div>'
    # A pass short of a sign-off gets its own colour: it must not read as the release sign-off.
    css = f"v-{verdict}" + ("-partial" if verdict == "pass" and doc["level"] != "signoff" else "")
    short = doc.get("short_of_signoff") or [] if verdict == "pass" else []
    reasons_short = "".join(f"<li>Not a sign-off: {e(r)}</li>" for r in short)
    return (f'<section class="verdict {css}" id="verdict"><h1>Verdict: {e(doc["headline"])}</h1>'
            f'<div class="facts">{"".join(facts)}</div><ul>{reasons}{reasons_short}</ul></section>{warnings}')


def _comparison(comp: dict[str, Any] | None) -> str:
    if not comp:
        return ""
    parts = [f'<h2 id="changes">Changes since the previous report</h2><p class="meta">Compared with '
             f"{e(comp['against'])} ({e(comp.get('against_headline') or comp['against_verdict'])}, "
             f"{e(comp['against_date'])}, commit {e((comp['against_commit'] or '')[:12] or None)}).</p>"]
    titles = (("newly_failing", "Newly failing"), ("fixed", "Fixed"), ("still_failing", "Still failing"),
              ("added", "Added controls"), ("removed", "Removed controls"),
              ("other_changes", "Other changes"))
    rows = []
    for key, title in titles:
        for item in comp[key]:
            tiers = "; ".join(f"{t}: {a} → {b}" for t, (a, b) in item.get("tiers", {}).items())
            rows.append(f"<tr><td>{escape(title)}</td><td><code>{e(item['id'])}</code></td>"
                        f"<td>{e(item['title'])}</td><td>{e(item.get('from'))} → {e(item.get('to'))}</td>"
                        f"<td>{e(tiers) if tiers else ''}</td></tr>")
    if rows:
        parts.append(table(["Change", "Control", "Title", "Status", "Tiers"], rows))
    else:
        parts.append("<p>No control changed status.</p>")
    parts.append(_input_changes(comp))
    parts.append(_fault_changes(comp))
    return "".join(parts)


def _fault_changes(comp: dict[str, Any]) -> str:
    compared = comp.get("faults_compared")
    if compared is None:
        return "<p>Fault catalogue: not in both reports, so not compared.</p>"
    items = [f"<li><code>{e(c['name'])}</code>: {e(c['from'])} → {e(c['to'])}"
             + "".join(f"; {e(cid)} {e(c['kills_from'].get(cid))} → {e(k)}" for cid, k in c["kills_to"].items()
                       if c["kills_from"].get(cid) != k) + "</li>" for c in comp["faults_changed"]]
    items += [f"<li>added fault <code>{e(f['name'])}</code> ({e(f['to'])})</li>" for f in comp["faults_added"]]
    items += [f"<li>removed fault <code>{e(f['name'])}</code> (was {e(f['from'])})</li>"
              for f in comp["faults_removed"]]
    if not items:
        return f"<p>Fault catalogue: each of the {compared} faults in both was judged the same way.</p>"
    return f'<h3>Fault catalogue</h3><ul class="fault-changes">{"".join(items)}</ul>'


def _sha(value: Any) -> str:
    return f'<code title="{e(value)}">{e(str(value)[:12] if value else None)}</code>'


def _input_changes(comp: dict[str, Any]) -> str:
    items = []
    for change in comp["inputs_changed"]:
        if change["from"] != change["to"]:
            items.append(f"<li><code>{e(change['name'])}</code>: manifests changed (sha256 "
                         f"{_sha(change['from'])} → {_sha(change['to'])})</li>")
        if change.get("from_source", change["source"]) != change["source"]:
            items.append(f"<li><code>{e(change['name'])}</code>: source changed "
                         f"(<code>{e(change['from_source'])}</code> → <code>{e(change['source'])}</code>)</li>")
    items += [f"<li>added input <code>{e(i['name'])}</code> (from <code>{e(i['source'])}</code>, "
              f"sha256 {_sha(i['sha256'])})</li>" for i in comp.get("inputs_added", [])]
    items += [f"<li>removed input <code>{e(i['name'])}</code> (was <code>{e(i['source'])}</code>)</li>"
              for i in comp.get("inputs_removed", [])]
    if not items:
        return "<p>Manifests: the same inputs, rendered identically (same sha256).</p>"
    return f'<h3>Manifests</h3><ul class="input-changes">{"".join(items)}</ul>'


def _tier_cell(tier: dict[str, Any]) -> str:
    shown = tier["reason"] and tier["result"] != outcomes.NOT_APPLICABLE
    reason = f'<span class="reason">{e(tier["reason"])}</span>' if shown else ""
    return f"<td>{badge(tier['result'])}{reason}</td>"


def _status(control: dict[str, Any]) -> str:
    # A pass over some of the control's tiers is not a pass of the control: the tier not run is named.
    untested = control.get("untested_tiers") or []
    if control["status"] != "passed" or not untested:
        return badge(control["status"])
    return (f'{badge("passed")}<span class="reason">{e(" and ".join(untested))} not run: '
            f"this pass covers only the {e(' and '.join(t for t in outcomes.TIERS if t not in untested))} tier</span>")


def _rationale(control: dict[str, Any]) -> str:
    # Why the control exists, where a reviewer deciding whether a failure matters will look.
    return f'<span class="rationale">{e(control["rationale"])}</span>' if control.get("rationale") else ""


def _controls(doc: dict[str, Any]) -> str:
    rows = []
    for c in doc["controls"]:
        agree = {True: "yes", False: "NO: the tiers disagree", None: "—"}[c["agree"]]
        rows.append(f'<tr id="control-{e(c["id"])}"><td><code>{e(c["id"])}</code></td>'
                    f"<td>{e(c['family_title'] or c['family'])}</td>"
                    f"<td>{e(c['title'])}{_rationale(c)}</td><td>{_status(c)}</td>"
                    f"{_tier_cell(c['static'])}{_tier_cell(c['live'])}<td>{escape(agree)}</td></tr>")
    return ('<h2 id="controls">Controls</h2><p class="meta">Every control in the catalogue, failed first. '
            "A tier result is the worst outcome of its checks; “not run” means no check of that tier ran, "
            "“n/a” that the control has no check in that tier.</p>"
            + table(["ID", "Family", "Title", "Status", "Static", "Live", "Tiers agree"], rows, "controls"))


def _failures(doc: dict[str, Any]) -> str:
    if not doc["failures"]:
        return '<h2 id="failures">Failures</h2><p>No check failed.</p>'
    parts = ['<h2 id="failures">Failures</h2>']
    for f in doc["failures"]:
        objects = ", ".join(f"<code>{e(o)}</code>" for o in f.get("objects") or [])
        parts.append(
            f'<article class="failure"><h3>{badge(f["outcome"])} <code>{e(f.get("control"))}</code> '
            f"<code>{e(f['test'])}</code></h3>"
            f'<div class="meta">tier {e(f["tier"])} · input {e(f.get("input"))} · run {e(f["run"])}'
            f" · {e(f.get('duration_s'))} s</div>"
            f"<pre>{e(f.get('message') or '(no message)')}</pre>"
            + (f"<p><b>Objects</b> {objects}</p>" if objects else "")
            + html_evidence.evidence(f.get("evidence") or []) + "</article>")
    return "".join(parts)


def _not_passed(doc: dict[str, Any]) -> str:
    rows = [f"<tr><td><code>{e(s.get('control'))}</code></td><td>{e(s['tier'])}</td>"
            f"<td><code>{e(s['test'])}</code></td>"
            f"<td>{e(s.get('message') or '(no reason given)')}</td></tr>"
            for s in doc["skips"]]
    for c in doc["controls"]:
        for tier in outcomes.TIERS:
            if c[tier]["result"] == outcomes.NOT_RUN:
                rows.append(f"<tr><td><code>{e(c['id'])}</code></td><td>{tier}</td><td>not run</td>"
                            f"<td>{e(c[tier]['reason'])}</td></tr>")
    body = table(["Control", "Tier", "Check", "Reason"], rows) if rows else "<p>Every check ran.</p>"
    return '<h2 id="skipped">Skipped and not run</h2>' + body


def _environment(doc: dict[str, Any]) -> str:
    env = dict(doc["environment"])
    parts = ['<h2 id="environment">Environment</h2>']
    if not env:
        parts.append("<p>No live environment: only the static tier ran.</p>")
    images = env.pop("images", []) or []
    labels = {"run": "recorded by run", "image_source": "image source", "kind": "kind",
              "kubernetes": "Kubernetes", "kubernetes_minor": "Kubernetes minor",
              "support": "Istio's support for this pair", "node_image": "kind node image",
              "node_image_digest": "node image digest", "istio": "Istio release line",
              "istio_version": "Istio that ran (module or images)", "istio_release": "Istio release it corresponds to",
              "envoy": "Envoy", "vault": "Vault", "collector": "trace collector", "metrics_server": "metrics-server",
              "cni": "CNI", "nodes": "nodes"}
    # `supported` is said in words by `support`; a pair outside Istio's support table stands out.
    env.pop("supported", None)
    rows = [f"<tr><th>{escape(labels.get(k, k))}</th><td>"
            + (f"<strong>{e(v)}</strong>" if k == "support" and not str(v).startswith("supported")
               else f"<code>{e(v)}</code>") + "</td></tr>"
            for k, v in env.items()]
    if rows:
        parts.append(f"<table><tbody>{''.join(rows)}</tbody></table>")
    if images:
        parts.append("<h3>Images that ran</h3>" + table(
            ["Role", "Reference", "Digest"],
            [f"<tr><td>{e(i.get('role'))}</td><td><code>{e(i.get('ref'))}</code></td>"
             f"<td><code>{e(i.get('digest'))}</code></td></tr>" for i in images]))
    return "".join(parts)


def _inputs(doc: dict[str, Any]) -> str:
    rows = [f"<tr><td>{e(i['name'])}</td><td><code>{e(i['source'])}</code></td>"
            f"<td class=num>{e(i['objects'])}</td><td><code>{e(i['sha256'])}</code></td></tr>"
            for i in doc["inputs"]]
    return ('<h2 id="inputs">Manifests this report vouches for</h2><p class="meta">sha256 of each rendered '
            "multi-document YAML.</p>"
            + (table(["Input", "Source", "Objects", "sha256"], rows) if rows
               else "<p>No input recorded.</p>"))


def _timings(doc: dict[str, Any]) -> str:
    rows = []
    for run in doc["runs"]:
        phases = [p for p in doc["phases"] if p["run"] == run["run"]]
        rows += [f"<tr><td>{e(p['run'])}</td><td>{e(p['name'])}</td>"
                 f"<td class=num>{seconds(p['seconds'])}</td></tr>" for p in phases]
        total = sum(p["seconds"] for p in phases if isinstance(p["seconds"], int | float))
        rows.append(f"<tr><th>{e(run['run'])}</th><th>total</th><th class=num>{seconds(total)}</th></tr>")
    runs = [f"<tr><td>{e(r['run'])}</td><td><code>{e(r['file'])}</code></td>"
            f"<td><code>{e(r['junit'])}</code></td><td>{e(r['started_at'])}</td>"
            f"<td>{e(r['finished_at'])}</td><td class=num>{r['results']}</td></tr>"
            for r in doc["runs"]]
    return ('<h2 id="timings">Timings</h2>' + table(["Run", "Phase", "Seconds"], rows)
            + "<h3>Runs</h3>" + table(["Run", "Results", "JUnit", "Started", "Finished", "Tests"], runs))


def _nav(doc: dict[str, Any]) -> str:
    links = [("controls", "Controls"), ("failures", "Failures"), ("matrices", "Matrices")]
    links += [("faults", "Faults")] if doc.get("faults") else []
    links += [("telemetry", "Traces")] if spans.passed_with_telemetry(doc["results"]) else []
    links += [("skipped", "Skipped and not run"), ("environment", "Environment"), ("inputs", "Manifests"),
              ("timings", "Timings")]
    return "<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in links) + "</nav>"


def render(doc: dict[str, Any]) -> str:
    """The HTML page for a report document."""
    body = "".join((
        _verdict(doc), _nav(doc), _comparison(doc["comparison"]), _controls(doc), _failures(doc),
        html_matrices.section(doc), html_faults.section(doc), html_evidence.passed_telemetry(doc),
        _not_passed(doc), _environment(doc), _inputs(doc), _timings(doc)))
    footer = (f"<footer>Generated {e(doc['generated_at'])} · {e(doc['schema'])} "
              f"schema version {e(doc['schema_version'])} · {doc['redactions']} value(s) redacted "
              "before rendering · report.json holds the same content.</footer>")
    title = f"cortex-api conformance: {doc['headline']} ({doc['date']})"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}{footer}</body></html>\n")
