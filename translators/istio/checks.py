"""Istio checks that read more than one object: TLS credentials against Secrets, outlier detection
against endpoint counts, and the status Istio objects with errors get."""
from __future__ import annotations

from typing import Any, Mapping

from translators.defaults import DEFAULT_MAX_EJECTION_PERCENT
from translators.diagnostics import Diagnostic, Severity, errors_by_object
from translators.conditions import condition
from translators.ir import Cluster, Gateway, TrafficPolicy
from translators.istio import API_GROUP
from translators.istio.destination_rule import DestinationPolicy
from translators.objects import ConfigObject, ObjectRef


def istio_statuses(diags: list[Diagnostic], statuses: dict[ObjectRef, dict]) -> None:
    """Istio objects that fail validation get it on the object, as istiod's analysis would report it."""
    for ref, ds in errors_by_object(diags, group=API_GROUP).items():
        statuses[ref] = {"validationMessages": [{"level": "ERROR", "type": {"code": "XDS0001", "name": "InvalidConfig"},
                                                 "message": f"{d.field_path}: {d.message}"} for d in ds],
                         "conditions": [condition("Reconciled", False, "Invalid", f"{ds[0].field_path}: {ds[0].message}")]}


def check_credentials(gateways: list[Gateway], secrets: list, objects: list[ConfigObject],
                       diags: list[Diagnostic]) -> None:
    """Reason as ``serve`` does: an Envoy gets a server's Secret from *its own* namespace (the one it was
    bootstrapped with), which for an Istio Gateway need not be the Gateway's.  Here the Envoy's namespace
    is unknown, so a Secret in any namespace can serve: info says which namespace the Envoy must run in
    when that is not the Gateway's own; a warning only when no namespace has it (the Secret may come later)."""
    have = {(s.namespace, s.name) for s in secrets if s.cert_pem}
    have_ca = {(s.namespace, s.name) for s in secrets if s.ca_pem}
    namespaces = sorted({s.namespace for s in secrets})
    source = {o.ref: o.source for o in objects}
    for g in gateways:
        for i, server in enumerate(g.servers):
            if server.tls is None:
                continue
            name = server.tls.credential_name
            where = source.get(g.ref, ""), g.ref, f"spec.servers[{i}].tls.credentialName"
            with_cert = [ns for ns in namespaces if (ns, name) in have]
            if not with_cert:
                diags.append(Diagnostic(Severity.WARNING, "unknown-secret", f"no TLS Secret {name!r} in any namespace "
                                        f"(looked in {g.ref.namespace!r} and the others): it must be in the namespace of "
                                        "the Envoy that selects this Gateway (`xds-server bootstrap envoy --namespace "
                                        "NAMESPACE`); this server is not served until it exists", *where))
                continue
            usable = with_cert if server.tls.mode != "MUTUAL" else \
                [ns for ns in with_cert if (ns, name) in have_ca or (ns, f"{name}-cacert") in have_ca]
            if not usable:
                diags.append(Diagnostic(Severity.WARNING, "unknown-secret", f"MUTUAL needs a client CA: ca.crt in "
                                        f"Secret {name!r} or a Secret {name}-cacert (in {', '.join(with_cert)})",
                                        where[0], g.ref, f"spec.servers[{i}].tls.mode"))
                continue
            if g.gateway_api or g.ref.namespace in usable:
                continue  # the usual layout: the Envoy runs in the Gateway's namespace
            found = ", ".join(usable)
            flags = " or ".join(f"`xds-server bootstrap envoy --namespace {ns}`" for ns in usable)
            diags.append(Diagnostic(Severity.INFO, "secret-namespace", f"TLS Secret {name!r} found in {found}, not in "
                                    f"the Gateway's namespace {g.ref.namespace!r}: an Envoy gets Secrets from its own "
                                    f"namespace, so run the Envoy with {flags}", *where))


def policy_sites(dr: DestinationPolicy, spec: Mapping[str, Any]) -> list[tuple[str, TrafficPolicy, int | None, str | None]]:
    """(field path, policy, port or None, subset or None) of every traffic policy a DestinationRule sets."""
    out: list[tuple[str, TrafficPolicy, int | None, str | None]] = [("spec.trafficPolicy", dr.policy, None, None)]
    tp = spec.get("trafficPolicy")
    pls = tp.get("portLevelSettings") if isinstance(tp, dict) else None
    for i, entry in enumerate(pls if isinstance(pls, list) else ()):
        port = entry.get("port", {}).get("number") if isinstance(entry, dict) and isinstance(entry.get("port"), dict) else None
        if port in dr.port_policies:
            out.append((f"spec.trafficPolicy.portLevelSettings[{i}]", dr.port_policies[port], port, None))
    raw_subsets = spec.get("subsets")
    names = [x.get("name") if isinstance(x, dict) else None for x in (raw_subsets if isinstance(raw_subsets, list) else ())]
    for sub in dr.subsets:
        if sub.policy is not None and sub.name in names:
            out.append((f"spec.subsets[{names.index(sub.name)}].trafficPolicy", sub.policy, None, sub.name))
    return out


def check_upstream_credentials(policies: Mapping[str, DestinationPolicy], secrets: list,
                                objects: list[ConfigObject], diags: list[Diagnostic]) -> None:
    """DestinationRule ``tls.credentialName``: the cluster asks SDS for ``kubernetes://NAME-cacert`` (and for
    MUTUAL ``kubernetes://NAME``); a Secret that cannot provide them leaves the cluster waiting for ever."""
    have_cert = {s.name for s in secrets if s.cert_pem}
    have_ca = {s.name for s in secrets if s.ca_pem}
    by_ref = {o.ref: o for o in objects}
    for dr in policies.values():
        obj = by_ref.get(dr.ref)
        if obj is None:
            continue
        for path, policy, _, _ in policy_sites(dr, obj.spec):
            tls = policy.tls
            if tls is None or not tls.credential_name:
                continue
            name = tls.credential_name
            if not tls.insecure_skip_verify and name not in have_ca and f"{name}-cacert" not in have_ca:
                diags.append(Diagnostic(
                    Severity.WARNING, "unknown-secret", f"Secret {name!r} has no ca.crt and there is no Secret "
                    f"{name}-cacert: the cluster's validation context refers to SDS secret kubernetes://{name}-cacert, "
                    "which is never generated, so Envoy never finishes the cluster (no traffic); add ca.crt, or set "
                    "insecureSkipVerify", obj.source, dr.ref, f"{path}.tls.credentialName"))
            if tls.mode == "MUTUAL" and name not in have_cert:
                diags.append(Diagnostic(
                    Severity.WARNING, "unknown-secret", f"MUTUAL needs a client certificate: no TLS Secret {name!r} "
                    f"with tls.crt and tls.key, so SDS secret kubernetes://{name} is never generated",
                    obj.source, dr.ref, f"{path}.tls.credentialName"))


def ejection_warnings(clusters: list[Cluster], policies: Mapping[str, DestinationPolicy],
                       objects: list[ConfigObject]) -> list[Diagnostic]:
    """Outlier detection that can never eject: Envoy ejects a host only while
    ``100 * (ejected + 1) / hosts <= max_ejection_percent``, so with the default 10% a cluster
    needs at least 10 endpoints before even one is ejected."""
    out: list[Diagnostic] = []
    seen: set[tuple[ObjectRef, str]] = set()
    by_ref = {o.ref: o for o in objects}
    for c in clusters:
        outlier = c.policy.outlier
        dr = policies.get(c.host)
        if outlier is None or dr is None or c.discovery != "EDS" or not c.endpoints:
            continue
        n = len({(e.address, e.port) for e in c.endpoints})
        pct = DEFAULT_MAX_EJECTION_PERCENT if outlier.max_ejection_percent is None else outlier.max_ejection_percent
        if n * pct >= 100:
            continue
        obj = by_ref.get(dr.ref)
        if obj is None:
            continue
        # the most specific level that sets outlierDetection: subset, then port-level, then the top
        rank = {"top": (0, "spec.trafficPolicy")}
        for site, policy, port, subset in policy_sites(dr, obj.spec):
            if policy.outlier is None:
                continue
            if subset is not None and subset == c.subset:
                rank["subset"] = (2, site)
            elif port is not None and port == c.port:
                rank["port"] = (1, site)
        path = max(rank.values())[1]
        field_path = f"{path}.outlierDetection.maxEjectionPercent"
        if (dr.ref, field_path) in seen:
            continue
        seen.add((dr.ref, field_path))
        explicit = "" if outlier.max_ejection_percent is not None else " (the default)"
        need = -(-100 // n)
        out.append(Diagnostic(
            Severity.WARNING, "outlier-never-ejects", f"maxEjectionPercent {pct}%{explicit} cannot eject even one of "
            f"the {n} endpoint{'s' if n != 1 else ''} of {c.name}: Envoy ejects a host only while the ejected hosts stay "
            f"within {pct}% of the cluster; set maxEjectionPercent to at least {need} for outlier detection to act",
            obj.source, dr.ref, field_path))
    return out
