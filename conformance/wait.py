"""The one way the suite waits: a monotonic deadline, an early way out, and a message that names what.

Every wait on a cluster object, a process or a port goes through :func:`wait_until`, so a timeout
always reads "timed out after 60s waiting for <object> to <condition>" and never hangs a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from conformance import progress
from conformance.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    what: str,
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = 1.0,
    fail: Callable[[], object] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy and return that; raise WaitTimeout otherwise.

    ``what`` names the object and the condition ("pod cortex-dev/x to become Ready"). ``fail`` is
    asked before every probe; a truthy answer (ideally a short reason) ends the wait at once,
    because waiting out the deadline for a process that already exited only hides the cause.
    Exceptions from ``probe`` propagate: the probe decides which errors mean "not yet". A timeout
    of zero probes once.
    """
    deadline = time.monotonic() + timeout
    with progress.noting(f"waiting for {what}"):
        while True:
            if fail is not None:
                reason = fail()
                if reason:
                    detail = reason if isinstance(reason, str) else "the failure condition became true"
                    raise WaitTimeout(f"gave up waiting for {what}: {detail}")
            result = probe()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(min(interval, remaining))
