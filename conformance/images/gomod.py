"""Wrapper go.mod files for upstream modules that cannot be built with a plain ``go install``.

``go install module/cmd@version`` refuses a module whose go.mod has ``replace`` directives, and
Kubernetes, etcd and Istio all have them: they point at directories of their own repository
(``./staging/src/k8s.io/api``, ``../api``) that are published as separate modules. A wrapper
module requires the upstream module and restates each replace so that the build sees the same
code: a local directory becomes the published module at the version the tag corresponds to, and
a replace that already names a module version is copied as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_LOCAL_PREFIXES = ("./", "../", "/")


@dataclass(frozen=True)
class Replace:
    old: str
    old_version: str | None
    new: str
    new_version: str | None

    @property
    def is_local(self) -> bool:
        return self.new_version is None and self.new.startswith(_LOCAL_PREFIXES)


@dataclass(frozen=True)
class GoMod:
    module: str
    go: str | None
    godebug: tuple[str, ...]
    replaces: tuple[Replace, ...]


def _strip_comment(line: str) -> str:
    return line.split("//", 1)[0].strip()


def _directives(text: str) -> Iterable[tuple[str, str]]:
    """Yield (verb, rest) for every directive, unfolding ``verb ( ... )`` blocks."""
    block: str | None = None
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                yield block, line
            continue
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest == "(":
            block = verb
        else:
            yield verb, rest


def _parse_replace(spec: str) -> Replace:
    left, arrow, right = spec.partition("=>")
    if not arrow:
        raise ValueError(f"replace directive without '=>': {spec!r}")
    old = left.split()
    new = right.split()
    if not 1 <= len(old) <= 2 or not 1 <= len(new) <= 2:
        raise ValueError(f"malformed replace directive: {spec!r}")
    return Replace(
        old=old[0],
        old_version=old[1] if len(old) == 2 else None,
        new=new[0],
        new_version=new[1] if len(new) == 2 else None,
    )


def parse(text: str) -> GoMod:
    """Parse the parts of a go.mod that a wrapper needs: module, go version, godebug, replaces."""
    module = None
    go = None
    godebug: list[str] = []
    replaces: list[Replace] = []
    for verb, rest in _directives(text):
        if verb == "module":
            module = rest.strip('"')
        elif verb == "go":
            go = rest
        elif verb == "godebug":
            godebug.append(rest)
        elif verb == "replace":
            replaces.append(_parse_replace(rest))
    if module is None:
        raise ValueError("go.mod has no module directive")
    return GoMod(module=module, go=go, godebug=tuple(godebug), replaces=tuple(replaces))


# Maps a module that upstream replaces with a local directory to its published version, or to
# None when the replace only guards against a dependency (etcd's ./FORBIDDEN_DEPENDENCY): such a
# replace has no published counterpart and is left out.
VersionFor = Callable[[str], str | None]


def same_version(version: str) -> VersionFor:
    """Local modules released in lockstep with the upstream tag (etcd: every module is v3.6.x)."""
    return lambda _module: version


def etcd_version(version: str) -> VersionFor:
    """etcd's modules share one tag; ./FORBIDDEN_DEPENDENCY replaces are guards, not modules."""
    return lambda module: None if module in {"go.etcd.io/etcd", "go.etcd.io/tests/v3"} else version


def kubernetes_staging_version(version: str) -> VersionFor:
    """Kubernetes publishes staging module ``k8s.io/api`` at v0.Y.Z for tag v1.Y.Z."""
    match = re.fullmatch(r"v1\.(\d+\.\d+.*)", version)
    if not match:
        raise ValueError(f"not a Kubernetes v1.Y.Z tag: {version}")
    staged = f"v0.{match.group(1)}"
    return lambda _module: staged


def wrapper(
    upstream: str,
    version: str,
    upstream_gomod: str,
    *,
    local_version: VersionFor | None = None,
    tools: Iterable[str] = (),
    module: str | None = None,
    extra_requires: Iterable[tuple[str, str]] = (),
    replaces: Iterable[tuple[str, str]] = (),
) -> str:
    """Return the text of a wrapper go.mod that builds ``tools`` from ``upstream@version``.

    ``local_version`` maps a module that upstream replaces with a local directory to the version
    published for this tag; without it such a replace is an error, since guessing would build
    different code than the tag. ``tools`` become ``tool`` directives so that ``go mod tidy``
    resolves exactly what those commands import. ``replaces`` (module, version) pins a dependency
    that upstream requires at a version the module proxy does not serve (Istio's pseudo-versions).
    """
    parsed = parse(upstream_gomod)
    if parsed.module != upstream:
        raise ValueError(f"go.mod declares module {parsed.module}, expected {upstream}")
    lines = [f"module {module or 'wrapper.local/' + upstream.replace('/', '-')}", ""]
    if parsed.go:
        lines += [f"go {parsed.go}", ""]
    # A module's godebug settings apply only when it is the main module, so restate them.
    lines += [f"godebug {setting}" for setting in parsed.godebug]
    if parsed.godebug:
        lines.append("")
    lines += ["require (", f"\t{upstream} {version}"]
    lines += [f"\t{path} {ver}" for path, ver in extra_requires]
    lines += [")", ""]
    replaced = []
    for rep in parsed.replaces:
        old = rep.old if rep.old_version is None else f"{rep.old} {rep.old_version}"
        if rep.is_local:
            if local_version is None:
                raise ValueError(
                    f"{upstream} replaces {rep.old} with local path {rep.new}; "
                    "pass local_version to say which published version matches the tag"
                )
            published = local_version(rep.old)
            if published is not None:
                replaced.append(f"\t{old} => {rep.old} {published}")
        elif rep.new_version is None:
            raise ValueError(f"replace {rep.old} => {rep.new} names neither a version nor a local path")
        else:
            replaced.append(f"\t{old} => {rep.new} {rep.new_version}")
    replaced += [f"\t{path} => {path} {ver}" for path, ver in replaces]
    if replaced:
        lines += ["replace (", *replaced, ")", ""]
    tool_list = list(tools)
    if tool_list:
        lines += ["tool (", *(f"\t{tool}" for tool in tool_list), ")", ""]
    return "\n".join(lines)
