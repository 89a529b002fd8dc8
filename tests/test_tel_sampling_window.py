"""TEL-01's acceptance window, proven from telemetry.yaml's own numbers with exact binomial tails.

The live check counts how many of n unforced requests cortex-api's sidecar traced and accepts the
count only inside [min, max]. These tests hold that window to its promise: the promised rate lands
inside it with at least the stated confidence, and the rates it must reject (and every rate beyond
them) land inside it with at most 1 - confidence.
"""

from __future__ import annotations

from math import comb

import pytest

from conformance import fixtures

TRACING = fixtures.expectations("telemetry")["tracing"]
N = TRACING["unforced_requests"]
LOW, HIGH = TRACING["traced_window"]["min"], TRACING["traced_window"]["max"]
CONFIDENCE = TRACING["confidence"]


def inside(rate_percent: float, n: int = N, low: int = LOW, high: int = HIGH) -> float:
    """P(low <= X <= high) for X ~ Binomial(n, rate): the chance a run at this rate passes."""
    p = rate_percent / 100
    return sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(low, high + 1))


def test_promised_rate_is_accepted():
    assert inside(TRACING["expected_percent"]) >= CONFIDENCE


@pytest.mark.parametrize("side", ["below", "above"])
def test_named_rates_are_rejected(side):
    assert inside(TRACING["reject_percent"][side]) <= 1 - CONFIDENCE


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5])
def test_every_rate_at_or_below_the_low_one_is_rejected(rate):
    """The tail falls monotonically away from the window, so the endpoint bounds every rate beyond it."""
    assert rate <= TRACING["reject_percent"]["below"]
    assert inside(rate) <= 1 - CONFIDENCE


@pytest.mark.parametrize("rate", [30, 35, 50, 100])
def test_every_rate_at_or_above_the_high_one_is_rejected(rate):
    assert inside(rate) <= 1 - CONFIDENCE


def test_the_old_bounds_did_not_discriminate():
    """What the issue found: 1 to 83 of 200 accepted both 30 % and 0.5 % most of the time."""
    assert inside(30, 200, 1, 83) > 0.99
    assert inside(0.5, 200, 1, 83) > 0.6


def test_window_lies_within_the_static_bounds():
    """The promised rate is one the static tier accepts too, so the two tiers do not contradict."""
    bounds = TRACING["sampling_percent"]
    assert bounds["min"] <= TRACING["expected_percent"] <= bounds["max"]
    assert 0 < LOW <= N * TRACING["expected_percent"] / 100 <= HIGH < N


def test_tail_arithmetic_written_beside_the_numbers():
    """The values telemetry.yaml's comment states, recomputed (rounded as written there)."""
    assert round(inside(10), 6) == 0.999922
    assert f"{inside(30):.2e}" == "2.81e-04"
    assert f"{inside(0.5):.2e}" == "5.64e-04"
