"""The live environment as one session-scoped fixture, up before the first live check and down after
the last one (in a finally, so Ctrl-C and crashes clean up too, unless --keep), and the helpers the
live checks share.

The fault catalogue (conformance.live.faults) runs these same checks against an environment it
holds itself: it registers a plugin named `cortex-attached-environment`, and `live` then yields
that environment instead of bringing one up or down.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.live.evidence import observe
from conformance.live.evidence.traffic import Gateway
from conformance.plugin.together import HEAD_START
from conformance.static.manifests import PodTemplate

ATTACHED = "cortex-attached-environment"


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest, run_state):
    config = request.config
    attached = config.pluginmanager.get_plugin(ATTACHED)
    if attached is not None:
        run_state.environment = attached.environment.describe()
        with _head_start(request.session, attached.environment):
            yield attached.environment
        return
    # Imported here: the static tier's venv has none of the live tier's packages.
    from conformance.live.environment import Environment
    from conformance.live.options import Options
    from conformance.progress import Progress, install

    writer = config.get_terminal_writer()
    # Bringing a cluster up takes minutes; say what is happening, past pytest's capture.
    env = Environment(Options.from_pytest(config), progress=install(Progress(stream=_PastCapture(config))))
    try:
        try:
            env.up()
        except ConformanceError as exc:
            pytest.exit(f"error: {exc}", returncode=3)
        finally:
            run_state.environment = env.describe()
            for name, seconds in env.phases.items():
                run_state.add_phase(name, seconds)
            run_state.environment_seconds = sum(env.phases.values())
        with _head_start(request.session, env):
            yield env
    finally:
        try:
            env.down()
        except ConformanceError as exc:
            writer.line(f"error while cleaning up: {exc}", red=True)


@contextlib.contextmanager
def _head_start(session: pytest.Session, env):
    """Begin the look-only observations of the selected families that register one (HEAD_START) while
    the checks before them run; wait for them all before the environment goes."""
    from conformance.plugin.state import control_of

    families = {(control_of(item) or "").split("-")[0] for item in session.items}
    HEAD_START.begin(families, env, _gateway(env))
    try:
        yield
    finally:
        HEAD_START.end()


class _PastCapture:
    """A stream for the progress display that writes past pytest's output capture."""

    def __init__(self, config: pytest.Config) -> None:
        self.writer = config.get_terminal_writer()
        self.capture = config.pluginmanager.getplugin("capturemanager")

    def write(self, text: str) -> None:
        with self.capture.global_and_fixture_disabled():
            self.writer.write(text, flush=True)

    def flush(self) -> None:
        """Every write is flushed already."""

    def isatty(self) -> bool:
        return self.writer.hasmarkup


def _gateway(env) -> Gateway:
    spec = fixtures.workload().gateway
    return Gateway(spec.host, spec.host_ports["http"], spec.host_ports["https"], env.workload.overlay.tls.ca_pem)


@pytest.fixture(scope="session")
def gateway(live) -> Gateway:
    return _gateway(live)


@pytest.fixture
def api_pods(live) -> list[dict[str, Any]]:
    """The cortex-api pods as admitted; a check that needs them fails when there are none."""
    pods = observe.api_pods(live.kube)
    if not pods:
        pytest.fail(f"{fixtures.workload().ref('Deployment')}: no pod exists, so nothing could be checked"
                    + (f" ({live.workload.rollout_error})" if live.workload.rollout_error else ""), pytrace=False)
    return pods


@pytest.fixture
def ready_api_pods(api_pods) -> list[dict[str, Any]]:
    """The Ready cortex-api pods; a check that needs one fails when none is Ready."""
    ready = [p for p in api_pods if observe.is_ready(p)]
    if not ready:
        pytest.fail(f"{fixtures.workload().ref('Deployment')}: none of its {len(api_pods)} pod(s) is Ready, so "
                    "nothing could be probed", pytrace=False)
    return ready


@pytest.fixture
def admitted(api_pods) -> list[PodTemplate]:
    """The cortex-api pods as admitted, as pod templates the static rules understand."""
    return [observe.as_template(p) for p in api_pods]


@pytest.fixture(scope="session")
def experiments(request: pytest.FixtureRequest, live):
    """The disruptive experiments (conformance.live.evidence.experiments) of the controls this run selected, made
    once and together; each disruptive check judges its own record."""
    from conformance.live.evidence import experiments as lab
    from conformance.plugin.state import control_of

    wanted = {control_of(item) for item in request.session.items} & set(lab.EXPERIMENTS)
    HEAD_START.wait()  # no experiment may disturb an observation still running
    return lab.run(live, wanted)
