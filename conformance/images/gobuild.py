"""Go builds from the module proxy: ``go install`` where upstream allows it, a wrapper module where not.

Every build shares the user's Go build cache and module cache, so a package compiled for one
stage (client-go, grpc, x/net) is never compiled again for another, and uses ``-trimpath`` so
that cache entries do not depend on where a wrapper module happens to live.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ConformanceError
from conformance.images import gomod

STRIP = ("-s", "-w")
_MAJOR = re.compile(r"v[2-9][0-9]*")


class GoBuildError(ConformanceError):
    """A go command failed; the message is one line and names the log with the full output."""


def binary_name(package: str) -> str:
    """The file name go gives a main package: its last element, skipping a /vN major suffix."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and _MAJOR.fullmatch(parts[-1]):
        return parts[-2]
    return parts[-1]


def go_binary() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if found is None:
        raise GoBuildError("go not found on PATH (expected /usr/local/go/bin/go)")
    return found


def go_env(*, cgo: bool = False, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "1" if cgo else "0"
    # The machine's Go is the toolchain; a go directive must never trigger a toolchain download
    # unless the caller asks for one in ``extra`` (GOTOOLCHAIN=go1.27.x is served by the proxy).
    env.setdefault("GOTOOLCHAIN", "local")
    env["GOFLAGS"] = " ".join(flag for flag in (env.get("GOFLAGS", ""), "-trimpath") if flag)
    if extra:
        env.update(extra)
    return env


def ldflags(*, strip: bool = True, x: Mapping[str, str] | None = None, extra: Sequence[str] = ()) -> str:
    """``-s -w`` plus ``-X pkg.var=value`` settings, as one -ldflags argument."""
    parts = list(STRIP if strip else ())
    parts += [f"-X {name}={value}" for name, value in (x or {}).items()]
    parts += list(extra)
    return " ".join(parts)


def _run(argv: list[str], *, cwd: Path | None, env: Mapping[str, str], log: Path, what: str) -> str:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}  (in {cwd or os.getcwd()})\n")
        handle.flush()
        result = subprocess.run(argv, cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=handle, text=True,
                                check=False)
        handle.write(result.stdout)
    if result.returncode != 0:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-1:]
        raise GoBuildError(f"{what} failed (exit {result.returncode}): {tail[0] if tail else ''} [log: {log}]")
    return result.stdout


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    dir: Path
    gomod: Path


def download(path: str, version: str, *, log: Path) -> Module:
    """Fetch ``path@version`` into the module cache and say where its files and go.mod are."""
    out = _run([go_binary(), "mod", "download", "-json", f"{path}@{version}"], cwd=None, env=go_env(),
               log=log, what=f"go mod download {path}@{version}")
    info = json.loads(out)
    if info.get("Error"):
        raise GoBuildError(f"go mod download {path}@{version}: {info['Error'].splitlines()[0]}")
    return Module(path=path, version=info["Version"], dir=Path(info["Dir"]), gomod=Path(info["GoMod"]))


def install(
    packages: Iterable[str],
    version: str,
    out_dir: Path,
    *,
    log: Path,
    ld: str = ldflags(),
    cgo: bool = False,
    tags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[Path]:
    """``go install pkg@version`` for modules without replace directives; binaries land in out_dir."""
    pkgs = list(packages)
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [go_binary(), "install", "-v", f"-ldflags={ld}"]
    if tags:
        argv.append(f"-tags={','.join(tags)}")
    argv += [f"{pkg}@{version}" for pkg in pkgs]
    try:
        _run(argv, cwd=None, env=go_env(cgo=cgo, extra={**(env or {}), "GOBIN": str(out_dir)}), log=log,
             what=f"go install {', '.join(pkgs)}@{version}")
    except GoBuildError:
        # go install asks the proxy for the module's version list to report deprecation; the
        # filtered proxy here refuses some lists (403) while serving the version itself. A
        # wrapper module requires the exact version and never asks for the list.
        if "loading deprecation" not in log.read_text():
            raise
        module = _module_of(pkgs[0], version, log=log)
        return wrapper_build(module, version, pkgs, out_dir, workdir=out_dir.parent / "wrapper", log=log,
                             ld=ld, cgo=cgo, tags=tags, env=env)
    return [out_dir / binary_name(pkg) for pkg in pkgs]


def _module_of(package: str, version: str, *, log: Path) -> str:
    """The module that holds ``package`` at ``version``: the longest prefix the proxy serves."""
    parts = package.split("/")
    for end in range(len(parts), 1, -1):
        candidate = "/".join(parts[:end])
        try:
            download(candidate, version, log=log)
        except GoBuildError:
            continue
        return candidate
    raise GoBuildError(f"no module at {version} holds {package}")


def wrapper_build(
    upstream: str,
    version: str,
    packages: Iterable[str],
    out_dir: Path,
    *,
    workdir: Path,
    log: Path,
    local_version: gomod.VersionFor | None = None,
    extra_requires: Iterable[tuple[str, str]] = (),
    replaces: Iterable[tuple[str, str]] = (),
    ld: str = ldflags(),
    cgo: bool = False,
    tags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[Path]:
    """Build ``packages`` of ``upstream@version`` in a generated wrapper module (see gomod.wrapper).

    ``workdir`` holds the wrapper's go.mod and go.sum; keep it beside the binaries so that the
    exact dependency set of a build stays inspectable in the cache.
    """
    pkgs = list(packages)
    module = download(upstream, version, log=log)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text(
        gomod.wrapper(upstream, module.version, module.gomod.read_text(), local_version=local_version,
                      tools=pkgs, extra_requires=extra_requires, replaces=replaces)
    )
    build_env = go_env(cgo=cgo, extra=env)
    _run([go_binary(), "mod", "tidy"], cwd=workdir, env=build_env, log=log, what=f"go mod tidy for {upstream}")
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [go_binary(), "build", "-v", f"-ldflags={ld}", "-o", f"{out_dir}/"]
    if tags:
        argv.append(f"-tags={','.join(tags)}")
    _run([*argv, *pkgs], cwd=workdir, env=build_env, log=log, what=f"go build {', '.join(pkgs)}")
    return [out_dir / binary_name(pkg) for pkg in pkgs]
