"""Evidence belongs to one commit and one rendering of the manifests: the report refuses to mix.

A directory can hold results of several runs (a static run, a conformance run, the fault catalogue).
They make one verdict only when they tested the same code on the same manifests: results from two
commits, or two renderings of one input, or a catalogue made on another commit or other manifests
than the checks, are refused with one line (the report's exit 2), never merged with a warning.
"""

from __future__ import annotations

from typing import Any

from conformance.errors import InputError
from conformance.report.results import Run


def _short(commit: str | None) -> str:
    return (commit or "unknown")[:12]


def check_one_run(runs: list[Run], faults: dict[str, Any] | None) -> None:
    """Refuse evidence of different commits or manifest digests, naming what differs and what to do."""
    commits = {run.path.name: run.data["git"].get("commit") for run in runs}
    if faults is not None:
        commits["faults.json"] = (faults.get("git") or {}).get("commit")
    if len({c for c in commits.values() if c}) > 1:
        raise InputError("results of different commits cannot make one verdict: "
                         + ", ".join(f"{name} at {_short(c)}" for name, c in commits.items())
                         + "; run them again on one commit (`nox -s signoff` runs all three)")
    digests: dict[str, dict[str, str]] = {}
    sources = [(run.path.name, run.data["inputs"]) for run in runs]
    if faults is not None:
        sources.append(("faults.json", faults.get("inputs") or []))
    for where, inputs in sources:
        for item in inputs:
            if isinstance(item, dict) and item.get("sha256"):
                digests.setdefault(str(item.get("name", "")), {})[where] = str(item["sha256"])
    for name, seen in digests.items():
        if len(set(seen.values())) > 1:
            raise InputError(f"input {name!r} was rendered differently by different runs ("
                             + ", ".join(f"{where} sha256 {d[:12]}" for where, d in seen.items())
                             + "): the checks did not test the same manifests; run them again together")
    if faults is not None and faults.get("faults") and not faults.get("inputs"):
        raise InputError("faults.json names no manifests digest (made by an older suite): it cannot be paired "
                         "with these results; run `nox -s faults` again")
