"""Errors the user sees as one line, never as a traceback."""

import sys
from collections.abc import Callable


class ConformanceError(Exception):
    """A problem with the input or the environment, reported as a single line."""


class InputError(ConformanceError):
    """The manifests cannot be read: invalid YAML, a failed kustomize build, a missing file."""


class PreflightError(ConformanceError):
    """Something the run needs is missing: a tool, Docker, a cluster, a context."""


class WaitTimeout(ConformanceError):
    """A deadline passed while waiting for a named condition."""


def run_cli(action: Callable[[], object], *, failure: int = 2) -> int:
    """Run a command-line action: a ConformanceError becomes one `error:` line and `failure`, Ctrl-C 130."""
    try:
        action()
    except ConformanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return failure
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
