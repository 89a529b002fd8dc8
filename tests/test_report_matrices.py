"""Matrix cells: matched, mismatched, not probed or left to the static tier, and the network grid."""

from __future__ import annotations

import pytest

from conformance.report import html_matrices, matrices


def _flow(src: str, dst: str, port: str, expected: bool, observed: bool | None, note: str = "",
          *, keys: tuple[str, str] = ("source", "destination")) -> dict:
    cell = {keys[0]: src, keys[1]: dst, "port": port, "expected": expected, "observed": observed}
    return {**cell, "note": note} if note else cell


NETWORK = {"name": "network", "tier": "live", "input": "dev", "run": "conformance", "cells": [
    _flow("gateway", "api", "8080/TCP", True, True),
    _flow("prometheus", "api", "9121/TCP", False, True),
    _flow("prometheus", "api", "9090/TCP", True, False),
    _flow("other", "api", "8080/TCP", False, False),
    _flow("other", "redis", "6379/TCP", False, None, "no Ready client pod in other"),
    _flow("api", "internet", "443/TCP", True, None, "static tier decides: no public address answers here"),
]}


@pytest.mark.parametrize(("cell", "state"), [
    ({"expected": 401, "observed": 401}, "match"),
    ({"expected": 401, "observed": 200}, "mismatch"),
    ({"expected": 401, "observed": None}, "not probed"),
    ({"expected": True, "observed": None, "note": "could not exec: static tier decides: x"}, "not probed"),
    ({"expected": True, "observed": None, "note": "static tier decides: an address block"}, "static tier decides"),
    ({"expected": False, "observed": False}, "match"),
], ids=["match", "mismatch", "no-note", "prefix-elsewhere", "deferred", "blocked-match"])
def test_cell_state(cell, state):
    """Only a note that starts with the marker leaves a cell to the static tier."""
    assert matrices.cell_state(cell) == state


def test_summary_counts_each_state():
    """Mismatches, unprobed and deferred cells are counted apart; unobserved is the last two together."""
    m = matrices.summarise(NETWORK)
    assert (m["mismatches"], m["unprobed"], m["deferred"], m["unobserved"]) == (2, 1, 1, 2)
    assert m["columns"] == ["source", "destination", "port"]
    assert [c["match"] for c in m["cells"]] == [True, False, False, True, None, None]


@pytest.mark.parametrize("keys", [("source", "destination"), ("from", "to")])
def test_network_cells_under_either_key_name(keys):
    """Results written before the rename (from, to) still make a grid."""
    m = {"cells": [_flow("a", "b", "80/TCP", True, True, keys=keys)]}
    assert matrices.is_network(m)
    assert (matrices.source(m["cells"][0]), matrices.destination(m["cells"][0])) == ("a", "b")


def test_jwt_matrix_is_not_a_grid():
    """A matrix of token cases has no source and destination, so it stays a list."""
    assert not matrices.is_network({"cells": [{"case": "expired", "expected": 401, "observed": 401}]})


def test_flow_state_spells_out_what_happened():
    """Each network cell reads as allowed or blocked, expected or not, or not probed."""
    states = [matrices.flow_state(c) for c in matrices.summarise(NETWORK)["cells"]]
    assert states == ["allowed", "allowed-unexpected", "blocked-unexpected", "blocked", "not-probed",
                      "static-decides"]


def test_grid_keeps_the_recorded_order():
    """Rows are sources, columns destinations, in the order the cells were recorded."""
    sources, destinations, pairs = matrices.grid(NETWORK)
    assert (sources, destinations) == (["gateway", "prometheus", "other", "api"], ["api", "redis", "internet"])
    assert [c["port"] for c in pairs[("prometheus", "api")]] == ["9121/TCP", "9090/TCP"]


def test_grid_marks_the_worst_flow_of_a_cell_and_lists_mismatches():
    """A grid cell takes the class of its worst port; mismatches and unprobed cells are listed below."""
    page = html_matrices.section({"matrices": [matrices.summarise(NETWORK)]})
    assert '<table class="grid">' in page
    assert '<td class="g-allowed-unexpected"><span class="flow f-allowed-unexpected"' in page
    mismatches = page[page.index('<div class="flows-mismatch">'):]
    assert "prometheus → api 9121/TCP</b>: ALLOWED, NOT EXPECTED" in mismatches
    assert "prometheus → api 9090/TCP</b>: EXPECTED, BLOCKED" in mismatches
    assert "other → redis 6379/TCP</b>: not probed (no Ready client pod in other)" in page
    assert "api → internet 443/TCP</b>: static tier decides: no public address answers here" in page
    assert '<td class="no-flow">—</td>' in page
    assert "Network grid legend" in page
