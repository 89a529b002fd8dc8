"""Errors the user sees as one line, never as a traceback."""


class ConformanceError(Exception):
    """A problem with the input or the environment, reported as a single line."""


class InputError(ConformanceError):
    """The manifests cannot be read: invalid YAML, a failed kustomize build, a missing file."""


class PreflightError(ConformanceError):
    """Something the run needs is missing: a tool, Docker, a cluster, a context."""


class WaitTimeout(ConformanceError):
    """A deadline passed while waiting for a named condition."""
