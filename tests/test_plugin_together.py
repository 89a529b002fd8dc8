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


def test_head_start_runs_the_selected_observations_in_the_background():
    """HeadStart begins the registered observations of the selected families at once; each family's
    result is the one begun (its exception raised where it is asked for), and a family not begun is
    observed when asked."""
    import threading

    from conformance.plugin.together import HeadStart

    head = HeadStart()
    release, calls = threading.Event(), []

    @head.observation("TEL")
    def tel(value):
        release.wait(5)
        calls.append(("TEL", threading.current_thread().name))
        return value * 2

    @head.observation("NET")
    def net(value):
        raise RuntimeError(f"no canary ({value})")

    @head.observation("SEC")
    def sec(value):
        calls.append(("SEC", threading.current_thread().name))
        return value

    assert head.begin({"TEL", "NET", "JWT"}, 21) == ["NET", "TEL"]
    assert calls == []  # TEL waits in its thread; this one goes on
    release.set()
    assert head.result("TEL", 21) == 42
    assert calls[0][0] == "TEL"
    assert calls[0][1].startswith("head-start")
    with pytest.raises(RuntimeError, match="no canary"):
        head.result("NET", 21)
    assert head.result("SEC", 5) == 5
    assert calls[-1] == ("SEC", threading.current_thread().name)
    head.end()


def test_head_start_wait_keeps_the_outcomes_for_their_checks():
    """An experiment waits for the observations still running (wait) without taking their results."""
    from conformance.plugin.together import HeadStart

    head = HeadStart()
    head.observation("TEL")(lambda: time.sleep(0.2) or "seen")
    head.begin({"TEL"})
    started = time.monotonic()
    head.wait()
    assert time.monotonic() - started >= 0.1
    assert head.result("TEL") == "seen"
    head.end()
