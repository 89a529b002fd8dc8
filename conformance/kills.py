"""How a fault of the live catalogue is judged: killed as expected, killed for another reason, or missed.

A fault names, for each control it expects to fail, a fragment of the reason (`because:` in
fixtures/faults.yaml). A control is killed as expected when one of its checks failed or errored and the
check's name or message holds that fragment; it is killed for another reason when its checks failed
but none for the stated reason (the fault may not be what broke it); it is missed when none failed.
The runner (conformance.live.faults) and the report (conformance.report.faults) both judge with this,
so the catalogue's record and the report cannot disagree on what killed means.
"""

from __future__ import annotations

from typing import Any

AS_EXPECTED = "killed as expected"
OTHER_REASON = "killed, other reason"
MISSED = "missed"
# Worst first: a fault's kill is the worst of its controls'.
ORDER = (MISSED, OTHER_REASON, AS_EXPECTED)
FAILING = ("failed", "error")


def _text(check: dict[str, Any]) -> str:
    # The test's function name (without the module path or parameters) and its message.
    name = str(check.get("test") or "").rsplit("::", 1)[-1].split("[", 1)[0]
    return f"{name} {check.get('message') or ''}".casefold()


def control_kill(control: str, fragment: str | None, checks: list[dict[str, Any]]) -> str:
    """The kill of one expected control, from the failed or errored checks of the fault's run."""
    mine = [c for c in checks if c.get("control") == control and c.get("outcome") in FAILING]
    if not mine:
        return MISSED
    if fragment and any(fragment.casefold() in _text(c) for c in mine):
        return AS_EXPECTED
    return OTHER_REASON


def judge(expect: list[str], because: dict[str, str], checks: list[dict[str, Any]]) -> dict[str, str]:
    """Each expected control's kill."""
    return {control: control_kill(control, because.get(control), checks) for control in expect}


def overall(kills: dict[str, str]) -> str:
    """The fault's kill: the worst of its controls' (missed when it expects nothing)."""
    if not kills:
        return MISSED
    return min(kills.values(), key=ORDER.index)
