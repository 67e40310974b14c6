"""``BackendTLSPolicy`` (``gateway.networking.k8s.io/v1``): TLS origination from the gateway to a Service.

``targetRefs`` name core Services (``sectionName``: one port by name); ``validation`` gives the CA, either
``caCertificateRefs`` (ConfigMaps with ``ca.crt``, in the policy's namespace) or
``wellKnownCACertificates: System`` (the Envoy host's CA bundle), the ``hostname`` Envoy sends as SNI and
expects in the certificate, and optional ``subjectAltNames`` that replace that check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from cryptography import x509

from translators import fields
from translators.conditions import condition
from translators.diagnostics import Diagnostic, Reporter, Severity
from translators.gateway_api import CONTROLLER_NAME
from translators.ir import GATEWAY_API_KEY_PREFIX, HttpRoutes, UpstreamTls, cluster_host
from translators.objects import ConfigObject, ObjectRef

#: where Debian/Ubuntu and the envoyproxy images keep the system CA bundle
SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True, slots=True)
class BackendTlsPolicy:
    namespace: str
    #: (Service name, port name or "")
    targets: tuple[tuple[str, str], ...]
    ca_configmaps: tuple[str, ...]
    system_ca: bool
    hostname: str
    subject_alt_names: tuple[str, ...]
    name: str = ""
    #: metadata.creationTimestamp: of two policies for one target, the older wins (then namespace/name)
    created: str = ""
    #: a caCertificateRefs entry is not a ConfigMap: nothing can validate the backend (ResolvedRefs
    #: InvalidKind), so connections to the target fail rather than go out unverified
    invalid_kind: bool = False


def parse_backend_tls_policy(obj: ConfigObject, rep: Reporter) -> BackendTlsPolicy | None:
    spec = obj.spec
    targets = []
    for i, t in enumerate(fields.sequence(spec.get("targetRefs"), "spec.targetRefs", rep)):
        m = fields.mapping(t, f"spec.targetRefs[{i}]", rep) or {}
        if (m.get("group") or "") != "" or m.get("kind") != "Service":
            rep.warning(f"spec.targetRefs[{i}]", "only core Services are supported targets; ignored",
                        code="unsupported")
            continue
        name = fields.string(m.get("name"), f"spec.targetRefs[{i}].name", rep, required=True)
        if name:
            targets.append((name, fields.string(m.get("sectionName"), f"spec.targetRefs[{i}].sectionName", rep)
                            or ""))
    v = fields.mapping(spec.get("validation"), "spec.validation", rep) or {}
    hostname = fields.string(v.get("hostname"), "spec.validation.hostname", rep, required=True) or ""
    refs = []
    given, invalid_kind = 0, False
    for i, r in enumerate(fields.sequence(v.get("caCertificateRefs"), "spec.validation.caCertificateRefs", rep)):
        m = fields.mapping(r, f"spec.validation.caCertificateRefs[{i}]", rep) or {}
        given += 1
        if (m.get("group") or "") != "" or m.get("kind") != "ConfigMap":
            rep.warning(f"spec.validation.caCertificateRefs[{i}]",
                        f"must name a ConfigMap (group \"\"), not {m.get('kind')!r}: connections to the targets "
                        "fail until it does (ResolvedRefs InvalidKind)", code="invalid-kind")
            invalid_kind = True
            continue
        name = fields.string(m.get("name"), f"spec.validation.caCertificateRefs[{i}].name", rep, required=True)
        if name:
            refs.append(name)
    known = v.get("wellKnownCACertificates")
    if known is not None and known != "System":
        rep.error("spec.validation.wellKnownCACertificates", f"must be System, got {known!r}")
    if bool(given) == (known == "System"):
        rep.error("spec.validation", "give exactly one of caCertificateRefs or wellKnownCACertificates")
    sans = []
    for i, s in enumerate(fields.sequence(v.get("subjectAltNames"), "spec.validation.subjectAltNames", rep)):
        m = fields.mapping(s, f"spec.validation.subjectAltNames[{i}]", rep) or {}
        value = m.get("hostname") if m.get("type") == "Hostname" else m.get("uri") if m.get("type") == "URI" else None
        if not isinstance(value, str) or not value:
            rep.error(f"spec.validation.subjectAltNames[{i}]", "needs type Hostname with hostname, or URI with uri")
            continue
        sans.append(value)
    if rep.failed or not targets:
        return None
    created = str((obj.raw.get("metadata") or {}).get("creationTimestamp") or "") if obj.raw else ""
    return BackendTlsPolicy(obj.namespace, tuple(targets), tuple(refs), known == "System", hostname, tuple(sans),
                            name=obj.name, created=created, invalid_kind=invalid_kind)


def valid_ca_bundle(pem: str) -> bool:
    """A ConfigMap's ``ca.crt`` holds at least one PEM certificate that parses (``cryptography``)."""
    try:
        return bool(x509.load_pem_x509_certificates(pem.encode()))
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the BackendTLSPolicies do: per host, ``((port name or "", UpstreamTls or None), ...)`` where
    None means *refuse* (the policy cannot validate the backend, so its clusters get no endpoints and
    requests fail with 503 rather than go out in cleartext); per policy, its conditions."""

    by_host: dict[str, tuple]
    conditions: dict[ObjectRef, list[dict]]
    targets: dict[ObjectRef, frozenset[str]]
    diagnostics: list[Diagnostic]


def resolve(policies: Iterable[tuple[ConfigObject, BackendTlsPolicy]], *, cas: Mapping[tuple[str, str], bytes],
            domain_suffix: str) -> Resolution:
    """Apply the spec's rules: CA references resolve to ConfigMaps with a valid ``ca.crt`` (else Accepted
    False NoValidCACertificate, ResolvedRefs False InvalidCACertificateRef/InvalidKind, and the target
    refuses connections); of two policies for the same target (Service and sectionName), the older one
    wins and the other is Accepted False Conflicted."""
    ranked = sorted(policies, key=lambda op: (op[1].created or "~", op[1].namespace, op[1].name))
    by_host: dict[str, list] = {}
    taken: dict[tuple[str, str], ObjectRef] = {}
    out_conditions: dict[ObjectRef, list[dict]] = {}
    targets: dict[ObjectRef, frozenset[str]] = {}
    diags: list[Diagnostic] = []
    for obj, p in ranked:
        missing = [n for n in p.ca_configmaps if (p.namespace, n) not in cas]
        if p.invalid_kind:
            resolved = condition("ResolvedRefs", False, "InvalidKind", "a caCertificateRefs entry is not a ConfigMap")
        elif missing:
            resolved = condition("ResolvedRefs", False, "InvalidCACertificateRef",
                                 f"no ConfigMap {', '.join(missing)} with a valid ca.crt in {p.namespace}")
            diags.append(Diagnostic(Severity.WARNING, "unknown-configmap", f"no ConfigMap {', '.join(missing)} with "
                                    "a valid PEM ca.crt in this namespace: connections to the targets fail (503) "
                                    "until it exists", obj.source, obj.ref, "spec.validation.caCertificateRefs"))
        else:
            resolved = condition("ResolvedRefs", True, "ResolvedRefs")
        usable = resolved["status"] == "True"
        tls = UpstreamTls(mode="SIMPLE", sni=p.hostname, subject_alt_names=p.subject_alt_names or (p.hostname,),
                          ca_pem=b"".join(cas[(p.namespace, n)] for n in p.ca_configmaps),
                          ca_certificates=SYSTEM_CA_FILE if p.system_ca else "") if usable else None
        conflicted = False
        hosts = set()
        for name, section in p.targets:
            host = f"{name}.{p.namespace}.{domain_suffix}"
            hosts.add(host)
            if (host, section) in taken and taken[(host, section)] != obj.ref:
                conflicted = True
                continue
            taken[(host, section)] = obj.ref
            by_host.setdefault(host, []).append((section, tls))
        targets[obj.ref] = frozenset(hosts)
        if conflicted:
            accepted = condition("Accepted", False, "Conflicted", "an older BackendTLSPolicy targets the same "
                                 "Service (and sectionName)")
        elif not usable:
            accepted = condition("Accepted", False, "NoValidCACertificate", resolved["message"])
        else:
            accepted = condition("Accepted", True, "Accepted")
        out_conditions[obj.ref] = [accepted, resolved]
    return Resolution({h: tuple(v) for h, v in by_host.items()}, out_conditions, targets, diags)


def statuses(resolution: Resolution, routes: Iterable[HttpRoutes], generations: Mapping[ObjectRef, int | None]) \
        -> dict[ObjectRef, dict]:
    """``status.ancestors``: one entry per Gateway whose routes send traffic to a policy's targets."""
    gateways_by_host: dict[str, set[tuple[str, str]]] = {}
    for hr in routes:
        gws = set()
        for entry in hr.gateways:
            if entry.startswith(GATEWAY_API_KEY_PREFIX):
                ns, _, name = entry[len(GATEWAY_API_KEY_PREFIX):].partition("|")[0].partition("/")
                gws.add((ns, name))
        if not gws:
            continue
        for r in hr.routes:
            for cluster in (*(wc.cluster for wc in r.clusters), *((r.mirror_cluster,) if r.mirror_cluster else ())):
                host = cluster_host(cluster)
                if host is not None:
                    gateways_by_host.setdefault(host, set()).update(gws)
    out: dict[ObjectRef, dict] = {}
    for ref, conds in resolution.conditions.items():
        g = generations.get(ref)
        ancestors = []
        for ns, name in sorted(set().union(*(gateways_by_host.get(h, set()) for h in resolution.targets[ref]))):
            stamped = [dict(c, **({"observedGeneration": g} if g is not None else {})) for c in conds]
            ancestors.append({"ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                              "namespace": ns, "name": name},
                              "controllerName": CONTROLLER_NAME, "conditions": stamped})
        out[ref] = {"ancestors": ancestors}
    return out
