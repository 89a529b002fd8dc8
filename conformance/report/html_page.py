"""The sign-off report as one self-contained HTML page.

The page is attached to releases and opened offline, years later: inline CSS, no script, no
font, image or link outside the file. Every value comes from the report document and is
escaped here; state is spelled out in words next to any colour, so it survives printing in
black and white and reading by screen readers.
"""

from __future__ import annotations

from html import escape
from typing import Any

from conformance.report import outcomes

_CSS = """
:root { --fail:#b42318; --fail-bg:#fde8e7; --pass:#067647; --pass-bg:#e3f6ec; --warn:#93370d;
  --warn-bg:#fef0c7; --mute:#475467; --mute-bg:#f2f4f7; --line:#d0d5dd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#101828;
  margin: 0 auto; max-width: 1200px; padding: 0 20px 40px; }
h1 { font-size: 22px; margin: 20px 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12.5px; }
pre { background: var(--mute-bg); padding: 8px 10px; border-radius: 4px; white-space: pre-wrap;
  word-break: break-word; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: var(--mute-bg); font-weight: 600; }
.verdict { border-radius: 6px; padding: 14px 18px; margin-top: 18px; border: 2px solid; }
.verdict h1 { margin: 0 0 6px; font-size: 28px; letter-spacing: .02em; }
.v-fail { background: var(--fail-bg); border-color: var(--fail); color: var(--fail); }
.v-pass { background: var(--pass-bg); border-color: var(--pass); color: var(--pass); }
.v-incomplete { background: var(--warn-bg); border-color: var(--warn); color: var(--warn); }
.verdict .facts { color: #101828; display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 6px 0; }
.verdict ul { color: #101828; margin: 4px 0 0 18px; padding: 0; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600;
  white-space: nowrap; border: 1px solid transparent; }
.b-failed, .b-error { background: var(--fail-bg); color: var(--fail); border-color: var(--fail); }
.b-passed { background: var(--pass-bg); color: var(--pass); }
.b-skipped { background: var(--warn-bg); color: var(--warn); }
.b-not-run { background: #fff; color: var(--mute); border-color: var(--mute); border-style: dashed; }
.b-n-a { background: #fff; color: #98a2b3; }
.reason { display: block; color: var(--mute); font-size: 12px; margin-top: 2px; }
.dirty { color: var(--fail); font-weight: 600; }
.warnings { background: var(--warn-bg); border-left: 4px solid var(--warn); padding: 6px 12px;
  margin: 12px 0; }
tr.mismatch td { background: var(--fail-bg); font-weight: 600; }
tr.unobserved td { background: var(--warn-bg); }
.failure { border: 1px solid var(--line); border-left: 4px solid var(--fail); border-radius: 4px;
  padding: 4px 12px 8px; margin: 10px 0; }
.meta { color: var(--mute); font-size: 12.5px; }
nav { margin: 10px 0; font-size: 13px; }
nav a { margin-right: 12px; }
footer { margin-top: 36px; color: var(--mute); font-size: 12px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { overflow-wrap: anywhere; }
table.controls td:first-child code { white-space: nowrap; }
table.controls td:nth-child(5), table.controls td:nth-child(6) { width: 21%; }
@media print { nav { display: none; } .failure, tr { break-inside: avoid; } body { max-width: none; } }
"""


def _e(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def _badge(result: str) -> str:
    css = "b-" + result.replace(" ", "-").replace("/", "-")
    return f'<span class="badge {css}">{escape(result)}</span>'


def _table(headers: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _commit(git: dict[str, Any]) -> str:
    commit = git.get("commit")
    text = f'<code title="{_e(commit)}">{_e(commit[:12])}</code>' if commit else "unknown"
    if git.get("dirty") is True:
        text += ' <span class="dirty">(working tree dirty: uncommitted changes were tested)</span>'
    elif git.get("dirty") is None:
        text += " (dirty state unknown)"
    else:
        text += " (clean working tree)"
    return text


def _verdict(doc: dict[str, Any]) -> str:
    verdict = doc["verdict"]
    counts = doc["summary"]["by_status"]
    scope = " and ".join(doc["scope"]) or "none"
    facts = [
        f"<span><b>Date</b> {_e(doc['date'])}</span>",
        f"<span><b>Commit</b> {_commit(doc['git'])}</span>",
        f"<span><b>Tiers run</b> {_e(scope)}</span>",
        f"<span><b>Controls</b> {counts['failed']} failed, {counts['error']} error, "
        f"{counts['skipped']} skipped, {counts[outcomes.NOT_RUN]} not run, {counts['passed']} passed "
        f"of {doc['summary']['controls']}</span>",
    ]
    reasons = "".join(f"<li>{_e(r)}</li>" for r in doc["verdict_reasons"])
    warnings = ""
    if doc["warnings"]:
        items = "".join(f"<li>{_e(w)}</li>" for w in doc["warnings"])
        warnings = f'<div class="warnings"><b>Check before signing off</b><ul>{items}</ul></div>'
    return (f'<section class="verdict v-{verdict}" id="verdict"><h1>Verdict: {verdict.upper()}</h1>'
            f'<div class="facts">{"".join(facts)}</div><ul>{reasons}</ul></section>{warnings}')


def _comparison(comp: dict[str, Any] | None) -> str:
    if not comp:
        return ""
    parts = [f'<h2 id="changes">Changes since the previous report</h2><p class="meta">Compared with '
             f"{_e(comp['against'])} (verdict {_e(comp['against_verdict'])}, {_e(comp['against_date'])}, "
             f"commit {_e((comp['against_commit'] or '')[:12] or None)}).</p>"]
    titles = (("newly_failing", "Newly failing"), ("fixed", "Fixed"), ("still_failing", "Still failing"),
              ("added", "Added controls"), ("removed", "Removed controls"),
              ("other_changes", "Other changes"))
    rows = []
    for key, title in titles:
        for item in comp[key]:
            tiers = "; ".join(f"{t}: {a} → {b}" for t, (a, b) in item.get("tiers", {}).items())
            rows.append(f"<tr><td>{escape(title)}</td><td><code>{_e(item['id'])}</code></td>"
                        f"<td>{_e(item['title'])}</td><td>{_e(item.get('from'))} → {_e(item.get('to'))}</td>"
                        f"<td>{_e(tiers) if tiers else ''}</td></tr>")
    if rows:
        parts.append(_table(["Change", "Control", "Title", "Status", "Tiers"], rows))
    else:
        parts.append("<p>No control changed status.</p>")
    for change in comp["inputs_changed"]:
        parts.append(f"<p>Input <code>{_e(change['name'])}</code> changed: sha256 "
                     f"<code>{_e(change['from'])}</code> → <code>{_e(change['to'])}</code>.</p>")
    return "".join(parts)


def _tier_cell(tier: dict[str, Any]) -> str:
    shown = tier["reason"] and tier["result"] != outcomes.NOT_APPLICABLE
    reason = f'<span class="reason">{_e(tier["reason"])}</span>' if shown else ""
    return f"<td>{_badge(tier['result'])}{reason}</td>"


def _controls(doc: dict[str, Any]) -> str:
    rows = []
    for c in doc["controls"]:
        agree = {True: "yes", False: "NO: the tiers disagree", None: "—"}[c["agree"]]
        rows.append(f'<tr id="control-{_e(c["id"])}"><td><code>{_e(c["id"])}</code></td>'
                    f"<td>{_e(c['family_title'] or c['family'])}</td>"
                    f"<td>{_e(c['title'])}</td><td>{_badge(c['status'])}</td>"
                    f"{_tier_cell(c['static'])}{_tier_cell(c['live'])}<td>{escape(agree)}</td></tr>")
    return ('<h2 id="controls">Controls</h2><p class="meta">Every control in the catalogue, failed first. '
            "A tier result is the worst outcome of its checks; “not run” means no check of that tier ran, "
            "“n/a” that the control has no check in that tier.</p>"
            + _table(["ID", "Family", "Title", "Status", "Static", "Live", "Tiers agree"], rows, "controls"))


def _evidence(items: list[dict[str, Any]]) -> str:
    if not items:
        return '<p class="meta">No probe evidence recorded.</p>'
    rows = []
    for ev in items:
        headers = "".join(f"<div><code>{_e(k)}: {_e(v)}</code></div>"
                          for k, v in (ev.get("headers") or {}).items())
        rows.append(f"<tr><td><code>{_e(ev.get('command'))}</code></td>"
                    f"<td class=num>{_e(ev.get('status'))}</td><td class=num>{_e(ev.get('exit_code'))}</td>"
                    f"<td>{headers or '—'}</td>"
                    f"<td>{_e(ev.get('note') or '')}</td></tr>")
    return _table(["Probe command", "HTTP status", "Exit code", "Response headers", "Note"], rows)


def _failures(doc: dict[str, Any]) -> str:
    if not doc["failures"]:
        return '<h2 id="failures">Failures</h2><p>No check failed.</p>'
    parts = ['<h2 id="failures">Failures</h2>']
    for f in doc["failures"]:
        objects = ", ".join(f"<code>{_e(o)}</code>" for o in f.get("objects") or [])
        parts.append(
            f'<article class="failure"><h3>{_badge(f["outcome"])} <code>{_e(f.get("control"))}</code> '
            f"<code>{_e(f['test'])}</code></h3>"
            f'<div class="meta">tier {_e(f["tier"])} · input {_e(f.get("input"))} · run {_e(f["run"])}'
            f" · {_e(f.get('duration_s'))} s</div>"
            f"<pre>{_e(f.get('message') or '(no message)')}</pre>"
            + (f"<p><b>Objects</b> {objects}</p>" if objects else "")
            + _evidence(f.get("evidence") or []) + "</article>")
    return "".join(parts)


def _matrices(doc: dict[str, Any]) -> str:
    parts = ['<h2 id="matrices">Matrices</h2>']
    if not doc["matrices"]:
        parts.append("<p>No matrix was recorded.</p>")
    for m in doc["matrices"]:
        rows = []
        for cell in m["cells"]:
            state, cls = {True: ("✓ match", ""), False: ("✗ MISMATCH", "mismatch"),
                          None: ("not observed", "unobserved")}[cell["match"]]
            keys = "".join(f"<td>{_e(cell.get(k))}</td>" for k in m["columns"])
            rows.append(f'<tr class="{cls}">{keys}<td>{_e(outcomes.matrix_value(cell["expected"]))}</td>'
                        f"<td>{_e(outcomes.matrix_value(cell['observed']))}</td><td>{state}</td></tr>")
        summary = (f"{m['mismatches']} mismatch(es), {m['unobserved']} not observed, "
                   f"{len(m['cells'])} cells")
        anchor = f'matrix-{_e(m["name"])}-{_e(m["tier"])}-{_e(m["input"])}'
        parts.append(f'<h3 id="{anchor}">{_e(m["name"])} matrix '
                     f"· {_e(m['tier'])} · input {_e(m['input'])}</h3><p class=meta>{summary}</p>"
                     + _table([*m["columns"], "expected", "observed", ""], rows, "matrix"))
    return "".join(parts)


def _not_passed(doc: dict[str, Any]) -> str:
    rows = [f"<tr><td><code>{_e(s.get('control'))}</code></td><td>{_e(s['tier'])}</td>"
            f"<td><code>{_e(s['test'])}</code></td>"
            f"<td>{_e(s.get('message') or '(no reason given)')}</td></tr>"
            for s in doc["skips"]]
    for c in doc["controls"]:
        for tier in outcomes.TIERS:
            if c[tier]["result"] == outcomes.NOT_RUN:
                rows.append(f"<tr><td><code>{_e(c['id'])}</code></td><td>{tier}</td><td>not run</td>"
                            f"<td>{_e(c[tier]['reason'])}</td></tr>")
    body = _table(["Control", "Tier", "Check", "Reason"], rows) if rows else "<p>Every check ran.</p>"
    return '<h2 id="skipped">Skipped and not run</h2>' + body


def _environment(doc: dict[str, Any]) -> str:
    env = dict(doc["environment"])
    parts = ['<h2 id="environment">Environment</h2>']
    if not env:
        parts.append("<p>No live environment: only the static tier ran.</p>")
    images = env.pop("images", []) or []
    labels = {"run": "recorded by run", "image_source": "image source", "kind": "kind",
              "kubernetes": "Kubernetes", "node_image": "kind node image", "istio": "Istio",
              "vault": "Vault", "metrics_server": "metrics-server", "cni": "CNI", "nodes": "nodes"}
    rows = [f"<tr><th>{escape(labels.get(k, k))}</th><td><code>{_e(v)}</code></td></tr>"
            for k, v in env.items()]
    if rows:
        parts.append(f"<table><tbody>{''.join(rows)}</tbody></table>")
    if images:
        parts.append("<h3>Images that ran</h3>" + _table(
            ["Role", "Reference", "Digest"],
            [f"<tr><td>{_e(i.get('role'))}</td><td><code>{_e(i.get('ref'))}</code></td>"
             f"<td><code>{_e(i.get('digest'))}</code></td></tr>" for i in images]))
    return "".join(parts)


def _inputs(doc: dict[str, Any]) -> str:
    rows = [f"<tr><td>{_e(i['name'])}</td><td><code>{_e(i['source'])}</code></td>"
            f"<td class=num>{_e(i['objects'])}</td><td><code>{_e(i['sha256'])}</code></td></tr>"
            for i in doc["inputs"]]
    return ('<h2 id="inputs">Manifests this report vouches for</h2><p class="meta">sha256 of each rendered '
            "multi-document YAML.</p>"
            + (_table(["Input", "Source", "Objects", "sha256"], rows) if rows
               else "<p>No input recorded.</p>"))


def _timings(doc: dict[str, Any]) -> str:
    rows = []
    for run in doc["runs"]:
        phases = [p for p in doc["phases"] if p["run"] == run["run"]]
        rows += [f"<tr><td>{_e(p['run'])}</td><td>{_e(p['name'])}</td>"
                 f"<td class=num>{_seconds(p['seconds'])}</td></tr>" for p in phases]
        total = sum(p["seconds"] for p in phases if isinstance(p["seconds"], int | float))
        rows.append(f"<tr><th>{_e(run['run'])}</th><th>total</th><th class=num>{_seconds(total)}</th></tr>")
    runs = [f"<tr><td>{_e(r['run'])}</td><td><code>{_e(r['file'])}</code></td>"
            f"<td><code>{_e(r['junit'])}</code></td><td>{_e(r['started_at'])}</td>"
            f"<td>{_e(r['finished_at'])}</td><td class=num>{r['results']}</td></tr>"
            for r in doc["runs"]]
    return ('<h2 id="timings">Timings</h2>' + _table(["Run", "Phase", "Seconds"], rows)
            + "<h3>Runs</h3>" + _table(["Run", "Results", "JUnit", "Started", "Finished", "Tests"], runs))


def _seconds(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "—"


def render(doc: dict[str, Any]) -> str:
    """The HTML page for a report document."""
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("controls", "Controls"), ("failures", "Failures"), ("matrices", "Matrices"),
        ("skipped", "Skipped and not run"), ("environment", "Environment"), ("inputs", "Manifests"),
        ("timings", "Timings")))
    body = "".join((
        _verdict(doc), f"<nav>{nav}</nav>", _comparison(doc["comparison"]), _controls(doc), _failures(doc),
        _matrices(doc), _not_passed(doc), _environment(doc), _inputs(doc), _timings(doc)))
    footer = (f"<footer>Generated {_e(doc['generated_at'])} · {_e(doc['schema'])} "
              f"schema version {_e(doc['schema_version'])} · {doc['redactions']} value(s) redacted "
              "before rendering · report.json holds the same content.</footer>")
    title = f"cortex-api conformance: {doc['verdict'].upper()} ({doc['date']})"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>{body}{footer}</body></html>\n")
