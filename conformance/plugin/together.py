"""Checks whose waiting can overlap: run their bodies at once, then let each check report its own outcome.

A live check mostly waits (for a span to reach the collector, a log line to appear, a gateway to
answer). Checks that do not disturb each other run their bodies together in threads, each against
its own evidence list; each pytest check then replays its body's outcome, so results, messages and
evidence are exactly what the check would have recorded alone.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Outcome:
    evidence: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    skipped: str | None = None
    error: BaseException | None = None


def together(bodies: dict[str, Callable[[list[dict[str, Any]]], None]], workers: int = 8) -> dict[str, Outcome]:
    """Run every body (given an evidence list to append to) at once; name -> what happened."""
    def one(body: Callable[[list[dict[str, Any]]], None]) -> Outcome:
        outcome = Outcome()
        try:
            body(outcome.evidence)
        except pytest.fail.Exception as exc:
            outcome.failure = exc.msg
        except pytest.skip.Exception as exc:
            outcome.skipped = exc.msg
        except Exception as exc:  # noqa: BLE001 - replayed as the check's own error
            outcome.error = exc
        return outcome

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(one, body) for name, body in bodies.items()}
        return {name: future.result() for name, future in futures.items()}


def replay(outcome: Outcome, evidence: list[dict[str, Any]]) -> None:
    """Report `outcome` as the current check's own: its evidence, then its failure, skip or error."""
    evidence += outcome.evidence
    if outcome.error is not None:
        raise outcome.error
    if outcome.skipped is not None:
        pytest.skip(outcome.skipped)
    if outcome.failure is not None:
        pytest.fail(outcome.failure, pytrace=False)
