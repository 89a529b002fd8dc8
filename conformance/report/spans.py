"""Telemetry in live evidence: the span tree of one traced request, and the metric names seen.

A live check may add to an evidence item a ``trace_id``, a ``span_tree`` (flat spans linked by
``parent_span_id``) and ``metrics`` (the metric names Prometheus returned). The tree is rebuilt
here once, for the HTML page and the Markdown summary alike, so both show the same hops.
"""

from __future__ import annotations

from typing import Any

# Shown first when a span has them: what a reader needs to follow a request hop by hop.
KEY_ATTRIBUTES = ("http.method", "http.url", "http.status_code", "upstream_cluster", "peer.address",
                  "response_flags", "node_id", "component")
MAX_ATTRIBUTES = 6


def has_telemetry(item: dict[str, Any]) -> bool:
    return bool(item.get("span_tree") or item.get("metrics"))


def _links(spans: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    ids = {s.get("span_id") for s in spans}
    roots, children = [], {}
    for span in spans:
        parent = span.get("parent_span_id")
        # A span whose parent was not recorded is shown as a root, so that no span is dropped.
        if parent and parent in ids and parent != span.get("span_id"):
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    return roots, children


def walk(spans: Any) -> list[tuple[int, dict[str, Any]]]:
    """Each span with its depth, parents before children, siblings in the order recorded."""
    spans = [s for s in spans or [] if isinstance(s, dict)]
    roots, children = _links(spans)
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[int] = set()
    stack = [(0, s) for s in reversed(roots)]
    # Spans caught in a loop of parent links have no root; they are shown flat at the end.
    loose = [(0, s) for s in reversed(spans)]
    while stack or loose:
        depth, span = stack.pop() if stack else loose.pop()
        if id(span) in seen:
            continue
        seen.add(id(span))
        out.append((depth, span))
        stack += [(depth + 1, c) for c in reversed(children.get(span.get("span_id"), []))]
    return out


def attributes(span: dict[str, Any]) -> tuple[list[tuple[str, str]], int]:
    """The attributes worth a line, key ones first, and how many more were left out."""
    attrs = span.get("attributes")
    if not isinstance(attrs, dict):
        return [], 0
    keys = [k for k in KEY_ATTRIBUTES if k in attrs] + sorted(str(k) for k in attrs if k not in KEY_ATTRIBUTES)
    return [(k, str(attrs[k])) for k in keys[:MAX_ATTRIBUTES]], max(0, len(keys) - MAX_ATTRIBUTES)


def facts(span: dict[str, Any]) -> str:
    """Kind and status of a span, as one short parenthesis (empty when neither was recorded)."""
    parts = [str(span[k]) for k in ("kind", "status_code") if span.get(k) not in (None, "")]
    return f"({', '.join(parts)})" if parts else ""


def line(span: dict[str, Any]) -> str:
    shown, more = attributes(span)
    words = [str(span.get("service") or "?"), str(span.get("name") or "?"), facts(span),
             *(f"{k}={v}" for k, v in shown), f"(+{more} more)" if more else ""]
    return "  ".join(w for w in words if w)


def text_tree(spans: Any) -> str:
    """The span tree as indented text, for a fenced block."""
    return "\n".join(("   " * (depth - 1) + "└─ " if depth else "") + line(span)
                     for depth, span in walk(spans))


def passed_with_telemetry(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Passed live checks whose evidence carries a span tree or metric names.

    A pass is usually shown as a badge alone; a traced request is worth showing anyway, because
    it is what a reviewer reads to believe the telemetry controls.
    """
    return [r for r in results if r["outcome"] == "passed" and r["tier"] == "live"
            and any(isinstance(ev, dict) and has_telemetry(ev) for ev in r.get("evidence") or [])]
