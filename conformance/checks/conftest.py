"""The live environment as one session-scoped fixture: up before the first live check, down after
the last one (in a finally, so Ctrl-C and crashes clean up too, unless --keep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cluster.environment import Environment, Options
from conformance.errors import ConformanceError


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest, run_state):
    config = request.config
    writer = config.get_terminal_writer()
    options = Options(target=config.getoption("target"), context=config.getoption("context"),
                      keep=config.getoption("keep"), images=config.getoption("images"),
                      nodes=config.getoption("nodes"), report_dir=Path(config.getoption("report_dir")))
    env = Environment(options, progress=lambda message: writer.line(message))
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
