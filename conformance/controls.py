"""The control catalogue: the single source of truth for what the suite vouches for.

Every pytest check names exactly one control ID with ``@pytest.mark.control("SEC-01")``.
A control may be proven statically (rendered manifests), live (a running cluster) or both;
the sign-off report lines the two tiers up per control and says whether they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

STATIC = "static"
LIVE = "live"


@dataclass(frozen=True)
class Control:
    id: str
    family: str
    title: str
    rationale: str
    tiers: tuple[str, ...]


FAMILIES = {
    "SCHEMA": "Schema validity",
    "SEC": "Pod security",
    "MTLS": "Mutual TLS",
    "JWT": "Request authentication",
    "NET": "Network isolation",
    "PROBE": "Health probes",
    "HPA": "Autoscaling",
    "AVAIL": "Availability",
    "GW": "Gateway exposure",
    "VAULT": "Secrets from Vault",
    "TEL": "Telemetry",
    "CLOSED": "Closed world",
}

_BOTH = (STATIC, LIVE)

CATALOGUE: tuple[Control, ...] = (
    Control("SCHEMA-01", "SCHEMA", "Kubernetes objects validate strictly against the pinned API schemas",
            "A misspelled field is silently dropped by the API server, so a security setting can vanish "
            "without an error.", (STATIC,)),
    Control("SCHEMA-02", "SCHEMA", "Istio objects validate strictly against the pinned Istio CRD schemas",
            "Linters skip CRDs; an unknown field in a PeerAuthentication or AuthorizationPolicy is pruned "
            "and the policy means something else.", (STATIC,)),
    Control("SCHEMA-03", "SCHEMA", "Istio objects pass istiod's own validation, and the cluster admits every object",
            "istiod's validating webhook refuses what the CRDs' rules let through (a CUSTOM policy without a "
            "provider, a dry-run annotation where it means nothing), and the API server refuses what its own "
            "validation does; refused at apply, the object never exists and the overlay does not deploy as "
            "reviewed. Statically the webhook's rules as restated here; live what the cluster really admitted.",
            _BOTH),
    Control("SEC-01", "SEC", "Every container meets Pod Security Standard restricted",
            "Non-root, no privilege escalation, capabilities dropped, seccomp confined, no host access; "
            "injected sidecars included once admitted.", _BOTH),
    Control("SEC-02", "SEC", "Every container has a read-only root filesystem",
            "A writable image filesystem lets an attacker persist tooling; writable paths are emptyDirs.",
            _BOTH),
    Control("SEC-03", "SEC", "Every container sets CPU and memory requests and limits",
            "Unbounded containers starve neighbours, and the HPA cannot compute utilisation without "
            "requests.", _BOTH),
    Control("SEC-04", "SEC", "Every image is pinned to a version or digest, never latest",
            "A floating tag makes the deployed bits differ from the reviewed ones.", _BOTH),
    Control("SEC-05", "SEC", "The namespace enforces Pod Security Admission restricted",
            "The admission controller is the backstop when a manifest or an injector regresses.", _BOTH),
    Control("SEC-06", "SEC", "The ServiceAccount token is not auto-mounted into application containers",
            "Only the Vault agent needs a token, and it gets an audience-bound projected one.", (STATIC,)),
    Control("MTLS-01", "MTLS", "STRICT mTLS covers the workload with no port- or workload-level exception",
            "A PERMISSIVE override, even on one port, accepts plaintext from anything that can route to "
            "the pod.", _BOTH),
    Control("MTLS-02", "MTLS", "Traffic toward the workload is never downgraded from Istio mutual TLS",
            "DISABLE or SIMPLE on a DestinationRule turns client-side mTLS off regardless of the "
            "PeerAuthentication. Statically no DestinationRule may say so; live, a mesh client's request "
            "must arrive with its SPIFFE identity.", _BOTH),
    Control("MTLS-03", "MTLS", "Sidecar injection is on for the namespace and not opted out by the pods",
            "Without a sidecar there is no mTLS, no JWT check and no authorization at the pod.", _BOTH),
    Control("MTLS-04", "MTLS", "The workload's outbound calls carry its identity over mTLS",
            "A call that leaves the pod without its sidecar (outbound capture excluded by range, port or UID) "
            "goes out in plaintext and without the workload's identity; only the receiving side can tell.",
            (LIVE,)),
    Control("JWT-01", "JWT", "A RequestAuthentication validates tokens for the workload",
            "Issuer, https JWKS, audiences, and tokens taken only from the Authorization header.", _BOTH),
    Control("JWT-02", "JWT", "An AuthorizationPolicy requires a request principal on every API path",
            "RequestAuthentication alone rejects only bad tokens; a request with no token passes.", _BOTH),
    Control("JWT-03", "JWT", "No AuthorizationPolicy allows everything",
            "An ALLOW rule of {} admits every request and silently voids the JWT requirement.", (STATIC,)),
    Control("NET-01", "NET", "Default deny for ingress and egress in every namespace of the overlay",
            "Without a default deny, any pod not named by a policy is open.", _BOTH),
    Control("NET-02", "NET", "Allowed flows equal the expected network matrix",
            "Every source, destination and port either appears in fixtures/expectations/network.yaml or "
            "is blocked.", _BOTH),
    Control("NET-03", "NET", "cortex-api takes traffic only from the ingress gateway and metrics scraping",
            "A widened from clause lets traffic in around the gateway and its JWT check.", _BOTH),
    Control("NET-04", "NET", "Every NetworkPolicy selects pods that exist",
            "After a rename a policy can select nothing and protect nothing while applying cleanly.",
            (STATIC,)),
    Control("NET-05", "NET", "cortex-api egress goes only to DNS, istiod, Vault, Redis, the trace collector and "
            "external HTTPS",
            "An egress rule without a destination or a port lets a compromised pod reach anything, "
            "including the cloud metadata endpoint.", _BOTH),
    Control("PROBE-01", "PROBE", "Every container has liveness and readiness probes",
            "Without readiness, traffic reaches pods that cannot serve; without liveness, a hung process "
            "stays.", _BOTH),
    Control("PROBE-02", "PROBE", "Probes target ports the container declares",
            "A probe on an undeclared port fails forever or checks the wrong process.", (STATIC,)),
    Control("PROBE-03", "PROBE", "Readiness is distinct from liveness and gates traffic",
            "Identical probes restart pods that are merely busy; readiness must take a pod out of "
            "endpoints.", _BOTH),
    Control("PROBE-04", "PROBE", "Liveness timing is sane and slow starters have a startup probe",
            "An aggressive liveness probe kills a slow starter in a loop; a failing liveness must "
            "restart the container.", _BOTH),
    Control("HPA-01", "HPA", "The HPA targets the Deployment with minReplicas >= 2 and room to grow",
            "One replica is a single point of failure; max must exceed min to scale.", _BOTH),
    Control("HPA-02", "HPA", "Every container requests CPU so CPU utilisation is computable",
            "One container without a CPU request leaves the HPA at <unknown>.", _BOTH),
    Control("HPA-03", "HPA", "Load scales the Deployment up within a bound",
            "A scale policy that cannot add pods under load is an outage in waiting.", _BOTH),
    Control("AVAIL-01", "AVAIL", "The PDB selects the pods and still lets a node drain at the HPA minimum",
            "minAvailable equal to minReplicas, or maxUnavailable 0, deadlocks every voluntary drain.",
            _BOTH),
    Control("AVAIL-02", "AVAIL", "Pods spread over zones and hosts",
            "Co-located replicas fail together.", (STATIC,)),
    Control("AVAIL-03", "AVAIL", "A rolling update never drops below capacity",
            "maxUnavailable above zero removes serving pods before their replacements are Ready.",
            (STATIC,)),
    Control("AVAIL-04", "AVAIL", "The Service selects the pods on declared ports",
            "A selector or targetPort that no longer matches leaves the Service without endpoints.", _BOTH),
    Control("GW-01", "GW", "The Gateway serves TLS from a credential and redirects HTTP to HTTPS",
            "Plain HTTP exposes bearer tokens on the wire.", _BOTH),
    Control("GW-02", "GW", "The VirtualService binds the Gateway's hosts to the Service's ports",
            "A host or port mismatch makes the route unreachable or reach the wrong backend.", _BOTH),
    Control("GW-03", "GW", "External traffic enters only through the Istio Gateway",
            "A LoadBalancer or NodePort Service, an Ingress or a hostPort bypasses mTLS and JWT.",
            (STATIC,)),
    Control("VAULT-01", "VAULT", "No plaintext secret appears in any manifest",
            "Secrets in Secret objects, env values or annotations leak through Git and kubectl get.",
            (STATIC,)),
    Control("VAULT-02", "VAULT", "Every secret the service uses is delivered by the Vault agent",
            "GitHub, OpenAI, Slack and Google credentials come from Vault as files, never from env.",
            _BOTH),
    Control("VAULT-03", "VAULT", "The Vault role is bound to the workload's ServiceAccount only",
            "A role bound to a wildcard or another account hands the secrets to any pod.", _BOTH),
    Control("TEL-01", "TEL", "Tracing is on for the workload through the expected provider at a bounded rate",
            "Without spans an incident has no request path to follow; an unbounded rate makes tracing the load.",
            _BOTH),
    Control("TEL-02", "TEL", "Trace context runs from the gateway through the sidecar into the application",
            "A proxy or a service that drops or restarts the context splits one request into traces nobody can "
            "join; spans that cannot leave the pod are lost.", _BOTH),
    Control("TEL-03", "TEL", "Access logs are on for the workload and never carry a token",
            "Logs are read by more people than the API is; a bearer token or an access_token query parameter in "
            "them is a credential leak.", _BOTH),
    Control("TEL-04", "TEL", "Prometheus, and only Prometheus, scrapes the merged metrics, mesh metrics included",
            "The merged endpoint shows traffic and internals; any other identity reading it is a leak, and without "
            "the mesh's request metrics the pod's traffic is invisible.", _BOTH),
    Control("TEL-05", "TEL", "No credential the workload receives reaches any telemetry sink",
            "Span tags and events, metric labels and logs are kept longer and read more widely than the API; a "
            "header copied into any of them (a Telemetry customTag, a tag override, a logged header) leaks the "
            "bearer token.", (LIVE,)),
    Control("CLOSED-01", "CLOSED", "Each governed namespace holds only the objects the expectations name",
            "An extra ServiceEntry, Sidecar, EnvoyFilter or policy widens what the pod can reach or who can "
            "reach it without failing any check that looks for what is expected; only documented harmless "
            "additions (a ConfigMap, a DENY policy, a stricter duplicate) pass.", (STATIC,)),
    Control("CLOSED-02", "CLOSED",
            "Security-relevant objects use only the fields and annotations the expectations name",
            "A mirror, a CORS rule, a header copied into span tags, a dry-run annotation or a capture exclusion "
            "is one added field; it is a finding until someone adds it to the expectations on purpose.",
            (STATIC,)),
    Control("CLOSED-03", "CLOSED", "Fields whose value the expectations name hold exactly that value",
            "Sampling rate, retry conditions, JWT token locations, what the metrics endpoint merges, mesh "
            "capture and injection labels are compared, not just found: any other value is a finding.",
            (STATIC,)),
)

BY_ID: dict[str, Control] = {c.id: c for c in CATALOGUE}


def get(control_id: str) -> Control:
    try:
        return BY_ID[control_id]
    except KeyError:
        raise KeyError(f"unknown control ID {control_id!r}; known: {', '.join(BY_ID)}") from None
