"""The nightly workflow's matrix and its summary table, from the data the suite already keeps.

    python .github/workflows/nightly.py matrix [--versions fixtures/versions.yaml]
        `include=<JSON cells>` and `default=<JSON cell of the default pair>` lines for $GITHUB_OUTPUT
    python .github/workflows/nightly.py summary --cells JSON --reports DIR
        a Markdown table of the cells, one row each, from DIR/<cell's artifact>/report.json

The supported Kubernetes minors and Istio releases are listed once, in fixtures/versions.yaml;
adding or dropping one there is the only edit the nightly matrix needs. Standard library only,
except PyYAML for `matrix`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACT_PREFIX = "conformance-report-"
# A pinned pair that Istio's support table does not list: it runs, and says so wherever it is named.
AHEAD = "ahead of support"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(version).split("."))


def supported_pairs(pins: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every pinned Kubernetes minor times every pinned Istio release, as matrix cells.

    Reads fixtures/versions.yaml of this shape (other keys are ignored):
        kubernetes: {default: MINOR, minors: {MINOR: {kind: KIND_VERSION, ...}, ...}}
        istio:      {default: RELEASE, releases: {RELEASE: {kubernetes: [MINOR, ...], ...}, ...}}
    A cell is {kubernetes, istio, kind, artifact, support, label}: kind is the kind release that makes
    clusters of that minor, artifact the name of the cell's report artifact, support "supported" or
    "ahead of support" (the minor is not among those Istio's support table lists for the release), and
    label what the job's name adds for it, so that such a cell never reads as a supported one.
    """
    minors, releases = pins["kubernetes"]["minors"], pins["istio"]["releases"]
    cells = []
    for minor in sorted(minors, key=_version_key):
        for release in sorted(releases, key=_version_key):
            listed = [str(m) for m in (releases[release] or {}).get("kubernetes") or []]
            support = "supported" if str(minor) in listed else AHEAD
            cells.append({"kubernetes": str(minor), "istio": str(release), "kind": str(minors[minor]["kind"]),
                          "artifact": f"{ARTIFACT_PREFIX}k8s{minor}-istio{release}", "support": support,
                          "label": "" if support == "supported" else f", {AHEAD}"})
    return cells


def default_pair(pins: Mapping[str, Any]) -> dict[str, str]:
    """The cell of the default minor and release: what the fault catalogue and a release run on."""
    wanted = (str(pins["kubernetes"]["default"]), str(pins["istio"]["default"]))
    return next(c for c in supported_pairs(pins) if (c["kubernetes"], c["istio"]) == wanted)


def summary_table(cells: list[dict[str, str]], reports: Path) -> str:
    """One row per cell: its verdict as the report's headline says it, and the controls that failed."""
    lines = ["## Nightly conformance", "",
             "| Kubernetes | Istio | Verdict | Failed or errored controls | Report artifact |",
             "|---|---|---|---|---|"]
    for cell in cells:
        report = reports / cell["artifact"] / "report.json"
        try:
            doc = json.loads(report.read_text())
            verdict = f"**{doc['headline']}**"
            failing = sorted(c["id"] for c in doc["controls"] if c["status"] in ("failed", "error"))
            failed = ", ".join(failing) or "none"
        except (OSError, ValueError, KeyError, TypeError):
            verdict, failed = "**no report**: the cell ended before writing one (see its job log)", "-"
        ahead = f" ({AHEAD})" if cell.get("support", "supported") != "supported" else ""
        lines.append(f"| {cell['kubernetes']}{ahead} | {cell['istio']} | {verdict} | {failed} | `{cell['artifact']}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nightly.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    matrix = commands.add_parser("matrix", help="the matrix cells and the defaults' cell, for $GITHUB_OUTPUT")
    matrix.add_argument("--versions", type=Path, default=REPO / "fixtures" / "versions.yaml")
    summary = commands.add_parser("summary", help="the cells' verdicts as a Markdown table")
    summary.add_argument("--cells", required=True, help="the JSON list the matrix command printed")
    summary.add_argument("--reports", type=Path, required=True, help="one directory per downloaded artifact")
    args = parser.parse_args(argv)
    if args.command == "matrix":
        import yaml

        pins = yaml.safe_load(args.versions.read_text())
        print(f"include={json.dumps(supported_pairs(pins), separators=(',', ':'))}")
        print(f"default={json.dumps(default_pair(pins), separators=(',', ':'))}")
    else:
        print(summary_table(json.loads(args.cells), args.reports), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
