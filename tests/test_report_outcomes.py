"""Control results and the verdict, on small hand-made result sets."""

from __future__ import annotations

import pytest

from conformance import controls
from conformance.controls import CATALOGUE
from conformance.report import outcomes


def _result(control: str | None, tier: str, outcome: str, message: str = "") -> dict:
    return {"test": f"t::{control}-{tier}-{outcome}-{message}", "control": control, "tier": tier,
            "outcome": outcome, "message": message}


def _passing(scope: list[str]) -> list[dict]:
    return [_result(c.id, t, "passed") for c in CATALOGUE for t in c.tiers if t in scope]


def _row(rows: list[dict], cid: str) -> dict:
    return next(r for r in rows if r["id"] == cid)


@pytest.mark.parametrize(("found", "expected"), [
    (["passed", "skipped", "failed", "error"], "failed"),
    (["passed", "error", "skipped"], "error"),
    (["passed", "skipped"], "skipped"),
    (["passed", "passed"], "passed"),
    ([], "not run"),
])
def test_worst_outcome(found, expected):
    """failed outranks error, error outranks skipped, skipped outranks passed; nothing is not run."""
    assert outcomes.worst(found) == expected


def test_everything_passing_is_a_pass():
    """Every control of both tiers passing gives the verdict pass."""
    rows = outcomes.control_rows(_passing(["static", "live"]), ["static", "live"])
    assert outcomes.verdict(rows, []) == ("pass", [f"all {len(CATALOGUE)} control(s) passed"])


def test_static_only_run_is_judged_on_the_static_tier():
    """A static run is not incomplete merely because the live tier was not its job."""
    rows = outcomes.control_rows(_passing(["static"]), ["static"])
    assert outcomes.verdict(rows, [])[0] == "pass"
    assert _row(rows, "SEC-01")["live"]["result"] == "not run"


def test_missing_check_in_scope_makes_the_verdict_incomplete():
    """A control whose in-scope tier has no result leaves the verdict incomplete, not pass."""
    results = [r for r in _passing(["static", "live"]) if not (r["control"] == "GW-01" and r["tier"] == "live")]
    rows = outcomes.control_rows(results, ["static", "live"])
    assert outcomes.verdict(rows, []) == ("incomplete", ["1 control(s) not run"])


def test_skip_makes_the_verdict_incomplete():
    """A skipped check is not a pass."""
    results = [*_passing(["static"]), _result("SEC-01", "static", "skipped", "no pods")]
    rows = outcomes.control_rows(results, ["static"])
    assert outcomes.verdict(rows, []) == ("incomplete", ["1 control(s) skipped"])


def test_matrix_mismatch_fails_even_when_every_check_passed():
    """A mismatch in a recorded matrix is evidence of a failure on its own."""
    rows = outcomes.control_rows(_passing(["static"]), ["static"])
    matrix = {"name": "network", "tier": "static", "input": "dev", "mismatches": 2}
    assert outcomes.verdict(rows, [matrix]) == ("fail", ["network matrix (static, dev): 2 mismatch(es)"])


def test_reason_collects_distinct_first_lines():
    """A tier's reason is the first line of each distinct message of its worst outcome."""
    results = [_result("SEC-01", "static", "failed", "container a: root\ndetail"),
               _result("SEC-01", "static", "failed", "container b: root"),
               _result("SEC-01", "static", "skipped", "ignored")]
    tier = outcomes.tier_result(CATALOGUE[2], "static", results)
    assert (tier["result"], tier["reason"]) == ("failed", "container a: root; container b: root")


def test_agreement_needs_both_tiers_decided():
    """Tiers agree or disagree only when both passed or failed; otherwise agreement is unknown."""
    rows = outcomes.control_rows([_result("SEC-01", "static", "passed"), _result("SEC-01", "live", "failed"),
                                  _result("SEC-02", "static", "passed"), _result("SEC-02", "live", "passed"),
                                  _result("SEC-03", "static", "passed"), _result("SEC-03", "live", "skipped")],
                                 ["static", "live"])
    assert [_row(rows, c)["agree"] for c in ("SEC-01", "SEC-02", "SEC-03")] == [False, True, None]


def test_unknown_control_and_missing_control_get_their_own_rows():
    """Results naming a control outside the catalogue, or none, are kept visible, not dropped."""
    rows = outcomes.control_rows([_result("SEC-99", "static", "failed"), _result(None, "static", "passed")],
                                 ["static"])
    extra = {r["id"]: (r["in_catalogue"], r["title"], r["status"]) for r in rows if not r["in_catalogue"]}
    assert extra == {"SEC-99": (False, "not in the control catalogue", "failed"),
                     "(none)": (False, "results without a control ID", "passed")}


def _matrix(**counts) -> dict:
    return {"name": "network", "tier": "live", "input": "dev", "mismatches": 0, "unprobed": 0, "deferred": 0,
            **counts}


def test_unprobed_cell_makes_a_pass_incomplete():
    """A matrix cell nobody probed is no evidence: every check passing still gives incomplete."""
    rows = outcomes.control_rows(_passing(["static", "live"]), ["static", "live"])
    assert outcomes.verdict(rows, [_matrix(unprobed=2)]) == (
        "incomplete", ["network matrix (live, dev): 2 cell(s) not probed"])


def test_cells_left_to_the_static_tier_do_not_block_a_pass():
    """Cells deliberately left to the static tier (an address block no cluster can probe) are allowed."""
    rows = outcomes.control_rows(_passing(["static", "live"]), ["static", "live"])
    assert outcomes.verdict(rows, [_matrix(deferred=2)])[0] == "pass"


def test_unprobed_cell_does_not_hide_a_failure():
    """A mismatch with an unprobed cell beside it is still a failure."""
    rows = outcomes.control_rows(_passing(["static", "live"]), ["static", "live"])
    assert outcomes.verdict(rows, [_matrix(mismatches=1, unprobed=1)])[0] == "fail"


def test_reason_from_outside_the_controls_fails_the_verdict():
    """A reason such as the fault catalogue's fails a verdict every control passed."""
    rows = outcomes.control_rows(_passing(["static", "live"]), ["static", "live"])
    assert outcomes.verdict(rows, [], ["the live tier could not prove it can fail: x"]) == (
        "fail", ["the live tier could not prove it can fail: x"])


@pytest.mark.parametrize(("tiers", "coverage", "level", "headline"), [
    (["static", "live"], "static+live", "live", "PASS (live, not fault-proven)"),
    (["static", "live"], "static+live", "signoff", "SIGN-OFF PASS"),
    (["static"], "static-only", "static", "PASS (static tier only)"),
    (["live"], "live-only", "live", "PASS (live tier only)"),
    ([], "none", "static", "PASS (no check ran)"),
])
def test_headline_names_the_tiers_the_verdict_rests_on(tiers, coverage, level, headline):
    """The coverage comes from the tiers that have results; nothing short of a sign-off prints a bare PASS."""
    results = [_result("SEC-01", t, "passed") for t in tiers]
    assert outcomes.coverage(results) == coverage
    assert outcomes.headline("pass", coverage, level) == headline


def test_static_only_failure_is_still_fail():
    """The qualifier never softens a failure: it is FAIL (static tier only)."""
    assert outcomes.headline("fail", "static-only") == "FAIL (static tier only)"


def test_a_new_family_needs_no_change_in_the_report(monkeypatch):
    """A TEL family added to the catalogue shows with its title and tiers; nothing lists families."""
    tel = controls.Control("TEL-01", "TEL", "A traced request yields spans sharing one trace ID",
                           "Without spans from gateway and sidecar a request cannot be followed.",
                           ("static", "live"))
    monkeypatch.setattr(controls, "CATALOGUE", (*controls.CATALOGUE, tel))
    monkeypatch.setattr(controls, "FAMILIES", {**controls.FAMILIES, "TEL": "Telemetry"})
    rows = outcomes.control_rows([_result("TEL-01", "live", "failed", "no sidecar span")], ["static", "live"])
    row = _row(rows, "TEL-01")
    assert (row["family_title"], row["in_catalogue"], row["status"], row["static"]["result"]) == (
        "Telemetry", True, "failed", "not run")
