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


class HeadStart:
    """Look-only observations begun as soon as the live environment is up, in the background, while the
    checks ordered before them run; their own checks then join them.

    A family registers its observation with `observation` when its module is imported (collection),
    and the `live` fixture begins those of the families the run selected. The observations must not
    disturb the checks that run meanwhile (they only send requests of their own and read), and the
    disruptive experiments wait for them (`wait`), so that no probe toggle or eviction meets them.
    """

    def __init__(self) -> None:
        self.registered: dict[str, Callable[..., Any]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[str, Any] = {}

    def observation(self, family: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register `work(live, gateway)` as the observation of `family` (a control ID's prefix)."""
        def register(work: Callable[..., Any]) -> Callable[..., Any]:
            self.registered[family] = work
            return work
        return register

    def begin(self, families: set[str], *args: Any) -> list[str]:
        """Begin the registered observations of these families; returns the families begun."""
        chosen = sorted(f for f in families if f in self.registered and f not in self._futures)
        if chosen and self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(self.registered), thread_name_prefix="head-start")
        for family in chosen:
            self._futures[family] = self._pool.submit(self.registered[family], *args)
        return chosen

    def result(self, family: str, *args: Any) -> Any:
        """The observation's result (its exception re-raised here): the one begun, or made now."""
        future = self._futures.pop(family, None)
        return future.result() if future is not None else self.registered[family](*args)

    def wait(self) -> None:
        """Until every observation begun has ended (before an experiment disturbs the workload)."""
        for future in self._futures.values():
            future.exception()  # waits; the outcome stays for its check to report

    def end(self) -> None:
        """The run's end: wait for what is still running and forget it all."""
        self.wait()
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


HEAD_START = HeadStart()
