"""The one way the suite waits: a monotonic deadline, an early failure, a message naming what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from conformance.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    what: str,
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = 1.0,
    fail: Callable[[], str | None] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy and return that.

    ``what`` names the object and the condition ("dockerd socket /run/x.sock answers") and is
    the whole timeout message. ``fail`` is asked before each probe; a non-empty answer means the
    condition can no longer come true (the process died, the pod crashed) and ends the wait at
    once with that reason instead of burning the rest of the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        if fail is not None:
            reason = fail()
            if reason:
                raise WaitTimeout(f"gave up waiting for {what}: {reason}")
        result = probe()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(interval, remaining))
