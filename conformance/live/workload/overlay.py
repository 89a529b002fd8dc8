"""The conformance overlay: overlays/dev as written, with only what a private-image-free run needs.

Written per run into a work directory outside the repository, it is a kustomization on top of
overlays/dev that changes exactly three things:

- the four container images, via kustomize ``images:``, to the stand-in refs it is given;
- each RequestAuthentication jwtRule whose ``jwksUri`` is the one fixtures/expectations/jwt.yaml
  names: the URI replaced by the run's JWKS inline (``jwks``), the issuer and everything else
  unchanged (the run stands in for the identity provider at exactly that address);
- one added Secret per Gateway TLS credential (``credentialName``), generated per run, in the
  ingress gateway's namespace, with no hash suffix so the Gateway finds it by name.

The client pods (fixtures/clients) get their stand-in image the same way, in a second
kustomization written by :func:`write_clients`.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conformance import fixtures
from conformance.errors import InputError
from conformance.paths import REPO
from conformance.static.manifests import Bundle, load_overlay, pod_template_of

DEV_OVERLAY = REPO / "overlays" / "dev"
CLIENTS = REPO / "fixtures" / "clients"
CLIENT_IMAGE_PLACEHOLDER = "cortex-conformance/standin"
GATEWAY_NAMESPACE = fixtures.workload().gateway.namespace
WORKLOAD = fixtures.workload().name
TLS_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class TlsCredential:
    """A per-run CA and a server certificate for the Gateway hosts; clients trust ``ca_pem``."""

    hosts: tuple[str, ...]
    cert_pem: str
    key_pem: str = field(repr=False)
    ca_pem: str = ""
    ca_key_pem: str = field(default="", repr=False)  # kept in memory so a fault can sign for another host


@dataclass(frozen=True)
class ConformanceOverlay:
    path: Path
    images: dict[str, str]  # container name -> stand-in ref
    tls_secrets: tuple[tuple[str, str], ...]  # (namespace, name) of each generated Secret
    tls: TlsCredential


def _name_only(image: str) -> str:
    """An image reference without tag or digest: the key kustomize ``images:`` matches on."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def image_entry(original: str, ref: str) -> dict[str, str]:
    """The kustomize ``images:`` entry that turns ``original`` into ``ref`` (tag or digest form)."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise InputError(f"image {ref!r}: a digest must be sha256:<64 hex digits>")
        return {"name": _name_only(original), "newName": name, "digest": digest}
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        raise InputError(f"image {ref!r} has neither a tag nor a digest; stand-in images must be pinned")
    name, tag = ref.rsplit(":", 1)
    return {"name": _name_only(original), "newName": name, "newTag": tag}


def _images(dev: Bundle, images: Mapping[str, str]) -> list[dict[str, str]]:
    deployment = next((d for d in dev.of_kind("Deployment") if d.name == WORKLOAD), None)
    pod = pod_template_of(deployment) if deployment is not None else None
    if pod is None:
        raise InputError(f"the dev overlay has no Deployment {WORKLOAD}")
    containers = {c.name: c.spec["image"] for c in pod.containers(("initContainers", "containers"))}
    missing, unknown = sorted(set(containers) - set(images)), sorted(set(images) - set(containers))
    if missing or unknown:
        raise InputError(f"stand-in images must name exactly the containers of {WORKLOAD} "
                         f"({', '.join(sorted(containers))}); missing: {missing or 'none'}, "
                         f"unknown: {unknown or 'none'}")
    entries: dict[str, dict[str, str]] = {}
    for container, original in containers.items():
        entry = image_entry(original, images[container])
        if entry["name"] in entries and entries[entry["name"]] != entry:
            raise InputError(f"containers share the image {entry['name']} but were given different stand-ins")
        entries[entry["name"]] = entry
    return list(entries.values())


def _jwks_patches(dev: Bundle, jwks: str, expected_uri: str) -> list[dict[str, Any]]:
    """The run's JWKS in place of exactly the expected jwksUri.

    The identity provider is outside the cluster, so the run stands in for it at the address the
    expectations name. A jwtRule with any other jwksUri (or its own inline keys) is left as the
    manifests have it: the run's tokens then fail there, as they would in production.
    """
    patches = []
    for ra in dev.of_kind("RequestAuthentication"):
        ops = []
        for i, rule in enumerate(ra.spec.get("jwtRules") or []):
            if rule.get("jwksUri") == expected_uri:
                ops += [{"op": "remove", "path": f"/spec/jwtRules/{i}/jwksUri"},
                        {"op": "add", "path": f"/spec/jwtRules/{i}/jwks", "value": jwks}]
        if ops:
            group, _, version = ra.api_version.partition("/")
            patches.append({"target": {"group": group, "version": version, "kind": ra.kind, "name": ra.name,
                                       "namespace": ra.namespace},
                            "patch": json.dumps(ops)})
    return patches


def gateway_credentials(dev: Bundle) -> dict[str, tuple[str, ...]]:
    """credentialName -> the hosts of the Gateway servers that use it."""
    out: dict[str, list[str]] = {}
    for gateway in dev.of_kind("Gateway"):
        for server in gateway.spec.get("servers") or []:
            name = (server.get("tls") or {}).get("credentialName")
            if name:
                out.setdefault(name, []).extend(h.split("/", 1)[-1] for h in server.get("hosts") or [])
    return {name: tuple(dict.fromkeys(hosts)) for name, hosts in out.items()}


def generate_tls(hosts: tuple[str, ...], ca: TlsCredential | None = None) -> TlsCredential:
    """A server certificate for ``hosts``, valid two days, from a new CA (or the one of ``ca``)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cortex-conformance run CA")])
    if ca is not None and ca.ca_key_pem:
        ca_key = serialization.load_pem_private_key(ca.ca_key_pem.encode(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca.ca_pem.encode())
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, ca_name, now)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + TLS_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # Strict verifiers (RFC 5280 profiles) insist on the key identifiers that chain the two.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    plain = (serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return TlsCredential(
        hosts=hosts,
        cert_pem=cert.public_bytes(pem).decode(),
        key_pem=key.private_bytes(pem, *plain).decode(),
        ca_pem=ca_cert.public_bytes(pem).decode(),
        ca_key_pem=ca_key.private_bytes(pem, *plain).decode(),
    )


def _ca_certificate(ca_key, ca_name: x509.Name, now: datetime.datetime) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + TLS_VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))


def _outside_repo(work_dir: Path) -> Path:
    resolved = work_dir.resolve()
    if resolved == REPO or REPO in resolved.parents:
        raise InputError(f"refusing to write per-run files under the repository ({work_dir}): they hold a "
                         "private key; use a directory outside it")
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def write_overlay(work_dir: Path, *, images: Mapping[str, str], jwks: str | Mapping[str, Any],
                  tls: TlsCredential | None = None, dev_overlay: Path = DEV_OVERLAY,
                  gateway_namespace: str = GATEWAY_NAMESPACE) -> ConformanceOverlay:
    """Write the conformance kustomization into ``work_dir`` and return where it is and what it holds."""
    root = _outside_repo(work_dir)
    dev = load_overlay(dev_overlay)
    jwks_text = jwks if isinstance(jwks, str) else json.dumps(jwks, separators=(",", ":"))
    credentials = gateway_credentials(dev)
    if not credentials:
        raise InputError("the dev overlay has no Gateway server with a TLS credentialName")
    all_hosts = tuple(dict.fromkeys(h for hosts in credentials.values() for h in hosts))
    tls = tls or generate_tls(all_hosts)
    generators = []
    for name in credentials:
        secret_dir = root / "tls" / name
        secret_dir.mkdir(parents=True, exist_ok=True)
        _write_private(secret_dir / "tls.crt", tls.cert_pem)
        _write_private(secret_dir / "tls.key", tls.key_pem)
        generators.append({"name": name, "namespace": gateway_namespace, "type": "kubernetes.io/tls",
                           "files": [f"tls.crt=tls/{name}/tls.crt", f"tls.key=tls/{name}/tls.key"],
                           # The Gateway names the Secret exactly; a hash suffix would hide it.
                           "options": {"disableNameSuffixHash": True}})
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(dev_overlay.resolve(), root)],
        "images": _images(dev, images),
        "patches": _jwks_patches(dev, jwks_text, fixtures.expectations("jwt")["jwks_uri"]),
        "secretGenerator": generators,
    }
    (root / "kustomization.yaml").write_text(
        "# Written per run by conformance.live.workload.overlay; holds references to a private key. Never commit.\n"
        + yaml.safe_dump(kustomization, sort_keys=False))
    return ConformanceOverlay(path=root, images=dict(images),
                              tls_secrets=tuple((gateway_namespace, n) for n in credentials), tls=tls)


def write_clients(work_dir: Path, *, image: str, clients: Path = CLIENTS) -> Path:
    """A kustomization over fixtures/clients with the placeholder image replaced by ``image``."""
    root = _outside_repo(work_dir)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(clients.resolve(), root)],
        "images": [image_entry(CLIENT_IMAGE_PLACEHOLDER + ":placeholder", image)],
    }
    (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return root
