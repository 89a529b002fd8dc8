"""Live probing: from client pods (kubectl exec) and from the host through the ingress gateway.

Every probe returns its evidence (the command, the HTTP status or exit code, relevant headers)
for the report. Credentials never reach a command line: tokens go to curl through a header file
or to the stand-in on stdin, and evidence names the token case, not the token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from conformance.errors import PreflightError
from conformance.live.access.kube import Kube

RELEVANT_HEADERS = ("location", "www-authenticate", "server", "x-envoy-upstream-service-time", "content-type",
                    "x-forwarded-client-cert")
PARALLEL = 6


@dataclass
class Result:
    command: str
    exit_code: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    outcome: str = ""
    note: str = ""

    @property
    def error(self) -> str:
        """Why the probe could not run at all ("" when it ran, whatever it saw)."""
        return (self.note or f"exit {self.exit_code}") if self.outcome == "error" else ""

    def answered(self) -> str:
        """How an HTTP probe ended, for messages (judge.answered)."""
        from conformance.live.evidence import judge

        return judge.answered(self.status, self.exit_code, self.error)

    def evidence(self) -> dict[str, Any]:
        item: dict[str, Any] = {"command": self.command, "exit_code": self.exit_code}
        if self.status is not None:
            item["status"] = self.status
        if self.outcome:
            item["note"] = f"outcome {self.outcome}" + (f"; {self.note}" if self.note else "")
        elif self.note:
            item["note"] = self.note
        item["headers"] = {k: v for k, v in self.headers.items() if k in RELEVANT_HEADERS}
        return item


def _parse_curl(output: str) -> tuple[int | None, dict[str, str], str]:
    """curl -i output -> (status of the last response, its headers, body)."""
    # Text-mode pipes may already have turned CRLF into LF, so both are accepted.
    status, headers, body = None, {}, output.replace("\r\n", "\n")
    while body.startswith("HTTP/"):
        head, _, body = body.partition("\n\n")
        lines = head.split("\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def pod_exec(kube: Kube, namespace: str, pod: str, argv: list[str], *, container: str | None = None,
             stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    args = ["exec", "-n", namespace, pod]
    if container:
        args += ["-c", container]
    if stdin is not None:
        args.append("-i")
    return kube.run(*args, "--", *argv, input=stdin, check=False, timeout=timeout)


def curl_in_pod(kube: Kube, namespace: str, pod: str, url: str, *, headers: dict[str, str] | None = None,
                what: str = "", method: str = "GET", data: str | None = None, timeout: int = 5) -> Result:
    """curl from a client pod; headers travel on stdin (`-H @-`), so no token is in any argv."""
    argv = ["curl", "-sS", "-i", "--max-time", str(timeout), "-X", method, url]
    if data is not None:
        argv += ["-H", "Content-Type: application/json", "--data", data]
    stdin = None
    if headers:
        argv += ["-H", "@-"]
        stdin = "".join(f"{k}: {v}\n" for k, v in headers.items())
    result = pod_exec(kube, namespace, pod, argv, stdin=stdin, timeout=timeout + 20)
    status, response_headers, body = _parse_curl(result.stdout)
    shown = " ".join(argv[:-2] if headers else argv)
    if headers:
        shown += f" -H @- ({what or ', '.join(headers)} on stdin)"
    note = result.stderr.strip().splitlines()[-1] if result.returncode and result.stderr.strip() else ""
    # curl -sS says why it failed as "curl: (N) ..."; a non-zero exit without that line is kubectl's (no
    # such pod, container not running, exec refused), whose exit code is no curl outcome.
    ran = result.returncode == 0 or status is not None or "curl: (" in result.stderr
    return Result(f"kubectl exec -n {namespace} {pod} -- {shown}", result.returncode, status, response_headers,
                  body, outcome="" if ran else "error", note=note or ("" if ran else f"exit {result.returncode}"))


def curl_many_in_pod(kube: Kube, namespace: str, pod: str, url: str, count: int, *,
                     headers: dict[str, str] | None = None) -> dict[int, int]:
    """`count` GETs of `url` from a client pod in one exec (one curl, one connection): status -> how many."""
    argv = ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}\n"]
    stdin = None
    if headers:
        argv += ["-H", "@-"]
        stdin = "".join(f"{k}: {v}\n" for k, v in headers.items())
    for _ in range(count):
        argv += [url, "-o", "/dev/null"]
    result = pod_exec(kube, namespace, pod, argv, stdin=stdin, timeout=120)
    counts: dict[int, int] = {}
    for line in result.stdout.split():
        if line.isdigit():
            counts[int(line)] = counts.get(int(line), 0) + 1
    return counts


def standin_probe(kube: Kube, namespace: str, pod: str, kind: str, target: str, *, container: str | None = None,
                  timeout: str = "2s", extra: list[str] | None = None) -> Result:
    """`standin probe tcp|dns|http TARGET` from inside a pod: outcome connected/refused/timeout/..."""
    argv = ["/standin", "probe", kind, target, "--timeout", timeout, *(extra or [])]
    result = pod_exec(kube, namespace, pod, argv, container=container, timeout=40)
    try:
        parsed = json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        parsed = {"outcome": "error", "error": (result.stderr or result.stdout).strip()[-200:]}
    return Result(f"kubectl exec -n {namespace} {pod}{f' -c {container}' if container else ''} -- {' '.join(argv)}",
                  result.returncode, parsed.get("status"), parsed.get("headers") or {}, parsed.get("body", ""),
                  outcome=parsed.get("outcome", "error"), note=parsed.get("error", ""))


# What `timeout N bash -c 'exec 3<>/dev/tcp/HOST/PORT'` exits with: 0 connected, 124 timed out, 1 bash could
# not connect (refused, reset or unreachable: a policy's reject). Any other code (125-127: timeout or bash
# could not run; 137: killed) observed no connection at all, so it is an error, never "refused".
BASH_TCP_OUTCOMES = {0: "connected", 124: "timeout", 1: "refused"}


def bash_tcp(kube: Kube, namespace: str, pod: str, container: str, host: str, port: int, seconds: int = 3) -> Result:
    """A TCP connect from a container that has bash (the sidecar, whose UID Istio does not capture).

    One-target bash_tcp_batch: the connect's exit code comes back on stdout, so a failed `kubectl exec`
    (which exits 1 too) cannot pass for a refused connection."""
    return bash_tcp_batch(kube, namespace, pod, container, [(host, port)], seconds)[0]


def standin_batch(kube: Kube, namespace: str, pod: str, probes: list[dict[str, str]], *,
                  container: str | None = None, timeout: str = "2s") -> list[Result]:
    """Many tcp/dns probes from one pod in one `kubectl exec` (`standin probe batch`), results in order."""
    argv = ["/standin", "probe", "batch", "--timeout", timeout]
    stdin = "".join(json.dumps(p) + "\n" for p in probes)
    result = pod_exec(kube, namespace, pod, argv, container=container, stdin=stdin, timeout=60)
    shown = f"kubectl exec -i -n {namespace} {pod}{f' -c {container}' if container else ''} -- {' '.join(argv)}"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or len(lines) != len(probes):
        error = (result.stderr or result.stdout).strip()[-200:] or f"exit {result.returncode}"
        return [Result(f"{shown} <<< {p['kind']} {p['target']}", result.returncode, outcome="error", note=error)
                for p in probes]
    out = []
    for probe, line in zip(probes, lines, strict=True):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            parsed = {"outcome": "error", "error": f"not a probe result: {line[:120]}"}
        out.append(Result(f"{shown} <<< {probe['kind']} {probe['target']}", 0, outcome=parsed.get("outcome", "error"),
                          note=parsed.get("error", "")))
    return out


def bash_tcp_batch(kube: Kube, namespace: str, pod: str, container: str, targets: list[tuple[str, int]],
                   seconds: int = 3) -> list[Result]:
    """TCP connects to many targets from a container that has bash, in one `kubectl exec`, in parallel."""
    script = "".join(f"(timeout {seconds} bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null; echo \"{i} $?\") & "
                     for i, (host, port) in enumerate(targets)) + "wait"
    result = pod_exec(kube, namespace, pod, ["bash", "-c", script], container=container, timeout=seconds + 40)
    codes = {}
    for line in result.stdout.splitlines():
        index, _, code = line.partition(" ")
        if index.isdigit() and code.strip().isdigit():
            codes[int(index)] = int(code)
    out = []
    for i, (host, port) in enumerate(targets):
        shown = f"kubectl exec -n {namespace} {pod} -c {container} -- bash -c 'exec 3<>/dev/tcp/{host}/{port}'"
        if i not in codes:
            note = (result.stderr or result.stdout).strip()[-200:] or f"exit {result.returncode}"
            out.append(Result(shown, result.returncode, outcome="error", note=note))
            continue
        outcome = BASH_TCP_OUTCOMES.get(codes[i], "error")
        out.append(Result(shown, codes[i], outcome=outcome,
                          note="" if outcome != "error" else f"the connect attempt exited {codes[i]}, which is no "
                                                             "connection outcome"))
    return out


def in_parallel(calls: list, workers: int = PARALLEL) -> list:
    """Run zero-argument callables concurrently, results in order (kubectl exec is I/O bound)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


@dataclass
class Gateway:
    """The ingress gateway as the host reaches it: node ports published on loopback by kind."""

    host: str
    http_port: int
    https_port: int
    ca_pem: str = field(repr=False)

    def request_many(self, path: str, count: int, *, headers: dict[str, str] | None = None) -> dict[int, int]:
        """`count` GETs of `path` over one connection (one curl): HTTP status -> how many got it."""
        curl = shutil.which("curl")
        if curl is None:
            raise PreflightError("curl is not installed on this machine: apt-get install curl")
        port = self.https_port
        url = f"https://{self.host}:{port}{path}"
        with tempfile.TemporaryDirectory(prefix="cortex-gw-") as tmp:
            ca = os.path.join(tmp, "ca.pem")
            with open(ca, "w") as handle:
                handle.write(self.ca_pem)
            argv = [curl, "-sS", "--http1.1", "--max-time", "60", "--resolve", f"{self.host}:{port}:127.0.0.1",
                    "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}\n"]
            if headers:
                header_file = os.path.join(tmp, "headers")
                fd = os.open(header_file, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write("".join(f"{k}: {v}\n" for k, v in headers.items()))
                argv += ["-H", f"@{header_file}"]
            for _ in range(count):
                argv += [url, "-o", "/dev/null"]
            result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        counts: dict[int, int] = {}
        for line in result.stdout.split():
            if line.isdigit():
                counts[int(line)] = counts.get(int(line), 0) + 1
        return counts

    def request(self, path: str, *, scheme: str = "https", headers: dict[str, str] | None = None,
                query: dict[str, str] | None = None, what: str = "", method: str = "GET",
                data: str | None = None) -> Result:
        curl = shutil.which("curl")
        if curl is None:
            raise PreflightError("curl is not installed on this machine: apt-get install curl")
        port = self.https_port if scheme == "https" else self.http_port
        url = f"{scheme}://{self.host}:{port}{path}"
        # Over plain HTTP the Host header carries no port, as a client on port 80 sends it; over
        # HTTPS --resolve keeps SNI and certificate checks on the real name.
        host_header = ["-H", f"Host: {self.host}"] if scheme == "http" else []
        with tempfile.TemporaryDirectory(prefix="cortex-gw-") as tmp:
            ca = os.path.join(tmp, "ca.pem")
            with open(ca, "w") as handle:
                handle.write(self.ca_pem)
            # HTTP/1.1, as the OpenAI SDKs speak it: over HTTP/2 Envoy answers a rejected POST before
            # reading its body and resets the stream, and curl then reports exit 92 instead of the status.
            argv = [curl, "-sS", "-i", "--http1.1", "--max-time", "10", "--resolve", f"{self.host}:{port}:127.0.0.1",
                    "--cacert", ca, "-X", method, *host_header]
            shown = argv[1:].copy()
            if data is not None:
                argv += ["-H", "Content-Type: application/json", "--data", data]
                shown += ["--data", "<chat completion request>"]
            if headers:
                header_file = os.path.join(tmp, "headers")
                fd = os.open(header_file, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write("".join(f"{k}: {v}\n" for k, v in headers.items()))
                argv += ["-H", f"@{header_file}"]
                shown += ["-H", f"@headers ({what or ', '.join(headers)})"]
            if query:
                url_shown = f"{url}?{'&'.join(f'{k}=<{what or k}>' for k in query)}"
                url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
            else:
                url_shown = url
            result = subprocess.run([*argv, url], capture_output=True, text=True, check=False, timeout=30)
        status, response_headers, body = _parse_curl(result.stdout)
        return Result(f"curl {' '.join(shown[1:])} {url_shown}", result.returncode, status, response_headers, body,
                      note=result.stderr.strip()[-200:] if result.returncode else "")
