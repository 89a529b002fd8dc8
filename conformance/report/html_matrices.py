"""Matrices on the HTML page: a network matrix as a grid, any other matrix as a list of cells.

The grid has sources as rows and destinations as columns; each cell lists its ports, and each
port says in words whether the flow was allowed or blocked and whether that was expected. A
mismatch is red and bold in the grid and listed again under it, so it cannot be missed.
"""

from __future__ import annotations

from typing import Any

from conformance.report import matrices, outcomes
from conformance.report.html_parts import e, table

_MARK = {"allowed": "✓", "blocked": "✓", "allowed-unexpected": "✗", "blocked-unexpected": "✗",
         "not-probed": "?", "static-decides": ""}
_WORST_FIRST = list(matrices.FLOW_STATES)


def _words(state: str) -> str:
    return f"{e(matrices.FLOW_STATES[state][0])} {_MARK[state]}".rstrip()


def _port(cell: dict[str, Any]) -> str:
    state = matrices.flow_state(cell)
    tip = cell.get("note") or matrices.FLOW_STATES[state][1]
    return (f'<span class="flow f-{state}" title="{e(tip)}"><code>{e(cell.get("port"))}</code> '
            f"{_words(state)}</span>")


def _grid_cell(cells: list[dict[str, Any]] | None) -> str:
    if not cells:
        return '<td class="no-flow">—</td>'
    worst = min((matrices.flow_state(c) for c in cells), key=_WORST_FIRST.index)
    return f'<td class="g-{worst}">' + "".join(_port(c) for c in cells) + "</td>"


def _why(cell: dict[str, Any]) -> str:
    label = matrices.FLOW_STATES[matrices.flow_state(cell)][0]
    note = str(cell.get("note") or "")
    if note.startswith(matrices.DEFERRED):
        return note
    return f"{label} ({note})" if note else label


def _listed(m: dict[str, Any], state: str, title: str) -> str:
    cells = [c for c in m["cells"] if c["state"] == state]
    if not cells:
        return ""
    items = "".join(f"<li><b>{e(matrices.flow_name(c))}</b>: {e(_why(c))}</li>" for c in cells)
    return f'<div class="flows-{state.replace(" ", "-")}"><b>{e(title)}</b><ul>{items}</ul></div>'


def _grid(m: dict[str, Any]) -> str:
    sources, destinations, pairs = matrices.grid(m)
    head = "<th>source ↓ · destination →</th>" + "".join(f"<th>{e(d)}</th>" for d in destinations)
    rows = "".join(f"<tr><th>{e(s)}</th>" + "".join(_grid_cell(pairs.get((s, d))) for d in destinations)
                   + "</tr>" for s in sources)
    return (f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            + _listed(m, matrices.MISMATCH, "Mismatches")
            + _listed(m, matrices.NOT_PROBED, "Not probed (the verdict cannot pass)")
            + _listed(m, matrices.STATIC_DECIDES, "Left to the static tier on purpose"))


def _cells(m: dict[str, Any]) -> str:
    rows = []
    notes = any(c.get("note") for c in m["cells"])
    for cell in m["cells"]:
        state, cls = {matrices.MATCH: ("✓ match", ""), matrices.MISMATCH: ("✗ MISMATCH", "mismatch"),
                      matrices.NOT_PROBED: ("not probed", "unobserved"),
                      matrices.STATIC_DECIDES: ("static tier decides", "deferred")}[cell["state"]]
        keys = "".join(f"<td>{e(cell.get(k))}</td>" for k in m["columns"])
        note = f"<td>{e(cell.get('note') or '')}</td>" if notes else ""
        rows.append(f'<tr class="{cls}">{keys}<td>{e(outcomes.matrix_value(cell["expected"]))}</td>'
                    f"<td>{e(outcomes.matrix_value(cell['observed']))}</td><td>{state}</td>{note}</tr>")
    return table([*m["columns"], "expected", "observed", "", *(["note"] if notes else [])], rows, "matrix")


def _matrix(m: dict[str, Any]) -> str:
    summary = (f"{m['mismatches']} mismatch(es), {m['unprobed']} not probed, "
               f"{m['deferred']} left to the static tier, {len(m['cells'])} cells")
    anchor = f'matrix-{e(m["name"])}-{e(m["tier"])}-{e(m["input"])}'
    body = _grid(m) if matrices.is_network(m) else _cells(m)
    return (f'<figure class="matrix"><h3 id="{anchor}">{e(m["name"])} matrix · {e(m["tier"])} · '
            f"input {e(m['input'])}</h3><p class=meta>{summary}</p>{body}</figure>")


def _legend() -> str:
    items = "".join(f'<li><span class="flow f-{key}">{_words(key)}</span> {e(meaning)}</li>'
                    for key, (_label, meaning) in matrices.FLOW_STATES.items())
    return f'<div class="legend"><b>Network grid legend</b><ul>{items}</ul></div>'


def section(doc: dict[str, Any]) -> str:
    """Every matrix; the static and live matrices of one name and input one after the other."""
    parts = ['<h2 id="matrices">Matrices</h2>']
    if not doc["matrices"]:
        return parts[0] + "<p>No matrix was recorded.</p>"
    if any(matrices.is_network(m) for m in doc["matrices"]):
        parts.append(_legend())
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in doc["matrices"]:
        groups.setdefault((m["name"], m["input"]), []).append(m)
    for group in groups.values():
        group.sort(key=lambda m: m["tier"] != "static")
        parts.append('<div class="matrix-group">' + "".join(_matrix(m) for m in group) + "</div>")
    return "".join(parts)
