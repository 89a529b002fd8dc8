"""Evidence on the HTML page: probe commands and responses, span trees and metric names."""

from __future__ import annotations

from typing import Any

from conformance.report import spans
from conformance.report.html_parts import badge, e, table

_PROBE_KEYS = ("command", "status", "exit_code", "headers", "note")


def _is_probe(item: dict[str, Any]) -> bool:
    return any(item.get(k) not in (None, "", {}, []) for k in _PROBE_KEYS)


def _probes(items: list[dict[str, Any]]) -> str:
    rows = []
    for ev in items:
        headers = "".join(f"<div><code>{e(k)}: {e(v)}</code></div>"
                          for k, v in (ev.get("headers") or {}).items())
        rows.append(f"<tr><td><code>{e(ev.get('command'))}</code></td>"
                    f"<td class=num>{e(ev.get('status'))}</td><td class=num>{e(ev.get('exit_code'))}</td>"
                    f"<td>{headers or '—'}</td>"
                    f"<td>{e(ev.get('note') or '')}</td></tr>")
    return table(["Probe command", "HTTP status", "Exit code", "Response headers", "Note"], rows)


def _span(span: dict[str, Any]) -> str:
    shown, more = spans.attributes(span)
    attrs = "".join(f' <code class="attr">{e(k)}={e(v)}</code>' for k, v in shown)
    facts = spans.facts(span)
    return (f'<span class="svc">{e(span.get("service") or "?")}</span> <code>{e(span.get("name") or "?")}</code>'
            + (f' <span class="meta">{e(facts)}</span>' if facts else "") + attrs
            + (f' <span class="meta">(+{more} more)</span>' if more else ""))


def span_tree(items: Any) -> str:
    """A span tree as nested lists: indentation is the parent/child link."""
    out, current = [], -1
    for depth, span in spans.walk(items):
        out.append("<ul>" * (depth - current) if depth > current else "</li>" + "</ul></li>" * (current - depth))
        out.append(f"<li>{_span(span)}")
        current = depth
    if current < 0:
        return ""
    return '<div class="span-tree">' + "".join(out) + "</li>" + "</ul></li>" * current + "</ul></div>"


def telemetry(item: dict[str, Any]) -> str:
    """One evidence item's trace (its id and span tree) and metric names."""
    parts = []
    if item.get("span_tree"):
        count = len([s for s in item["span_tree"] if isinstance(s, dict)])
        parts.append(f'<p class="trace-head"><b>Trace</b> <code>{e(item.get("trace_id"))}</code> '
                     f'<span class="meta">{count} span(s)</span></p>' + span_tree(item["span_tree"]))
    if item.get("metrics"):
        names = " ".join(f"<code>{e(m)}</code>" for m in item["metrics"])
        parts.append(f'<p class="metrics"><b>Metrics</b> {names}</p>')
    return "".join(parts)


def evidence(items: list[dict[str, Any]]) -> str:
    """A check's evidence: a table of probes, then each trace and metric list."""
    items = [ev for ev in items if isinstance(ev, dict)]
    if not items:
        return '<p class="meta">No probe evidence recorded.</p>'
    probes = [ev for ev in items if _is_probe(ev)]
    return (_probes(probes) if probes else "") + "".join(
        telemetry(ev) for ev in items if spans.has_telemetry(ev))


def passed_telemetry(doc: dict[str, Any]) -> str:
    """Traces and metrics of passed live checks, each collapsed until a reader opens it."""
    shown = spans.passed_with_telemetry(doc["results"])
    if not shown:
        return ""
    blocks = [f'<details class="telemetry"><summary>{badge(r["outcome"])} <code>{e(r.get("control"))}</code> '
              f'<code>{e(r["test"])}</code></summary>'
              + "".join(telemetry(ev) for ev in r["evidence"] if isinstance(ev, dict) and spans.has_telemetry(ev))
              + "</details>" for r in shown]
    return ('<h2 id="telemetry">Traces and metrics of passed checks</h2><p class="meta">What the live tier '
            "saw when a check passed: the span tree of each traced request and the metric names "
            "Prometheus returned. Open an entry to read it.</p>" + "".join(blocks))
