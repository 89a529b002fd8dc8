"""``python -m conformance.report``: build the sign-off report from a results directory.

The exit code is the verdict, so that CI can gate on the report itself rather than on pytest's
exit code, which knows nothing of matrices, unprobed cells or the fault catalogue.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError
from conformance.report import outcomes, write_report

# The suite's own default, so that `nox -s static` then `nox -s report` meet in one place
# whatever the working directory.
DEFAULT_REPORT_DIR = Path(__file__).resolve().parents[2] / "build" / "reports"

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_SHORT = 0, 1, 2, 3, 4
EXIT_CODES = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "incomplete": EXIT_INCOMPLETE}

EPILOG = """\
verdict levels: "PASS (static tier only)" rests on the static tier; "PASS (live, not
fault-proven)" adds the live checks on one cluster; "SIGN-OFF PASS" adds the whole fault
catalogue, every fault killed for its stated reason and undone, on the same clean commit and
the same rendered manifests. Nothing short of a sign-off prints a bare PASS.

exit codes:
  0  PASS at the level required (--require; by default the level the evidence set out to reach:
     signoff when faults.json is present, live when a live check ran, else static)
  1  FAIL: a control failed or errored, a matrix has a mismatch, or the fault catalogue
     (faults.json) shows the live tier could not prove it can fail
  2  bad input: no such report directory, no results-*.json, a file that is not valid JSON or
     not the expected schema, results of different commits or manifests, or the report could
     not be written; one `error:` line on stderr
  3  INCOMPLETE: nothing failed, but a control in scope was skipped or not run, or a matrix
     cell was not probed; 0 instead with --accept-incomplete
  4  PASS, but short of the level required (say, a partial fault catalogue for a sign-off);
     the report says why
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.report",
        description="Write report.html, report.md and report.json from the results-*.json (and "
                    "faults.json, if present) in a report directory.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR,
                        help="where the suite wrote its results, and where the report goes "
                             "(default: build/reports)")
    parser.add_argument("--compare", type=Path, metavar="OLD.json",
                        help="an earlier report.json: list newly failing, fixed, added and removed controls, "
                             "and inputs added, removed or rendered differently")
    parser.add_argument("--html-link", default="report.html", metavar="URL",
                        help="where the Markdown summary says the HTML report is, for example the CI "
                             "run's artifact page (default: report.html)")
    parser.add_argument("--require", choices=outcomes.LEVELS, default=None,
                        help="the verdict level a PASS must reach to exit 0 (default: the level the evidence "
                             "set out to reach)")
    parser.add_argument("--accept-incomplete", action="store_true",
                        help="exit 0 on an INCOMPLETE verdict (the report still says INCOMPLETE)")
    return parser


def _summary_line(doc: dict[str, Any], report_dir: Path) -> str:
    counts = doc["summary"]["by_status"]
    faults = doc.get("faults")
    partial = f" (a partial catalogue: {len(faults['not_run'])} not run)" if faults and faults.get("not_run") else ""
    killed = f", {faults['killed']}/{faults['total']} faults killed{partial}" if faults else ""
    return (f"report: {doc['headline']}: {counts['failed']} failed, {counts['error']} error, "
            f"{counts['skipped']} skipped, {counts[outcomes.NOT_RUN]} not run, {counts['passed']} passed"
            f"{killed} -> {report_dir / 'report.html'}")


def required_level(doc: dict[str, Any]) -> str:
    """The level the evidence set out to reach: a catalogue was run for a sign-off, a live run for live."""
    if doc.get("faults") is not None:
        return "signoff"
    return "live" if "live" in doc["scope"] else "static"


def exit_code(verdict: str, *, accept_incomplete: bool = False, level: str = "signoff",
              required: str = "static") -> int:
    """The process exit code for a verdict at `level`, when `required` was asked for."""
    if verdict == "incomplete" and accept_incomplete:
        return EXIT_PASS
    if verdict == "pass" and outcomes.LEVELS.index(level) < outcomes.LEVELS.index(required):
        return EXIT_SHORT
    return EXIT_CODES[verdict]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        doc = write_report(args.report_dir, compare_with=args.compare, html_link=args.html_link)
    except ConformanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: cannot write the report to {args.report_dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(_summary_line(doc, args.report_dir))
    required = args.require or required_level(doc)
    code = exit_code(doc["verdict"], accept_incomplete=args.accept_incomplete, level=doc["level"], required=required)
    if code == EXIT_SHORT:
        print(f"report: a PASS short of {required}: " + "; ".join(doc["short_of_signoff"]), file=sys.stderr)
    return code
