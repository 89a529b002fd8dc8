"""What one pytest run accumulates: the inputs, phase timings, results, matrices and evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance.static.manifests import Bundle

TIERS = ("static", "live")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunState:
    run: str
    report_dir: Path
    started_at: str = field(default_factory=now)
    bundles: list[Bundle] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Setup, call and teardown of each check: a live check's fixtures (a probe matrix, a canary) are its cost.
    durations: dict[str, float] = field(default_factory=dict)
    # Seconds the environment took to come up inside the first live check's setup: they are the
    # phases', not that check's.
    environment_seconds: float = 0.0

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds


STATE = pytest.StashKey[RunState]()


def control_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("control")
    return marker.args[0] if marker and marker.args else None


def tier_of(item: pytest.Item) -> str | None:
    return next((t for t in TIERS if item.get_closest_marker(t)), None)
