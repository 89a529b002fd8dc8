"""The live environment as one session-scoped fixture, up before the first live check and down after
the last one (in a finally, so Ctrl-C and crashes clean up too, unless --keep), and the helpers the
live checks share."""

from __future__ import annotations

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.live import observe
from conformance.live.traffic import Gateway
from conformance.static.manifests import PodTemplate


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest, run_state):
    # Imported here: the static tier's venv has none of the live tier's packages.
    from conformance.live.environment import Environment
    from conformance.live.options import Options

    config = request.config
    writer = config.get_terminal_writer()
    options = Options.from_pytest(config)
    capture = config.pluginmanager.getplugin("capturemanager")

    def progress(message: str) -> None:
        # Bringing a cluster up takes minutes; say what is happening, past pytest's capture.
        with capture.global_and_fixture_disabled():
            writer.line(message)

    env = Environment(options, progress=progress)
    try:
        try:
            env.up()
        except ConformanceError as exc:
            pytest.exit(f"error: {exc}", returncode=3)
        finally:
            run_state.environment = env.describe()
            for name, seconds in env.phases.items():
                run_state.add_phase(name, seconds)
        yield env
    finally:
        try:
            env.down()
        except ConformanceError as exc:
            writer.line(f"error while cleaning up: {exc}", red=True)


@pytest.fixture(scope="session")
def gateway(live) -> Gateway:
    spec = fixtures.workload().gateway
    return Gateway(spec.host, spec.host_ports["http"], spec.host_ports["https"], live.workload.overlay.tls.ca_pem)


@pytest.fixture
def admitted(live) -> list[PodTemplate]:
    """The cortex-api pods as admitted, as pod templates the static rules understand."""
    pods = observe.api_pods(live.kube)
    if not pods:
        pytest.fail(f"no cortex-api pod in {observe.DEV_NAMESPACE}", pytrace=False)
    return [observe.as_template(p) for p in pods]
