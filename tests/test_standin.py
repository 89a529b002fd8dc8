"""The stand-in workload (standin), built with the real Go toolchain and run on loopback.

Each container of base/deployment.yaml is started from the same binary with the environment the
Deployment gives it, its ports moved to free loopback ports, and its own probes are then run
against it exactly as the kubelet would: same paths, same named ports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conformance.wait import wait_until
from tests.processes import free_port, stop

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENT = REPO / "base" / "deployment.yaml"
STANDIN_UID = 10001


@pytest.fixture(scope="session")
def standin_binary() -> Path:
    """The static stand-in binary from the hermetic build's standin-binary stage (cached by source hash)."""
    from conformance.images import gobuild, stage

    try:
        gobuild.go_binary()
    except gobuild.GoBuildError:
        pytest.skip("Go toolchain not found (go on PATH or /usr/local/go/bin/go)")
    entry = stage.run(["standin-binary"])["standin-binary"].entry
    return entry.path / entry.result["files"]["standin"]




def _containers() -> dict[str, dict]:
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


CONTAINERS = _containers()


@dataclass
class PodPorts:
    """One loopback port per container port of the pod, shared by all its stand-ins, as in a pod."""

    ports: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for container in CONTAINERS.values():
            for port in container.get("ports", []):
                self.ports[port["containerPort"]] = free_port()

    def rewrite(self, value: str) -> str:
        """Move every ADDR:PORT of the pod in an env value to loopback and its free port."""
        for original, local in self.ports.items():
            for host in ("0.0.0.0", "127.0.0.1"):  # noqa: S104 (matching the Deployment's values)
                value = value.replace(f"{host}:{original}", f"127.0.0.1:{local}")
        return value

    def local(self, container: str, port: str | int) -> int:
        named = {p["name"]: p["containerPort"] for p in CONTAINERS[container].get("ports", [])}
        return self.ports[named[port] if isinstance(port, str) else port]


@dataclass
class Standin:
    process: subprocess.Popen
    socket: Path
    binary: Path
    env: dict[str, str]
    log: Path

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return run_cmd(self.binary, "ctl", *args, env=self.env)


def run_cmd(binary: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)


@contextlib.contextmanager
def running(binary: Path, role: str, workdir: Path, env: dict[str, str] | None = None,
            args: tuple[str, ...] = (), wrapper: tuple[str, ...] = ()) -> Iterator[Standin]:
    """Start `standin serve --role=ROLE`, wait until its control socket answers, stop it afterwards."""
    sock = workdir / f"{role}.sock"
    full_env = {"PATH": os.environ.get("PATH", ""), "HOSTNAME": f"{role}-pod", **(env or {}),
                "STANDIN_CTL_SOCKET": str(sock)}
    log = workdir / f"{role}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*wrapper, str(binary), "serve", f"--role={role}", *args],
                                env=full_env, stdout=out, stderr=subprocess.STDOUT)
    standin = Standin(proc, sock, binary, full_env, log)
    try:
        wait_until(f"stand-in {role} to answer on its control socket",
                   lambda: sock.exists() and standin.ctl("status").returncode == 0,
                   timeout=10, interval=0.05,
                   fail=lambda: proc.poll() is not None and f"exited {proc.returncode}: {log.read_text()}")
        yield standin
    finally:
        stop(proc)


def container_env(container: str, ports: PodPorts) -> dict[str, str]:
    """The env the Deployment sets on a container, with its addresses moved to loopback ports."""
    env = {e["name"]: ports.rewrite(e["value"]) for e in CONTAINERS[container].get("env", []) if "value" in e}
    if container == "chrome-devtools-protocol-server":
        # The real port comes from chrome's --remote-debugging-port, which the stand-in ignores.
        env["CDP_LISTEN_ADDR"] = f"127.0.0.1:{ports.local(container, 'http-cdp')}"
    return env


def http_get(url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None,
             timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def tcp_connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def kubelet_probe(probe: dict, container: str, ports: PodPorts) -> bool:
    """Run one probe of the Deployment as the kubelet does: httpGet status 200-399, or a TCP connect."""
    if "httpGet" in probe:
        port = ports.local(container, probe["httpGet"]["port"])
        status, _, _ = http_get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}")
        return 200 <= status < 400
    if "tcpSocket" in probe:
        return tcp_connects(ports.local(container, probe["tcpSocket"]["port"]))
    raise AssertionError(f"container {container} has a probe kind the test does not know: {probe}")


@pytest.fixture
def pod_ports() -> PodPorts:
    return PodPorts()


@pytest.fixture
def api(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> Iterator[Standin]:
    with running(standin_binary, "cortex-api", tmp_path, container_env("cortex-api", pod_ports)) as s:
        yield s


def api_url(pod_ports: PodPorts, path: str) -> str:
    return f"http://127.0.0.1:{pod_ports.local('cortex-api', 'http')}{path}"


# --- build ------------------------------------------------------------------------------------


def test_binary_is_static(standin_binary: Path) -> None:
    """The binary has no ELF interpreter, so it runs in an image with nothing else in it."""
    data = standin_binary.read_bytes()
    assert data[:5] == b"\x7fELF\x02", "expected a 64-bit ELF"
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    headers = (data[phoff + i * phentsize:phoff + i * phentsize + 4] for i in range(phnum))
    kinds = {int.from_bytes(h, "little") for h in headers}
    pt_interp = 3
    assert pt_interp not in kinds, f"{standin_binary} is dynamically linked (has PT_INTERP)"


# --- probes and ports, container by container -------------------------------------------------


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_probes_pass_on_declared_ports(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts,
                                       container: str) -> None:
    """PROBE-01: every probe the Deployment declares for the container passes against its stand-in."""
    spec = CONTAINERS[container]
    with running(standin_binary, container, tmp_path, container_env(container, pod_ports),
                 args=tuple(spec.get("args", []))):
        kinds = ("startupProbe", "readinessProbe", "livenessProbe")
        probes = {kind: spec[kind] for kind in kinds if kind in spec}
        assert probes, f"container {container} declares no probes"
        failing = [kind for kind, probe in probes.items() if not kubelet_probe(probe, container, pod_ports)]
        assert not failing, f"stand-in for {container}: {', '.join(failing)} fail"


def test_cdp_accepts_chrome_arguments(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """The chrome arguments Kubernetes appends to the entrypoint are accepted and ignored."""
    args = tuple(CONTAINERS["chrome-devtools-protocol-server"]["args"])
    env = container_env("chrome-devtools-protocol-server", pod_ports)
    with running(standin_binary, "chrome-devtools-protocol-server", tmp_path, env, args=args) as cdp:
        port = pod_ports.local("chrome-devtools-protocol-server", "http-cdp")
        status, _, body = http_get(f"http://127.0.0.1:{port}/json/version")
        assert status == 200, f"/json/version answered {status}"
        assert "Chrome/" in json.loads(body)["Browser"]
        assert f"ignoring {len(args)} argument(s)" in cdp.log.read_text()


def test_unknown_role_is_a_one_line_usage_error(standin_binary: Path) -> None:
    """A wrong entrypoint fails at once with one line and exit code 64, not a crash loop of stack traces."""
    proc = run_cmd(standin_binary, "serve", "--role=cortex")
    assert proc.returncode == 64
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unknown role" in proc.stderr


# --- cortex-api -----------------------------------------------------------------------------


def test_chat_completion_is_openai_shaped(api: Standin, pod_ports: PodPorts) -> None:
    """POST /v1/chat/completions answers 200 with an OpenAI chat.completion object."""
    request = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello there"}]}
    body = json.dumps(request).encode()
    status, _headers, raw = http_get(api_url(pod_ports, "/v1/chat/completions"), data=body,
                                    headers={"Content-Type": "application/json"})
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "gpt-test"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["choices"][0]["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_completion_rejects_bad_json(api: Standin, pod_ports: PodPorts) -> None:
    """A body that is not a chat request gets an OpenAI-style 400 error, not a 500."""
    status, _, raw = http_get(api_url(pod_ports, "/v1/chat/completions"), data=b"{nope")
    assert status == 400
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"


def test_models_lists_a_model(api: Standin, pod_ports: PodPorts) -> None:
    """GET /v1/models answers an OpenAI model list."""
    status, _, raw = http_get(api_url(pod_ports, "/v1/models"))
    assert status == 200
    answer = json.loads(raw)
    assert answer["object"] == "list"
    assert answer["data"][0]["object"] == "model"


def test_answers_carry_the_forwarded_client_cert(api: Standin, pod_ports: PodPorts) -> None:
    """MTLS-01 evidence: the XFCC header the sidecar adds comes back in the body and a response header."""
    xfcc = ("By=spiffe://cluster.local/ns/cortex-dev/sa/cortex-api;"
            "URI=spiffe://cluster.local/ns/istio-ingress/sa/client")
    status, headers, raw = http_get(api_url(pod_ports, "/v1/models"),
                                    headers={"X-Forwarded-Client-Cert": xfcc})
    assert status == 200
    assert json.loads(raw)["standin"]["forwarded_client_cert"] == xfcc
    assert headers.get("X-Standin-Forwarded-Client-Cert") == xfcc


def test_answers_tell_whether_a_token_arrived_without_echoing_it(api: Standin, pod_ports: PodPorts) -> None:
    """JWT-01 evidence: the answer says a bearer token reached the app, and never repeats the token."""
    token = "header.payload.signature-" + os.urandom(8).hex()
    _, headers, raw = http_get(api_url(pod_ports, "/v1/models"), headers={"Authorization": f"Bearer {token}"})
    assert json.loads(raw)["standin"]["authorization_present"] is True
    assert token not in raw.decode()
    assert token not in json.dumps(headers)
    assert token not in api.log.read_text()


def test_metrics_are_prometheus_text(api: Standin, pod_ports: PodPorts) -> None:
    """/metrics serves the Prometheus text format with the stand-in's own families."""
    status, headers, raw = http_get(api_url(pod_ports, "/metrics"))
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'standin_up{role="cortex-api"} 1' in raw.decode()


# --- redis-proxy and exporter-merger --------------------------------------------------------


def test_redis_proxy_answers_ping(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """redis-proxy answers a RESP PING with +PONG on its redis port."""
    with running(standin_binary, "redis-proxy", tmp_path, container_env("redis-proxy", pod_ports)):
        port = pod_ports.local("redis-proxy", "redis")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert conn.recv(64) == b"+PONG\r\n"
            conn.sendall(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n")
            assert conn.recv(64) == b"$5\r\nhello\r\n"


def test_merger_serves_each_family_once(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """exporter-merger merges MERGER_URLS (cortex-api, redis-proxy and the sidecar's stats) with one TYPE line
    per family; here no sidecar runs, so its source is the one reported down."""
    merger_env = container_env("exporter-merger", pod_ports)
    with contextlib.ExitStack() as stack:
        for role in ("cortex-api", "redis-proxy"):
            stack.enter_context(running(standin_binary, role, tmp_path, container_env(role, pod_ports)))
        stack.enter_context(running(standin_binary, "exporter-merger", tmp_path, merger_env))
        status, _, raw = http_get(f"http://127.0.0.1:{pod_ports.local('exporter-merger', 'metrics')}/metrics")
    text = raw.decode()
    assert status == 200
    for role in ("cortex-api", "redis-proxy", "exporter-merger"):
        assert f'standin_up{{role="{role}"}} 1' in text, f"merged metrics lack {role}"
    assert text.count("# TYPE standin_up gauge") == 1, "a family appears twice in the merged exposition"
    sources = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines()
               if line.startswith("standin_merger_source_up{")}
    assert len(sources) == len(merger_env["MERGER_URLS"].split()), sources
    down = {s for s, v in sources.items() if v != "1"}
    assert down == {s for s in sources if ":15090/" in s}, f"reported down: {sorted(down)}"


def test_merger_reports_a_dead_source(standin_binary: Path, tmp_path: Path) -> None:
    """A source that does not answer becomes standin_merger_source_up 0; the scrape still succeeds."""
    port, dead = free_port(), free_port()
    env = {"MERGER_LISTEN_ADDR": f"127.0.0.1:{port}", "MERGER_URLS": f"http://127.0.0.1:{dead}/metrics"}
    with running(standin_binary, "exporter-merger", tmp_path, env):
        status, _, raw = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert f'standin_merger_source_up{{url="http://127.0.0.1:{dead}/metrics"}} 0' in raw.decode()


# --- control surface ------------------------------------------------------------------------


def test_ctl_readiness_fail_and_recover(api: Standin, pod_ports: PodPorts) -> None:
    """PROBE-03: `ctl readiness fail` fails /readyz only (liveness stays ok) until `ctl readiness ok`."""
    assert api.ctl("readiness", "fail").returncode == 0
    assert http_get(api_url(pod_ports, "/readyz"))[0] == 503
    assert http_get(api_url(pod_ports, "/healthz"))[0] == 200
    assert api.ctl("readiness", "ok").returncode == 0
    assert http_get(api_url(pod_ports, "/readyz"))[0] == 200


def test_ctl_liveness_fail_and_recover(api: Standin, pod_ports: PodPorts) -> None:
    """PROBE-04: `ctl liveness fail` fails /healthz (liveness and startup path) until `ctl liveness ok`."""
    assert api.ctl("liveness", "fail").returncode == 0
    assert http_get(api_url(pod_ports, "/healthz"))[0] == 503
    assert api.ctl("liveness", "ok").returncode == 0
    assert http_get(api_url(pod_ports, "/healthz"))[0] == 200


def test_ctl_liveness_fail_closes_the_cdp_port(standin_binary: Path, tmp_path: Path,
                                               pod_ports: PodPorts) -> None:
    """PROBE-04: the CDP container's liveness is a TCP check, so failing liveness refuses connections."""
    container = "chrome-devtools-protocol-server"
    liveness = CONTAINERS[container]["livenessProbe"]
    with running(standin_binary, container, tmp_path, container_env(container, pod_ports)) as cdp:
        assert kubelet_probe(liveness, container, pod_ports)
        assert cdp.ctl("liveness", "fail").returncode == 0
        assert not kubelet_probe(liveness, container, pod_ports), "TCP liveness passes after `liveness fail`"
        assert cdp.ctl("liveness", "ok").returncode == 0
        assert kubelet_probe(liveness, container, pod_ports), "TCP liveness did not recover"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ctl_burn_uses_cpu_then_stops(api: Standin) -> None:
    """HPA-03: `ctl burn --seconds N` keeps the server busy on every core, and `--seconds 0` stops it."""
    before = _cpu_seconds(api.process.pid)
    started = api.ctl("burn", "--seconds", "30")
    assert started.returncode == 0
    assert json.loads(started.stdout)["burn_workers"] == os.cpu_count(), "not one worker per core"
    time.sleep(1.0)
    burned = _cpu_seconds(api.process.pid) - before
    assert api.ctl("burn", "--seconds", "0").returncode == 0
    time.sleep(0.2)
    idle_start = _cpu_seconds(api.process.pid)
    time.sleep(0.5)
    idle = _cpu_seconds(api.process.pid) - idle_start
    # Other work on the machine shares the cores, so the bound is loose; the worker count shows "every core".
    assert burned >= 0.4, f"burned only {burned:.2f} CPU-s in 1 s"
    assert idle < 0.1, f"still burning {idle:.2f} CPU-s per 0.5 s after `burn --seconds 0`"


def test_ctl_without_a_server_is_one_line_error(standin_binary: Path, tmp_path: Path) -> None:
    """`ctl` in a container without a stand-in server says so in one line and exits 1."""
    proc = run_cmd(standin_binary, "ctl", "readiness", "fail",
                   env={"STANDIN_CTL_SOCKET": str(tmp_path / "absent.sock")})
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no stand-in server" in proc.stderr


def test_restart_replaces_a_stale_socket(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """PROBE-04: a container restarted by liveness finds its old socket in /tmp and still starts."""
    env = container_env("cortex-api", pod_ports)
    with running(standin_binary, "cortex-api", tmp_path, env) as first:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    assert (tmp_path / "cortex-api.sock").exists(), "the killed server should leave its socket behind"
    with running(standin_binary, "cortex-api", tmp_path, env) as second:
        assert second.ctl("status").returncode == 0


def test_sigterm_stops_cleanly(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """SIGTERM, what the kubelet sends first, ends the server with exit 0 within seconds."""
    with running(standin_binary, "cortex-api", tmp_path, container_env("cortex-api", pod_ports)) as s:
        s.process.terminate()
        assert s.process.wait(timeout=10) == 0


# --- probe and digest commands --------------------------------------------------------------


def _probe(binary: Path, *args: str, stdin: str | None = None) -> tuple[int, dict]:
    proc = run_cmd(binary, "probe", *args, stdin=stdin)
    return proc.returncode, json.loads(proc.stdout)


@contextlib.contextmanager
def _saturated_listener() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect times out."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                fillers.append(c)
            time.sleep(0.2)
            yield port
        finally:
            for c in fillers:
                c.close()


def test_probe_tcp_connected(standin_binary: Path, api: Standin, pod_ports: PodPorts) -> None:
    """`probe tcp` reports connected and exits 0 when something listens."""
    code, result = _probe(standin_binary, "tcp", f"127.0.0.1:{pod_ports.local('cortex-api', 'http')}")
    assert (code, result["outcome"]) == (0, "connected")


def test_probe_tcp_refused(standin_binary: Path) -> None:
    """`probe tcp` reports refused and exits 1 when nothing listens."""
    code, result = _probe(standin_binary, "tcp", f"127.0.0.1:{free_port()}")
    assert (code, result["outcome"]) == (1, "refused")


def test_probe_tcp_timeout(standin_binary: Path) -> None:
    """`probe tcp` reports timeout and exits 2 when SYNs are dropped, as a deny policy does."""
    with _saturated_listener() as port:
        start = time.monotonic()
        code, result = _probe(standin_binary, "tcp", f"127.0.0.1:{port}", "--timeout", "700ms")
        elapsed = time.monotonic() - start
    assert (code, result["outcome"]) == (2, "timeout")
    assert elapsed < 3, f"--timeout 700ms took {elapsed:.1f}s"


def test_probe_http_reset(standin_binary: Path) -> None:
    """`probe http` reports reset and exits 3 when the peer resets it, as STRICT mTLS does to plaintext."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def drop_one() -> None:
            conn, _ = server.accept()
            conn.recv(1024)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

        threading.Thread(target=drop_one, daemon=True).start()
        code, result = _probe(standin_binary, "http", f"http://127.0.0.1:{port}/v1/models")
    assert (code, result["outcome"]) == (3, "reset")


def test_probe_http_sends_headers_from_stdin(standin_binary: Path, api: Standin, pod_ports: PodPorts) -> None:
    """`probe http --headers-stdin` sends headers that never appear in argv, and reports status and body."""
    xfcc = "URI=spiffe://cluster.local/ns/monitoring/sa/prometheus"
    code, result = _probe(standin_binary, "http", api_url(pod_ports, "/v1/models"), "--headers-stdin",
                          stdin=f"X-Forwarded-Client-Cert: {xfcc}\nAuthorization: Bearer not-a-secret\n")
    assert (code, result["outcome"], result["status"]) == (0, "connected", 200)
    assert json.loads(result["body"])["standin"]["forwarded_client_cert"] == xfcc
    assert json.loads(result["body"])["standin"]["authorization_present"] is True


def test_probe_http_reports_redirects_without_following(standin_binary: Path, tmp_path: Path) -> None:
    """`probe http` reports a 301 as such, so the gateway's HTTP->HTTPS redirect can be checked."""
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", "https://api.dev.cortex.example.com/v1/models")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, result = _probe(standin_binary, "http", f"http://127.0.0.1:{server.server_port}/v1/models")
    finally:
        server.shutdown()
        server.server_close()
    assert (code, result["status"]) == (0, 301)
    assert result["headers"]["location"].startswith("https://")


def test_probe_dns_resolves(standin_binary: Path) -> None:
    """`probe dns` resolves a name with the pure-Go resolver and lists the addresses."""
    code, result = _probe(standin_binary, "dns", "localhost")
    assert (code, result["outcome"]) == (0, "resolved")
    assert "127.0.0.1" in result["addresses"]


def test_probe_bad_usage_is_one_line(standin_binary: Path) -> None:
    """A malformed probe target fails with one line and exit 64."""
    proc = run_cmd(standin_binary, "probe", "tcp", "no-port-here")
    assert proc.returncode == 64
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_digest_reports_hashes_never_content(standin_binary: Path, tmp_path: Path) -> None:
    """VAULT-02 evidence: `digest` prints sha256 and size per file, an error for a missing one, no content."""
    secret = "dummy-" + os.urandom(16).hex()
    present = tmp_path / "openai-api-key"
    present.write_text(secret)
    proc = run_cmd(standin_binary, "digest", str(present), str(tmp_path / "absent"))
    files = {f["path"]: f for f in json.loads(proc.stdout)["files"]}
    assert proc.returncode == 1, "a missing file must fail the command"
    assert files[str(present)]["sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert files[str(present)]["bytes"] == len(secret)
    assert files[str(tmp_path / "absent")]["error"] == "no such file or directory"
    assert secret not in proc.stdout + proc.stderr


# --- runs as the pod runs it ----------------------------------------------------------------


def test_serves_as_uid_10001_on_a_read_only_root(standin_binary: Path, pod_ports: PodPorts) -> None:
    """SEC-01/SEC-02: as UID 10001 with a read-only root and one writable directory, the server serves."""
    missing = [tool for tool in ("unshare", "setpriv") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root and {', '.join(missing) or 'unshare, setpriv'} to drop to UID 10001 "
                    "in a private read-only mount namespace")
    with tempfile.TemporaryDirectory() as shared:
        shared_dir = Path(shared)
        shared_dir.chmod(0o755)
        binary = shared_dir / "standin"
        shutil.copy2(standin_binary, binary)
        writable = shared_dir / "tmp"  # plays the pod's /tmp emptyDir: the only writable place
        writable.mkdir(mode=0o777)
        writable.chmod(0o777)
        # A private mount namespace, so the read-only remount never reaches the host. The writable
        # directory is bound onto itself first, which makes it a mount of its own that stays rw.
        wrapper = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f'mount --bind "{writable}" "{writable}" && mount -o remount,bind,ro / && '
                   f'if touch /.standin-rw-check 2>/dev/null; then echo "root is writable"; exit 97; fi && '
                   f'exec setpriv --reuid {STANDIN_UID} --regid {STANDIN_UID} --clear-groups "$0" "$@"')
        env = container_env("cortex-api", pod_ports)
        with running(binary, "cortex-api", writable, env, wrapper=wrapper) as s:
            uid_line = next(line for line in Path(f"/proc/{s.process.pid}/status").read_text().splitlines()
                            if line.startswith("Uid:"))
            assert uid_line.split()[1:] == [str(STANDIN_UID)] * 4, uid_line
            assert http_get(api_url(pod_ports, "/healthz"))[0] == 200


# --- W3C trace context and the OTLP span export (TEL) ----------------------------------------


class OTLPReceiver:
    """A tiny OTLP/HTTP receiver on loopback: records every JSON export POSTed to /v1/traces."""

    def __init__(self, *, hang: bool = False) -> None:
        import http.server

        receiver = self
        self.requests: list[dict] = []
        self.content_types: list[str] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if hang:  # a collector that accepts the connection and never answers
                    receiver.release.wait(30)
                    return
                with receiver.lock:
                    receiver.requests.append(json.loads(body))
                    receiver.content_types.append(self.headers.get("Content-Type", ""))
                reply = b"{}" if self.path == "/v1/traces" else b'{"error": "not found"}'
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[dict]:
        """Every exported span, flattened, with its resource's service.name as "service"."""
        out = []
        with self.lock:
            for request in self.requests:
                for rs in request["resourceSpans"]:
                    resource = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                    for ss in rs["scopeSpans"]:
                        for span in ss["spans"]:
                            attrs = {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}
                            out.append({**span, "attributes": attrs,
                                        "service": resource["service.name"]["stringValue"]})
        return out

    def wait_for(self, trace_id: str, timeout: float = 10) -> dict:
        return wait_until(f"the stand-in's span of trace {trace_id} at the OTLP receiver",
                          lambda: next((s for s in self.spans() if s["traceId"] == trace_id), None),
                          timeout=timeout, interval=0.05)


@pytest.fixture
def otlp() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def traced_api(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts, otlp: OTLPReceiver) -> Iterator[Standin]:
    env = {**container_env("cortex-api", pod_ports), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp.url}
    with running(standin_binary, "cortex-api", tmp_path, env) as s:
        yield s


def _traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}", trace_id, span_id


def _chat(pod_ports: PodPorts, headers: dict[str, str] | None = None, body: bytes | None = None,
          timeout: float = 5) -> tuple[int, dict]:
    body = body if body is not None else json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _headers, raw = http_get(api_url(pod_ports, "/v1/chat/completions"), data=body, timeout=timeout,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    return status, json.loads(raw)


def test_traced_request_exports_a_child_span(traced_api: Standin, pod_ports: PodPorts, otlp: OTLPReceiver) -> None:
    """TEL: a sampled traceparent yields a server span in the same trace, child of the caller's span."""
    traceparent, trace_id, parent = _traceparent()
    status, answer = _chat(pod_ports, {"traceparent": traceparent})
    assert status == 200
    assert answer["standin"]["traceparent"] == traceparent, "the answer does not echo the traceparent it got"
    span = otlp.wait_for(trace_id)
    assert span["parentSpanId"] == parent
    assert span["spanId"] not in (parent, "0" * 16)
    assert len(span["spanId"]) == 16
    assert answer["standin"]["trace"] == {"trace_id": trace_id, "span_id": span["spanId"],
                                          "parent_span_id": parent, "sampled": True, "exported": True}
    assert (span["service"], span["name"], span["kind"]) == ("cortex-api", "POST /v1/chat/completions", 2)
    assert span["attributes"]["http.route"] == "/v1/chat/completions"
    assert span["attributes"]["http.response.status_code"] == "200"
    assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
    assert otlp.content_types == ["application/json"]


def test_the_span_names_the_route_and_the_status_it_answered(traced_api: Standin, pod_ports: PodPorts,
                                                             otlp: OTLPReceiver) -> None:
    """A refused request is traced too, with the status the client saw and the route (not the path)."""
    traceparent, trace_id, _ = _traceparent()
    status, _ = _chat(pod_ports, {"traceparent": traceparent}, body=b"{nope")
    assert status == 400
    assert otlp.wait_for(trace_id)["attributes"]["http.response.status_code"] == "400"
    traceparent, trace_id, _ = _traceparent()
    assert http_get(api_url(pod_ports, "/v1/unknown?x=1"), headers={"traceparent": traceparent})[0] == 404
    span = otlp.wait_for(trace_id)
    assert (span["name"], span["attributes"]["http.route"]) == ("GET /v1/", "/v1/")
    assert "x=1" not in json.dumps(span)


def _nothing_but(otlp: OTLPReceiver, pod_ports: PodPorts, unexpected: str) -> None:
    """Send a sampled marker request and wait for it: the exporter is one FIFO queue, so anything
    the earlier requests had handed it would have arrived first."""
    marker, marker_id, _ = _traceparent()
    assert _chat(pod_ports, {"traceparent": marker})[0] == 200
    otlp.wait_for(marker_id)
    time.sleep(0.2)
    traces = {s["traceId"] for s in otlp.spans()}
    assert traces == {marker_id}, f"{unexpected}: exported {traces - {marker_id}}"


def test_unsampled_traceparent_exports_nothing(traced_api: Standin, pod_ports: PodPorts, otlp: OTLPReceiver) -> None:
    """TEL: flags 00 (not sampled) are honoured: no span, though the traceparent is still echoed."""
    traceparent, _, _ = _traceparent(sampled=False)
    status, answer = _chat(pod_ports, {"traceparent": traceparent})
    assert status == 200
    assert answer["standin"]["traceparent"] == traceparent
    assert answer["standin"]["trace"]["sampled"] is False
    assert answer["standin"]["trace"]["exported"] is False
    _nothing_but(otlp, pod_ports, "an unsampled request")


@pytest.mark.parametrize("header", [None, "00-zzzz-not-valid", "00-" + "0" * 32 + "-" + "1" * 16 + "-01",
                                    "ff-" + "a" * 32 + "-" + "b" * 16 + "-01"],
                         ids=["absent", "malformed", "zero-trace-id", "version-ff"])
def test_no_valid_traceparent_starts_no_trace(traced_api: Standin, pod_ports: PodPorts, otlp: OTLPReceiver,
                                              header: str | None) -> None:
    """TEL: without a (valid) traceparent the stand-in starts no trace of its own; the mesh does that."""
    status, answer = _chat(pod_ports, {"traceparent": header} if header else {})
    assert status == 200
    assert answer["standin"]["traceparent"] == (header or "")
    assert "trace" not in answer["standin"]
    _nothing_but(otlp, pod_ports, f"a request with traceparent {header!r}")


def test_drop_switch_starts_a_new_root(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts,
                                       otlp: OTLPReceiver) -> None:
    """TEL fault: STANDIN_DROP_TRACE_CONTEXT=true exports a root span of a new trace, as a service
    that loses the context would; the check that joins sidecar and app spans must catch it."""
    env = {**container_env("cortex-api", pod_ports), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp.url,
           "STANDIN_DROP_TRACE_CONTEXT": "true"}
    with running(standin_binary, "cortex-api", tmp_path, env):
        traceparent, trace_id, _ = _traceparent()
        status, answer = _chat(pod_ports, {"traceparent": traceparent})
        assert status == 200
        view = answer["standin"]["trace"]
        assert view["context_dropped"] is True
        assert view["trace_id"] != trace_id
        span = otlp.wait_for(view["trace_id"])
    assert "parentSpanId" not in span, "the span of a dropped context must be a root"
    assert span["spanId"] == view["span_id"]
    assert trace_id not in {s["traceId"] for s in otlp.spans()}, "the incoming trace got a span after all"


@pytest.mark.parametrize("collector", ["down", "hanging"])
def test_export_failure_never_fails_or_delays_the_request(standin_binary: Path, tmp_path: Path,
                                                          pod_ports: PodPorts, collector: str) -> None:
    """TEL: with the collector down (refused) or hanging, traced requests still answer 200 at once."""
    receiver = OTLPReceiver(hang=True) if collector == "hanging" else None
    endpoint = receiver.url if receiver else f"http://127.0.0.1:{free_port()}/v1/traces"
    env = {**container_env("cortex-api", pod_ports), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint}
    try:
        with running(standin_binary, "cortex-api", tmp_path, env):
            for _ in range(20):
                traceparent, _, _ = _traceparent()
                started = time.monotonic()
                status, answer = _chat(pod_ports, {"traceparent": traceparent}, timeout=3)
                elapsed = time.monotonic() - started
                assert status == 200
                assert answer["standin"]["trace"]["exported"] is True
                assert elapsed < 1.5, f"a traced request took {elapsed:.1f}s with the collector {collector}"
            assert http_get(api_url(pod_ports, "/healthz"))[0] == 200
    finally:
        if receiver:
            receiver.close()


def test_no_endpoint_means_no_export(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """Without OTEL_EXPORTER_OTLP_TRACES_ENDPOINT the context is still read and echoed, nothing is sent."""
    with running(standin_binary, "cortex-api", tmp_path, container_env("cortex-api", pod_ports)):
        traceparent, trace_id, _ = _traceparent()
        status, answer = _chat(pod_ports, {"traceparent": traceparent})
    assert status == 200
    assert answer["standin"]["trace"]["trace_id"] == trace_id
    assert answer["standin"]["trace"]["exported"] is False


def test_probe_redis_connected_only_on_pong(standin_binary: Path, tmp_path: Path, pod_ports: PodPorts) -> None:
    """`probe redis` is connected only when the server answers PING with +PONG (MTLS-04 relies on it)."""
    with running(standin_binary, "redis-proxy", tmp_path, container_env("redis-proxy", pod_ports)):
        code, result = _probe(standin_binary, "redis", f"127.0.0.1:{pod_ports.local('redis-proxy', 'redis')}")
    assert (code, result["outcome"], result["body"]) == (0, "connected", "+PONG")


def test_probe_redis_on_a_silent_server_is_not_connected(standin_binary: Path) -> None:
    """`probe redis` against a server that accepts and says nothing (a proxy that admitted nothing) is no answer."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        code, result = _probe(standin_binary, "redis", f"127.0.0.1:{server.getsockname()[1]}", "--timeout", "500ms")
    assert code != 0
    assert result["outcome"] != "connected"
