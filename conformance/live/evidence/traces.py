"""Traces as the collector returns them: Jaeger's api/v3 answers parsed into spans, a tree, and evidence.

Pure: no I/O. conformance.live.platform.collector fetches the JSON; this module reads it. An api/v3 answer
is OTLP JSON under ``result`` (``{"result": {"resourceSpans": [...]}}``): the service is the
resource's ``service.name``, each span carries hex ``traceId``/``spanId`` and, unless it is a
root, ``parentSpanId``; ``kind`` is the OTLP enum (2 server, 3 client); every Envoy tag is a
string attribute, ``http.status_code`` included. Jaeger adds ``@jaeger@…`` attributes of its own
(a warning when a parent is missing), which say nothing about the traced request and are dropped.

What reaches the report goes through :func:`span_tree_evidence`, which drops attributes that may
hold credentials and strips query strings from URLs: Envoy records the full URL of a request,
``?access_token=…`` included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The OTLP SpanKind enum; JSON encoders write the number (Jaeger) or the enum name.
KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS_ERROR = 2
JAEGER_INTERNAL = "@jaeger@"
# The HTTP status of a span: Envoy's tag, then the current semantic convention's name.
STATUS_KEYS = ("http.status_code", "http.response.status_code")
# Attribute names that can carry a credential: never shown, whatever their value.
SECRET_KEY_PARTS = ("authorization", "token", "cookie")
# Attributes whose value is a URL or a request target: shown without query string and fragment.
URL_KEYS = ("http.url", "url.full", "http.target", "url.original")
# Attributes that are nothing but a query string.
QUERY_KEYS = ("url.query",)
# A URL or an absolute path followed by a query or fragment, anywhere in a text ("GET /v1?token=x").
_QUERY_IN_TEXT = re.compile(r"((?:[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#]*)?/[^\s?#]*)[?#]\S*")


class TraceFormatError(ValueError):
    """The collector's answer is not the api/v3 shape this module reads."""


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str
    status_code: int | None
    attributes: dict[str, str] = field(default_factory=dict)
    start_ns: int = 0
    error: bool = False  # the span's status is ERROR (Envoy: a 5xx server span, a client span's failure)

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id


@dataclass
class SpanNode:
    span: Span
    children: list[SpanNode] = field(default_factory=list)


# ---- parsing ---------------------------------------------------------------------------------------

def _value(value: Mapping[str, Any]) -> str:
    """An OTLP AnyValue as a string (Envoy sends strings; other SDKs send ints, bools, arrays)."""
    if not isinstance(value, Mapping) or not value:
        return ""
    kind, inner = next(iter(value.items()))
    if kind == "stringValue":
        return str(inner)
    if kind == "boolValue":
        return "true" if inner else "false"
    if kind in ("intValue", "doubleValue", "bytesValue"):
        return str(inner)
    if kind == "arrayValue":
        return json.dumps([_value(v) for v in (inner or {}).get("values", [])])
    if kind == "kvlistValue":
        return json.dumps({kv.get("key"): _value(kv.get("value", {})) for kv in (inner or {}).get("values", [])})
    return json.dumps(inner)


def _attributes(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if not isinstance(item, Mapping) or "key" not in item:
            continue
        key = str(item["key"])
        if key.startswith(JAEGER_INTERNAL):
            continue
        out[key] = _value(item.get("value", {}))
    return out


def _kind(raw: Any) -> str:
    if isinstance(raw, int):
        return KINDS.get(raw, str(raw))
    if isinstance(raw, str):
        name = raw.removeprefix("SPAN_KIND_").lower()
        return name if name in KINDS.values() else raw
    return "unspecified"


def _status_code(attributes: Mapping[str, str]) -> int | None:
    for key in STATUS_KEYS:
        value = attributes.get(key)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _span(raw: Mapping[str, Any], service: str) -> Span:
    try:
        trace_id, span_id = str(raw["traceId"]).lower(), str(raw["spanId"]).lower()
    except KeyError as err:
        raise TraceFormatError(f"a span without {err.args[0]}") from None
    attributes = _attributes(raw.get("attributes"))
    status = raw.get("status") or {}
    code = status.get("code") if isinstance(status, Mapping) else None
    try:
        start = int(raw.get("startTimeUnixNano") or 0)
    except (TypeError, ValueError):
        start = 0
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=str(raw["parentSpanId"]).lower() if raw.get("parentSpanId") else None,
        service=service,
        name=str(raw.get("name", "")),
        kind=_kind(raw.get("kind")),
        status_code=_status_code(attributes),
        attributes=attributes,
        start_ns=start,
        error=code in (STATUS_ERROR, "STATUS_CODE_ERROR"),
    )


def parse(doc: Any) -> list[Span]:
    """Every span of an api/v3 answer (trace by ID or search), ordered by start time.

    An answer without ``result`` (Jaeger's ``{"error": {...}}``) is a TraceFormatError: the
    caller decides what a 404 means before parsing.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("result"), Mapping):
        raise TraceFormatError(f"not an api/v3 traces answer: {json.dumps(doc)[:120]}")
    spans: list[Span] = []
    for resource_spans in doc["result"].get("resourceSpans") or []:
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        service = resource.get("service.name", "")
        for scope_spans in resource_spans.get("scopeSpans") or []:
            spans += [_span(raw, service) for raw in scope_spans.get("spans") or []]
    return sorted(spans, key=lambda s: (s.start_ns, s.span_id))


def by_trace(spans: Iterable[Span]) -> list[list[Span]]:
    """Spans grouped by trace ID (a search answers every trace in one list), in order of first start."""
    groups: dict[str, list[Span]] = {}
    for span in spans:
        groups.setdefault(span.trace_id, []).append(span)
    return sorted(groups.values(), key=lambda group: min(s.start_ns for s in group))


# ---- the tree ----------------------------------------------------------------------------------------

def tree(spans: Iterable[Span]) -> list[SpanNode]:
    """The spans as a forest by parent link; a span whose parent was not collected is a root too."""
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
    nodes = {span.span_id: SpanNode(span) for span in ordered}
    roots: list[SpanNode] = []
    for span in ordered:
        node = nodes[span.span_id]
        parent = nodes.get(span.parent_span_id or "")
        if parent is None or parent is node or _is_ancestor(node, parent, nodes):
            roots.append(node)
        else:
            parent.children.append(node)
    return roots


def _is_ancestor(node: SpanNode, candidate: SpanNode, nodes: Mapping[str, SpanNode]) -> bool:
    """True when ``node`` is already above ``candidate``: linking them would close a loop."""
    seen: set[str] = set()
    current: SpanNode | None = candidate
    while current is not None and current.span.span_id not in seen:
        if current is node:
            return True
        seen.add(current.span.span_id)
        current = nodes.get(current.span.parent_span_id or "")
    return False


def walk(roots: Iterable[SpanNode], depth: int = 0) -> Iterable[tuple[int, Span]]:
    for node in roots:
        yield depth, node.span
        yield from walk(node.children, depth + 1)


def ancestors(spans: Iterable[Span], span: Span) -> list[Span]:
    """The chain of collected parents of ``span``, nearest first (stops at a missing parent)."""
    index = {s.span_id: s for s in spans}
    chain: list[Span] = []
    current = index.get(span.parent_span_id or "")
    while current is not None and current not in chain and current != span:
        chain.append(current)
        current = index.get(current.parent_span_id or "")
    return chain


def find(spans: Iterable[Span], *, service: str | None = None, kind: str | None = None,
         name: str | None = None) -> list[Span]:
    """The spans matching every given field."""
    return [s for s in spans if (service is None or s.service == service) and (kind is None or s.kind == kind)
            and (name is None or s.name == name)]


# ---- evidence for the report -------------------------------------------------------------------------

def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def without_query(value: str) -> str:
    """A URL or request target with its query string and fragment removed."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return value.split("?", 1)[0].split("#", 1)[0]


def without_queries(text: str) -> str:
    """Any text with the query string and fragment of every URL or path in it removed."""
    return _QUERY_IN_TEXT.sub(r"\1", text)


def redact_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """Attributes safe to publish: no credential-bearing key, no query string in any URL."""
    out: dict[str, str] = {}
    for key, value in attributes.items():
        if _secret_key(key) or key.lower() in QUERY_KEYS:
            continue
        out[key] = without_query(value) if key.lower() in URL_KEYS else without_queries(value)
    return out


def span_tree_evidence(spans: Iterable[Span]) -> list[dict[str, Any]]:
    """The span tree in the shape the report renders (conformance.report.spans), parents first."""
    return [{
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "service": span.service,
        "name": without_queries(span.name),
        "kind": span.kind,
        "status_code": span.status_code,
        "attributes": redact_attributes(span.attributes),
    } for _depth, span in walk(tree(spans))]
