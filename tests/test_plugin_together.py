"""Checks run together must report exactly what they would alone: evidence, failure, skip or error."""

from __future__ import annotations

import time

import pytest

from conformance.plugin.together import replay, together


def test_bodies_overlap_and_keep_their_own_outcomes():
    def passing(evidence):
        time.sleep(0.3)
        evidence.append({"note": "looked"})

    def failing(evidence):
        time.sleep(0.3)
        evidence.append({"note": "saw a gap"})
        pytest.fail("Service x: the gap", pytrace=False)

    def skipping(_evidence):
        pytest.skip("nothing to check: no Vault here")

    def broken(_evidence):
        raise RuntimeError("the probe itself broke")

    started = time.monotonic()
    outcomes = together({"pass": passing, "fail": failing, "skip": skipping, "error": broken})
    assert time.monotonic() - started < 0.55, "the bodies did not run at once"

    evidence: list = []
    replay(outcomes["pass"], evidence)
    assert evidence == [{"note": "looked"}]
    with pytest.raises(pytest.fail.Exception, match="Service x: the gap"):
        replay(outcomes["fail"], evidence := [])
    assert evidence == [{"note": "saw a gap"}]
    with pytest.raises(pytest.skip.Exception, match="nothing to check"):
        replay(outcomes["skip"], [])
    with pytest.raises(RuntimeError, match="the probe itself broke"):
        replay(outcomes["error"], [])
