"""Matrix cells as the report reads them: matched, mismatched, not probed, or left to the static tier.

A live matrix may hold cells that no probe observed (``observed`` is null, with a ``note``). A
cell whose note starts with :data:`DEFERRED` was left out on purpose: it belongs to an address
block such as the internet, which no pod in a kind cluster can stand in for, so the static tier
decides it. Any other unobserved cell is a hole in the live evidence and makes the verdict
INCOMPLETE at least.
"""

from __future__ import annotations

from typing import Any

DEFERRED = "static tier decides:"

MATCH = "match"
MISMATCH = "mismatch"
NOT_PROBED = "not probed"
STATIC_DECIDES = "static tier decides"
CELL_STATES = (MATCH, MISMATCH, NOT_PROBED, STATIC_DECIDES)

_VALUES = ("expected", "observed", "note")
# Results written before the network cells were renamed call the endpoints from and to.
_SOURCE = ("source", "from")
_DESTINATION = ("destination", "to")

# How a network cell reads, worst first: a mismatch is what a reviewer must see.
FLOW_STATES: dict[str, tuple[str, str]] = {
    "allowed-unexpected": ("ALLOWED, NOT EXPECTED", "the flow went through but the expectations block it"),
    "blocked-unexpected": ("EXPECTED, BLOCKED", "the expectations allow the flow but it was blocked"),
    "not-probed": ("not probed", "no probe observed the flow: the live evidence has a hole"),
    "static-decides": ("static tier decides", "deliberately not probed (an address block no cluster "
                                              "can stand in for); the static matrix decides it"),
    "allowed": ("allowed", "allowed, as expected"),
    "blocked": ("blocked", "blocked, as expected"),
}


def cell_state(cell: dict[str, Any]) -> str:
    """One of :data:`CELL_STATES` for a recorded cell."""
    observed = cell.get("observed")
    if observed is None:
        return STATIC_DECIDES if str(cell.get("note") or "").startswith(DEFERRED) else NOT_PROBED
    return MATCH if observed == cell["expected"] else MISMATCH


def summarise(matrix: dict[str, Any]) -> dict[str, Any]:
    """A merged matrix with each cell's state and the counts the verdict reads."""
    cells, columns = [], []
    for cell in matrix["cells"]:
        columns += [k for k in cell if k not in _VALUES and k not in columns]
        state = cell_state(cell)
        observed = cell.get("observed")
        cells.append({**cell, "observed": observed, "state": state,
                      "match": None if observed is None else state == MATCH})
    counts = {state: sum(1 for c in cells if c["state"] == state) for state in CELL_STATES}
    return {"name": matrix["name"], "tier": matrix.get("tier", ""), "input": matrix.get("input", ""),
            "run": matrix["run"], "columns": columns, "cells": cells,
            "mismatches": counts[MISMATCH], "unprobed": counts[NOT_PROBED],
            "deferred": counts[STATIC_DECIDES], "unobserved": counts[NOT_PROBED] + counts[STATIC_DECIDES]}


def _first(cell: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((cell[k] for k in keys if k in cell), None)


def source(cell: dict[str, Any]) -> str:
    return str(_first(cell, _SOURCE))


def destination(cell: dict[str, Any]) -> str:
    return str(_first(cell, _DESTINATION))


def is_network(matrix: dict[str, Any]) -> bool:
    """Whether every cell is a flow (source, destination, port, allowed or not): a grid can show it."""
    return bool(matrix["cells"]) and all(
        _first(c, _SOURCE) is not None and _first(c, _DESTINATION) is not None and "port" in c
        and isinstance(c["expected"], bool) for c in matrix["cells"])


def flow_state(cell: dict[str, Any]) -> str:
    """The key of :data:`FLOW_STATES` for a network cell."""
    state = cell.get("state") or cell_state(cell)
    if state == NOT_PROBED:
        return "not-probed"
    if state == STATIC_DECIDES:
        return "static-decides"
    allowed = "allowed" if cell["observed"] else "blocked"
    return allowed if state == MATCH else f"{allowed}-unexpected"


def grid(matrix: dict[str, Any]) -> tuple[list[str], list[str], dict[tuple[str, str], list[dict[str, Any]]]]:
    """Sources (rows) and destinations (columns) in the order recorded, and the cells of each pair."""
    sources: list[str] = []
    destinations: list[str] = []
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in matrix["cells"]:
        src, dst = source(cell), destination(cell)
        sources += [] if src in sources else [src]
        destinations += [] if dst in destinations else [dst]
        pairs.setdefault((src, dst), []).append(cell)
    return sources, destinations, pairs


def flow_name(cell: dict[str, Any]) -> str:
    return f"{source(cell)} → {destination(cell)} {cell.get('port')}"
