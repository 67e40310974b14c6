"""``BackendTLSPolicy`` (``gateway.networking.k8s.io/v1``): TLS origination from the gateway to a Service.

``targetRefs`` name core Services (``sectionName``: one port by name); ``validation`` gives the CA, either
``caCertificateRefs`` (ConfigMaps with ``ca.crt``, in the policy's namespace) or
``wellKnownCACertificates: System`` (the Envoy host's CA bundle), the ``hostname`` Envoy sends as SNI and
expects in the certificate, and optional ``subjectAltNames`` that replace that check.
"""
from __future__ import annotations

from dataclasses import dataclass

from translators import fields
from translators.diagnostics import Reporter
from translators.objects import ConfigObject

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
    for i, r in enumerate(fields.sequence(v.get("caCertificateRefs"), "spec.validation.caCertificateRefs", rep)):
        m = fields.mapping(r, f"spec.validation.caCertificateRefs[{i}]", rep) or {}
        if (m.get("group") or "") != "" or m.get("kind") != "ConfigMap":
            rep.error(f"spec.validation.caCertificateRefs[{i}]", "must name a ConfigMap (group \"\")")
            continue
        name = fields.string(m.get("name"), f"spec.validation.caCertificateRefs[{i}].name", rep, required=True)
        if name:
            refs.append(name)
    known = v.get("wellKnownCACertificates")
    if known is not None and known != "System":
        rep.error("spec.validation.wellKnownCACertificates", f"must be System, got {known!r}")
    if bool(refs) == (known == "System"):
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
    return BackendTlsPolicy(obj.namespace, tuple(targets), tuple(refs), known == "System", hostname, tuple(sans))
