"""fixtures/faults.yaml, loaded and checked: every fault names known controls with a live tier,
changes something, and every live check's control is named by at least one fault."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import controls, fixtures
from conformance.errors import InputError
from conformance.paths import FIXTURES

CATALOGUE = FIXTURES / "faults.yaml"
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ACTIONS = ("apply", "delete", "scale", "patch", "call")


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    expect: tuple[str, ...]
    # Control -> a fragment of the reason its check must fail for (case-insensitive, matched against the
    # failing check's name and message): a kill for another reason proves nothing about this fault.
    because: dict[str, str] = field(default_factory=dict)
    overlay: tuple[dict[str, Any], ...] = ()
    cluster: tuple[dict[str, Any], ...] = ()
    restart: bool = False  # new pods after the change (and after its undo): admission must run again
    rollout_seconds: float = 120.0  # how long the changed workload may take to roll out before the checks run
    images: tuple[str, ...] = ()  # image sources the fault applies to (empty: every source)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "+".join(k for k, v in (("overlay", self.overlay), ("cluster", self.cluster)) if v)

    def controls(self) -> list[str]:
        """The controls whose live checks run under this fault: those it expects to fail, and no other.

        A kill is judged on them alone (kills.judge: each expected control's checks failed for the fault's
        reason), as a mutation tester runs only the tests that cover a mutant; the other checks' outcomes
        under a fault prove nothing, and the baselines before and after run every live check. Measured: the
        look-only checks of every control took 12-16 s per fault, a third of the catalogue."""
        return list(self.expect)


def _fault(raw: Any, where: str) -> Fault:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a fault is a mapping")
    unknown = set(raw) - {"name", "description", "expect", "because", "overlay", "cluster", "restart",
                          "rollout_seconds", "images"}
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = str(raw.get("name", ""))
    if not NAME.match(name):
        raise InputError(f"{where}: name {name!r} must be lower-case words joined by '-'")
    expect = tuple(raw.get("expect") or ())
    if not expect:
        raise InputError(f"{where} ({name}): expect lists no control")
    for control in expect:
        known = controls.BY_ID.get(control)
        if known is None:
            raise InputError(f"{where} ({name}): unknown control {control}")
        if controls.LIVE not in known.tiers:
            raise InputError(f"{where} ({name}): {control} has no live check to fail")
    because = raw.get("because") or {}
    if not isinstance(because, dict) or set(because) != set(expect) or not all(
            isinstance(v, str) and v.strip() for v in because.values()):
        raise InputError(f"{where} ({name}): because must give each expected control ({', '.join(expect)}) a "
                         "fragment of the reason its check fails for")
    overlay, cluster = tuple(raw.get("overlay") or ()), tuple(raw.get("cluster") or ())
    if not overlay and not cluster:
        raise InputError(f"{where} ({name}): neither overlay nor cluster changes anything")
    for i, step in enumerate(cluster):
        verbs = [k for k in ACTIONS if k in step] if isinstance(step, dict) else []
        if len(verbs) != 1:
            raise InputError(f"{where} ({name}) cluster[{i}]: one of {', '.join(ACTIONS)}, exactly")
    if not raw.get("description"):
        raise InputError(f"{where} ({name}): a description says what the fault breaks")
    return Fault(name=name, description=str(raw["description"]).strip(), expect=expect,
                 because={c: str(because[c]).strip() for c in expect}, overlay=overlay,
                 cluster=cluster, restart=bool(raw.get("restart", False)),
                 rollout_seconds=float(raw.get("rollout_seconds", 120)), images=tuple(raw.get("images") or ()))


def load(path: Path = CATALOGUE) -> list[Fault]:
    data = fixtures.load_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("faults"), list):
        raise InputError(f"{path}: expected a mapping with a 'faults' list")
    faults = [_fault(raw, f"{path.name} faults[{i}]") for i, raw in enumerate(data["faults"])]
    names = [f.name for f in faults]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{path}: fault(s) named twice: {', '.join(twice)}")
    return faults


def uncovered(faults: list[Fault]) -> list[str]:
    """Controls with a live check that no fault expects to fail: their live checks are unproven."""
    named = {c for f in faults for c in f.expect}
    return [c.id for c in controls.CATALOGUE if controls.LIVE in c.tiers and c.id not in named]
