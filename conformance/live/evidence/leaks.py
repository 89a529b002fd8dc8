"""Where a credential landed in a telemetry sink (TEL-05): pure searches over what the sinks hold.

Each search takes `fragments`, a mapping of a name that may be printed ("the valid token (its signature)")
to the secret text, and answers with places (a span's field, a log's source, a metric's series and label),
never with the text itself. A token is looked for whole and by its parts: a sink that keeps only
"Bearer <token>", the token without its prefix, or a truncated token still holds the signature or the
header and claims.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# A part shorter than this could occur by chance (and a JWT's header is the same for every token of a key).
MIN_FRAGMENT = 16
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def fragments(tokens: Mapping[str, str | None]) -> dict[str, str]:
    """The searchable parts of each named token: the whole, its signature, its header and claims."""
    out: dict[str, str] = {}
    for name, token in tokens.items():
        if not token:
            continue
        out[name] = token
        parts = token.split(".")
        if len(parts) == 3:
            out[f"{name} (its signature)"] = parts[2]
            out[f"{name} (its header and claims)"] = f"{parts[0]}.{parts[1]}"
    return {name: text for name, text in out.items() if len(text) >= MIN_FRAGMENT}


def _found(text: str, frags: Mapping[str, str]) -> list[str]:
    return [name for name, secret in frags.items() if secret in text]


def _walk(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """(path, string) of every string under `value`; an OTLP key/value pair is named by its key."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        if "key" in value and "value" in value and isinstance(value["key"], str):
            yield f"{path}[{value['key']}]", value["key"]
            yield from _walk(value["value"], f"{path}[{value['key']}]")
            return
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            named = isinstance(inner, Mapping) and "key" in inner and "value" in inner
            yield from _walk(inner, path if named else f"{path}[{i}]")


def in_traces(doc: Any, frags: Mapping[str, str]) -> list[str]:
    """Places in an api/v3 (OTLP JSON) traces answer where a fragment occurs: span names, attributes, events,
    links and status messages, and the resource's attributes (a span's process tags)."""
    places: list[str] = []
    result = doc.get("result") if isinstance(doc, Mapping) else None
    for resource_spans in (result or {}).get("resourceSpans") or []:
        resource = resource_spans.get("resource") or {}
        service = next((_walk_value(a) for a in resource.get("attributes") or []
                        if isinstance(a, Mapping) and a.get("key") == "service.name"), "") or "an unnamed service"
        for path, text in _walk(resource, "resource"):
            places += [f"the resource of service {service}, field {path}: {name}" for name in _found(text, frags)]
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                where = f"span {span.get('name', '')!r} of service {service} (trace {span.get('traceId', '?')})"
                for path, text in _walk({k: v for k, v in span.items() if k not in ("traceId", "spanId",
                                                                                   "parentSpanId")}, ""):
                    places += [f"{where}, field {path}: {name}" for name in _found(text, frags)]
    return places


def _walk_value(attribute: Mapping[str, Any]) -> str:
    value = attribute.get("value") or {}
    return str(value.get("stringValue", "")) if isinstance(value, Mapping) else ""


def in_lines(lines: Iterable[tuple[str, str]], frags: Mapping[str, str]) -> list[str]:
    """Places among (source, line) log lines: the source, and which credential its line holds."""
    return [f"the log of {where}: {name}" for where, line in lines for name in _found(line, frags)]


def in_metrics(text: str, frags: Mapping[str, str], where: str) -> list[str]:
    """Places in a Prometheus text exposition: the series and the label (or the series name) a fragment is in."""
    places = []
    for line in text.splitlines():
        if not line or line.startswith("#") or not _found(line, frags):
            continue
        series = line.split("{", 1)[0].split()[0]
        labels = {label: value for label, value in _LABEL.findall(line)}
        hits = [(label, name) for label, value in labels.items() for name in _found(value, frags)]
        if not hits:
            hits = [("(its name or value)", name) for name in _found(line, frags)]
        places += [f"{where}, series {series} label {label}: {name}" for label, name in hits]
    return sorted(set(places))
