"""Control results and the verdict, on small hand-made result sets."""

from __future__ import annotations

import pytest

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
