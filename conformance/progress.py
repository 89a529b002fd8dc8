"""What a long run is doing, as `docker build` and `kind create cluster` show it.

A step (a build stage, a phase, a wait) is announced when it starts and when it ends, with its time.
While steps run, a ticker shows each one's elapsed time and latest detail: on a terminal one status
line redrawn every second; elsewhere (CI logs) a plain line per running step every 30 seconds, so a
log never sits silent for an hour and never fills with carriage returns. A step's detail comes from
a callable, typically one that reads the step's log (`log_detail`): how many Go packages a build has
compiled, the package debootstrap is unpacking.

The display is for people only; nothing parses it. Everything else the suite prints goes through
`line`, so status and messages never interleave mid-line.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

HEARTBEAT = 30.0
GO_PACKAGE = re.compile(r"^[a-z0-9][\w.\-~]*(/[\w.\-~+]+)+$")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def log_detail(path: Path, tail_bytes: int = 256 << 10) -> str:
    """A one-line summary of a build log's latest command: Go packages compiled, debootstrap's stage."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - tail_bytes))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    start = max((i for i, line in enumerate(lines) if line.startswith("$ ")), default=-1)
    current = lines[start + 1:]
    command = lines[start][2:].split()[:3] if start >= 0 else []
    packages = sum(1 for line in current if GO_PACKAGE.match(line))
    if command[:2] and command[0].endswith("go") and packages:
        return f"go {command[1]}: {packages} packages compiled"
    debootstrap = [line for line in current if line.startswith("I: ")]
    if debootstrap:
        return debootstrap[-1][3:][:80]
    return current[-1][:80] if current else ""


@dataclass
class Step:
    name: str
    started: float
    detail: Callable[[], str] = lambda: ""
    note: str = ""

    def update(self, note: str) -> None:
        self.note = note

    def status(self, now: float) -> str:
        detail = self.note or self.detail()
        return f"{self.name} {_clock(now - self.started)}" + (f" ({detail})" if detail else "")


@dataclass
class Progress:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    tty: bool | None = None
    heartbeat: float = HEARTBEAT
    steps: list[Step] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ticker: threading.Thread | None = None
    _shown: bool = False  # a status line is on screen (terminal only)
    _last_beat: float = 0.0

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, message: str) -> None:
        self.line(message)

    def line(self, message: str) -> None:
        """A message of its own, on its own line, above the status."""
        with self._lock:
            self._clear()
            self.stream.write(message + "\n")
            self.stream.flush()
            self._draw(time.monotonic())

    @contextlib.contextmanager
    def step(self, name: str, *, detail: Callable[[], str] | None = None, log: Path | None = None,
             quiet_below: float = 0.0) -> Iterator[Step]:
        """Announce, show while it runs, and close with its time ('kubernetes: built in 11m02s')."""
        step = Step(name, time.monotonic(), detail or ((lambda: log_detail(log)) if log else (lambda: "")))
        with self._lock:
            self.steps.append(step)
        self.line(f"{name} ...")
        self._start_ticker()
        outcome = "failed"
        try:
            yield step
            outcome = "done"
        finally:
            with self._lock:
                self.steps.remove(step)
            elapsed = time.monotonic() - step.started
            if elapsed >= quiet_below or outcome != "done":
                self.line(f"{name}: {outcome} in {_clock(elapsed)}" + (f" ({step.note})" if step.note else ""))

    # -- the ticker --------------------------------------------------------------------------------

    def _start_ticker(self) -> None:
        with self._lock:
            if self._ticker is not None and self._ticker.is_alive():
                return
            self._last_beat = time.monotonic()
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                if not self.steps:
                    self._clear()
                    self._ticker = None
                    return
                now = time.monotonic()
                if self.tty:
                    self._clear()
                    self._draw(now)
                elif now - self._last_beat >= self.heartbeat:
                    self._last_beat = now
                    for step in self.steps:
                        self.stream.write(f"  ... {step.status(now)}\n")
                    self.stream.flush()

    def _draw(self, now: float) -> None:
        if not self.tty or not self.steps:
            return
        columns = 120
        status = " | ".join(step.status(now) for step in self.steps)
        self.stream.write(f"\r[+] {status}"[:columns])
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = False


_CURRENT: Progress | None = None


def current() -> Progress | None:
    """The display of this process, if one is set (waits report through it)."""
    return _CURRENT


def install(progress: Progress) -> Progress:
    global _CURRENT
    _CURRENT = progress
    return progress


@contextlib.contextmanager
def noting(text: str) -> Iterator[None]:
    """Show `text` as the detail of the innermost running step while the block runs (a wait, a load)."""
    shown = _CURRENT
    step = shown.steps[-1] if shown is not None and shown.steps else None
    if step is None:
        yield
        return
    before = step.note
    step.update(text)
    try:
        yield
    finally:
        step.update(before)
