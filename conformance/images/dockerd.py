"""A private dockerd for the hermetic build path: its own data root, exec root and socket.

It never touches a Docker the user runs. Only this daemon gets the capability-dropping runc
wrapper (conformance/images/runc-capdrop) as its default runtime, because only these VMs need it.

    python -m conformance.images.dockerd start|stop|status|env
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ConformanceError, PreflightError
from conformance.paths import cache_root
from conformance.wait import wait_until

RUNC_WRAPPER_SOURCE = Path(__file__).with_name("runc-capdrop")
RUNTIME_NAME = "runc-capdrop"


@dataclass(frozen=True)
class Daemon:
    run_dir: Path = Path("/run/cortex-conformance")

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def runtime(self) -> Path:
        return self.run_dir / RUNTIME_NAME

    @property
    def data_root(self) -> Path:
        return cache_root() / "docker"

    def env(self) -> dict[str, str]:
        """The environment for docker and kind to talk to this daemon and to nothing else."""
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        return env


DAEMON = Daemon()


def _docker_cli() -> str:
    cli = shutil.which("docker")
    if cli is None:
        raise PreflightError("docker CLI not found on PATH: install docker.io (apt-get install docker.io)")
    return cli


def answers(daemon: Daemon = DAEMON) -> bool:
    """True when the daemon's socket serves the API."""
    if not daemon.socket.exists():
        return False
    result = subprocess.run(
        [_docker_cli(), "version", "--format", "{{.Server.Version}}"],
        env=daemon.env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 0 and bool(result.stdout.strip())


def _data_root(daemon: Daemon) -> str:
    result = subprocess.run([_docker_cli(), "info", "--format", "{{.DockerRootDir}}"], env=daemon.env(),
                            capture_output=True, text=True, timeout=30, check=False)
    return result.stdout.strip()


def serves_this_cache(daemon: Daemon = DAEMON) -> bool:
    """True when the daemon answers and keeps its images in this cache (not one another cache started)."""
    return answers(daemon) and _data_root(daemon) == str(daemon.data_root)


def alive(pid: int) -> bool:
    """Whether process `pid` exists; one owned by another user does."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid(daemon: Daemon) -> int | None:
    try:
        pid = int(daemon.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def _ensure_dockerd() -> str:
    dockerd = shutil.which("dockerd")
    if dockerd:
        return dockerd
    # The project installs what it needs: nothing installed by hand survives a new machine.
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise PreflightError("dockerd not found and cannot install docker.io here (needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "docker.io"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise PreflightError(f"installing docker.io failed ({' '.join(cmd[1:])}): {last}")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise PreflightError("docker.io installed but dockerd is still not on PATH")
    return dockerd


def start(daemon: Daemon = DAEMON, *, timeout: float = 60) -> Daemon:
    """Start the private daemon, or reuse the one already answering on its socket."""
    if answers(daemon):
        serving = _data_root(daemon)
        if serving != str(daemon.data_root):
            # One socket, one daemon: a cache moved by CORTEX_CONFORMANCE_CACHE would otherwise build into,
            # and reuse the images of, the cache the daemon was started for.
            raise PreflightError(f"the private dockerd on {daemon.socket} keeps its images in {serving}, not in "
                                 f"this cache's {daemon.data_root}: stop it first (python -m "
                                 "conformance.images.dockerd stop)")
        return daemon
    if os.geteuid() != 0:
        raise PreflightError("the private dockerd needs root")
    dockerd = _ensure_dockerd()
    real_runc = shutil.which("runc") or "/usr/sbin/runc"
    if not Path(real_runc).exists():
        raise PreflightError("runc not found: install runc (apt-get install runc)")
    stale = _pid(daemon)
    if stale is not None:
        raise PreflightError(f"dockerd pid {stale} owns {daemon.pidfile} but its socket does not answer")
    daemon.run_dir.mkdir(parents=True, exist_ok=True)
    daemon.data_root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RUNC_WRAPPER_SOURCE, daemon.runtime)
    daemon.runtime.chmod(0o755)
    if daemon.socket.exists():
        daemon.socket.unlink()
    argv = [
        dockerd,
        f"--host={daemon.host}",
        f"--data-root={daemon.data_root}",
        f"--exec-root={daemon.exec_root}",
        f"--pidfile={daemon.pidfile}",
        f"--add-runtime={RUNTIME_NAME}={daemon.runtime}",
        f"--default-runtime={RUNTIME_NAME}",
        "--storage-driver=overlay2",
    ]
    log = daemon.log.open("ab")
    env = dict(os.environ, CORTEX_REAL_RUNC=real_runc)
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
    )
    log.close()

    def died() -> str | None:
        code = proc.poll()
        return None if code is None else f"dockerd exited with {code}; see {daemon.log}"

    wait_until(f"dockerd socket {daemon.socket} to answer", lambda: answers(daemon), timeout=timeout,
               interval=0.5, fail=died)
    return daemon


def stop(daemon: Daemon = DAEMON, *, timeout: float = 60) -> bool:
    """Stop the private daemon if it runs; True when one was stopped."""
    pid = _pid(daemon)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    wait_until(f"dockerd pid {pid} to exit", lambda: _pid(daemon) is None, timeout=timeout, interval=0.5)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.images.dockerd", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "env"])
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            start()
            print(f"dockerd answers on {DAEMON.host} (data root {DAEMON.data_root})")
        elif args.action == "stop":
            print("dockerd stopped" if stop() else "dockerd was not running")
        elif args.action == "status":
            running = answers()
            print(f"dockerd {'answers' if running else 'is not running'} on {DAEMON.host}")
            return 0 if running else 1
        else:
            print(f"export DOCKER_HOST={DAEMON.host}")
    except ConformanceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
