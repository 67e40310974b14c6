"""The config store's incremental merge equals a full merge after any sequence of loads and removals."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from translators.by_identity import noted_span
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
        before = store._handed
        fast = store.objects()
        full = store._merge()
        if before is not None:  # a noted span must be true: the same objects outside it
            span = noted_span(before, fast[0])
            if span is not None:
                start, old_end, new_end = span
                assert all(a is b for a, b in zip(before[:start], fast[0][:start]))
                assert all(a is b for a, b in zip(before[old_end:], fast[0][new_end:]))
                assert len(before) - old_end == len(fast[0]) - new_end
        assert [(o.ref, o.spec, o.source) for o in fast[0]] == [(o.ref, o.spec, o.source) for o in full[0]]
        assert all(a is b for a, b in zip(fast[0], full[0]))
        assert sorted(d.format() for d in fast[1]) == sorted(d.format() for d in full[1])


def test_an_edit_is_noted_as_its_span() -> None:
    store = ConfigStore()
    store.replace("a.yaml", [obj("x", "a.yaml", 1), obj("y", "a.yaml", 1)])
    store.replace("b.yaml", [obj("z", "b.yaml", 1)])
    first, _ = store.objects()
    store.replace("a.yaml", [obj("x", "a.yaml", 1), obj("y", "a.yaml", 2)])
    second, _ = store.objects()
    assert noted_span(first, second) == (0, 2, 2)  # origin a's objects patched in place, z as it was
    store.replace("c.yaml", [obj("w", "c.yaml", 1)])
    third, _ = store.objects()
    assert noted_span(second, third) == (3, 3, 4)  # a new origin appended
