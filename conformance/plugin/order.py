"""Every check names a known control and a tier; the run order keeps disruptive checks last."""

from __future__ import annotations

import pytest

from conformance import controls
from conformance.plugin.state import control_of, tier_of

# Static checks first; then live checks that only look; the disruptive ones last (conformance.live.
# experiments makes their experiments together at the first of them: probe toggles, load, evictions).
LIVE_ORDER = ("SEC", "MTLS", "GW", "JWT", "VAULT", "NET", "TEL", "AVAIL-04", "PROBE-01", "HPA-01", "HPA-02",
              "PROBE", "AVAIL", "HPA")


def run_order(item: pytest.Item) -> int:
    if tier_of(item) != "live":
        return 0
    control = control_of(item) or ""
    return 1 + next((i for i, prefix in enumerate(LIVE_ORDER) if control.startswith(prefix)), len(LIVE_ORDER))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = []
    for item in items:
        tier, control = tier_of(item), control_of(item)
        if tier is None and control is None:
            continue
        if control is None:
            problems.append(f"{item.nodeid}: a {tier} check without @pytest.mark.control")
        elif control not in controls.BY_ID:
            problems.append(f"{item.nodeid}: unknown control {control}")
        elif tier not in controls.BY_ID[control].tiers:
            problems.append(f"{item.nodeid}: control {control} has no {tier} tier in the catalogue")
        if tier is None:
            problems.append(f"{item.nodeid}: a control check needs a static or live marker")
    if problems:
        raise pytest.UsageError("\n".join(problems))
    wanted = config.getoption("controls")
    if wanted:
        chosen = set(wanted.split(","))
        keep = [i for i in items if control_of(i) is None or control_of(i) in chosen
                or (control_of(i) or "").split("-")[0] in chosen]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
    items.sort(key=run_order)
