"""The config store's incremental merge equals a full merge after any sequence of loads and removals."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from translators.objects import ConfigObject, ObjectRef
from xds_server.store import ConfigStore


def obj(name: str, origin: str, version: int) -> ConfigObject:
    return ConfigObject(ref=ObjectRef("VirtualService", "default", name, "networking.istio.io"),
                        api_version="networking.istio.io/v1", spec={"v": version}, source=origin)


OPS = st.lists(st.tuples(st.sampled_from(["replace", "remove", "bad"]), st.sampled_from(["a.yaml", "b.yaml", "c.yaml"]),
                         st.lists(st.sampled_from(["x", "y", "z", "w"]), max_size=3), st.integers(0, 3)),
               max_size=25)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(OPS)
def test_incremental_merge_equals_full_merge(ops) -> None:  # noqa: ANN001
    store = ConfigStore()
    for op, origin, names, version in ops:
        if op == "replace":
            store.replace(origin, [obj(n, origin, version) for n in names])
        elif op == "remove":
            store.remove(origin)
        else:
            from translators.diagnostics import Diagnostic, Severity
            store.keep_with_diagnostics(origin, [Diagnostic(Severity.ERROR, "load", f"bad {version}", origin)])
        fast = store.objects()
        full = store._merge()
        assert [(o.ref, o.spec, o.source) for o in fast[0]] == [(o.ref, o.spec, o.source) for o in full[0]]
        assert all(a is b for a, b in zip(fast[0], full[0]))
        assert sorted(d.format() for d in fast[1]) == sorted(d.format() for d in full[1])
