"""Fixtures shared by the unit tests of the suite's own code, and the CI rule on skips.

In CI (CI=true, or ``--strict-skips=yes``) a test may skip only when tests/expected_skips.yaml names it
and the reason it gave; any other skip fails the run with one line naming the test and what it was
missing. Locally skips stay allowed, and the ones CI would refuse are listed at the end of the run.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conformance.paths import OVERLAYS
from conformance.static.manifests import load_overlay

EXPECTED_SKIPS = Path(__file__).with_name("expected_skips.yaml")
ENTRY_KEYS = {"test", "reason", "why"}


@pytest.fixture(scope="session")
def dev_bundle():
    """The dev overlay rendered with the pinned kubectl kustomize, once per session."""
    return load_overlay(OVERLAYS / "dev")


# --- skips in CI ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpectedSkip:
    test: str
    reason: re.Pattern[str]
    why: str

    def covers(self, nodeid: str, message: str) -> bool:
        return fnmatch.fnmatchcase(nodeid, self.test) and self.reason.search(message) is not None


def load_expected_skips(path: Path = EXPECTED_SKIPS) -> list[ExpectedSkip]:
    """The list of skips CI allows; a malformed entry is a usage error naming the file and the entry."""
    try:
        entries = (yaml.safe_load(path.read_text()) or {}).get("skips") or []
    except (OSError, yaml.YAMLError) as exc:
        raise pytest.UsageError(f"{path}: {str(exc).splitlines()[0]}") from None
    found = []
    for index, entry in enumerate(entries):
        where = f"{path.name} entry {index + 1}"
        if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
            raise pytest.UsageError(f"{where}: needs exactly the keys {', '.join(sorted(ENTRY_KEYS))}")
        if not all(isinstance(entry[key], str) and entry[key].strip() for key in ENTRY_KEYS):
            raise pytest.UsageError(f"{where}: test, reason and why must be non-empty strings")
        try:
            reason = re.compile(entry["reason"])
        except re.error as exc:
            raise pytest.UsageError(f"{where}: reason is not a regular expression: {exc}") from None
        found.append(ExpectedSkip(entry["test"], reason, " ".join(entry["why"].split())))
    return found


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """CI=true as GitHub Actions, GitLab and most forges set it (any value but empty, 0, false, no)."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """What a skip said, without pytest's `Skipped: ` prefix."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "").removeprefix("Skipped: ")


def unexpected_skip_line(nodeid: str, message: str) -> str:
    """The one line a refused skip fails with: the test, what it was missing, and where to allow it."""
    message = (message.strip().splitlines() or ["(no reason given)"])[0]
    return (f"unexpected skip in CI: {nodeid}: {message} "
            f"(make it run, or list it with why in tests/{EXPECTED_SKIPS.name})")


@dataclass
class SkipPolicy:
    strict: bool
    expected: list[ExpectedSkip]
    refused: list[str]  # strict: the skips turned into failures
    unlisted: list[str]  # not strict: the skips CI would refuse

    def allows(self, nodeid: str, message: str) -> bool:
        return any(entry.covers(nodeid, message) for entry in self.expected)


POLICY = pytest.StashKey[SkipPolicy]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cortex-conformance unit tests")
    group.addoption("--strict-skips", choices=["auto", "yes", "no"], default="auto",
                    help=f"fail every skip that tests/{EXPECTED_SKIPS.name} does not list "
                         "(auto: yes when the CI environment variable is set, as on every forge)")


def pytest_configure(config: pytest.Config) -> None:
    choice = config.getoption("strict_skips", "auto")
    strict = in_ci() if choice == "auto" else choice == "yes"
    config.stash[POLICY] = SkipPolicy(strict=strict, expected=load_expected_skips(), refused=[], unlisted=[])


def _judge(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> bool:
    """Record a skip CI does not allow; True when it must fail the run."""
    policy = config.stash.get(POLICY, None)
    if policy is None or not report.skipped or hasattr(report, "wasxfail"):
        return False
    message = skip_message(report)
    if policy.allows(report.nodeid, message):
        return False
    line = unexpected_skip_line(report.nodeid, message)
    (policy.refused if policy.strict else policy.unlisted).append(line)
    return policy.strict


@dataclass(frozen=True)
class _Crash:
    """What pytest's short summary and its JUnit writer read from a failure: `reprcrash.message`."""

    path: str
    lineno: int | None
    message: str


class RefusedSkip:
    """A skip CI does not allow, as a failure's longrepr: one line everywhere pytest prints it."""

    def __init__(self, line: str, path: str) -> None:
        self.line = line
        self.reprcrash = _Crash(path, None, line)

    def toterminal(self, tw) -> None:
        tw.line(self.line, red=True)

    def __str__(self) -> str:
        return self.line


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if _judge(item.config, report):
        report.outcome = "failed"
        report.longrepr = RefusedSkip(unexpected_skip_line(report.nodeid, skip_message(report)), str(item.path))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    # A whole module skipped at import (pytest.skip(allow_module_level=True), importorskip) has no
    # items to fail, so sessionfinish fails the run instead.
    report = yield
    _judge(collector.config, report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    policy = session.config.stash.get(POLICY, None)
    if policy and policy.refused and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    policy = config.stash.get(POLICY, None)
    if policy is None:
        return
    if policy.refused:
        terminalreporter.section("skips CI does not allow", red=True)
        for line in policy.refused:
            terminalreporter.write_line(line)
    elif policy.unlisted:
        terminalreporter.section("skips CI would refuse (CI=true fails on them)", yellow=True)
        for line in policy.unlisted:
            terminalreporter.write_line(line.removeprefix("unexpected skip in CI: "))
