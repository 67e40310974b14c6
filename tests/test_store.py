"""The config store's incremental merge equals a full merge after any sequence of loads and removals."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from translators.by_identity import noted_delta
from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject, ObjectRef
from xds_server.store import ConfigStore


def obj(name: str, origin: str, version: int) -> ConfigObject:
    return ConfigObject(ref=ObjectRef("VirtualService", "default", name, "networking.istio.io"),
                        api_version="networking.istio.io/v1", spec={"v": version}, source=origin)


OPS = st.lists(st.lists(st.tuples(st.sampled_from(["replace", "remove", "bad", "missing"]),
                                  st.sampled_from(["a.yaml", "b.yaml", "c.yaml", "d.yaml"]),
                                  st.lists(st.sampled_from(["x", "y", "z", "w", "v"]), max_size=3), st.integers(0, 3)),
                        min_size=1, max_size=4),  # the changes between two merges
               max_size=20)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(OPS)
def test_incremental_merge_equals_full_merge(ops) -> None:  # noqa: ANN001
    store = ConfigStore()
    for batch in ops:
        for op, origin, names, version in batch:
            if op == "replace":
                store.replace(origin, [obj(n, origin, version) for n in names])
            elif op == "remove":
                store.remove(origin)
            elif op == "missing":  # a directory that is not there: diagnostics, no objects
                store.set_diagnostics(origin, [Diagnostic(Severity.ERROR, "missing", f"gone {version}", origin)]
                                      if version else [])
            else:
                store.keep_with_diagnostics(origin, [Diagnostic(Severity.ERROR, "load", f"bad {version}", origin)])
        before = store._handed
        fast = store.objects()
        full = store._merge()
        if before is not None:  # a noted delta must be true: the old objects, in order, less went, plus came
            delta = noted_delta(before, fast[0])
            if delta is not None:
                went, came = delta
                went_ids, came_ids = {id(o) for o in went}, {id(o) for o in came}
                assert [id(o) for o in before if id(o) not in went_ids] == \
                    [id(o) for o in fast[0] if id(o) not in came_ids]
                assert sorted(map(id, came)) == sorted(id(o) for o in fast[0] if id(o) in came_ids)
        assert [(o.ref, o.spec, o.source) for o in fast[0]] == [(o.ref, o.spec, o.source) for o in full[0]]
        assert all(a is b for a, b in zip(fast[0], full[0]))
        assert dict(store.by_ref()) == {o.ref: o for o in fast[0]}  # the persistent map, patched alike
        assert sorted(d.format() for d in fast[1]) == sorted(d.format() for d in full[1])


def test_what_changed_is_noted_as_what_went_and_came() -> None:
    store = ConfigStore()
    x, y, z = obj("x", "a.yaml", 1), obj("y", "a.yaml", 1), obj("z", "b.yaml", 1)
    store.replace("a.yaml", [x, y])
    store.replace("b.yaml", [z])
    first, _ = store.objects()
    y2 = obj("y", "a.yaml", 2)
    store.replace("a.yaml", [x, y2])
    second, _ = store.objects()
    assert second == [x, y2, z] and noted_delta(first, second) == ([y], [y2])  # patched in place
    w, v = obj("w", "c.yaml", 1), obj("v", "d.yaml", 1)
    store.replace("c.yaml", [w])
    store.replace("d.yaml", [v])  # two new origins (two Kubernetes objects) in one merge: both appended
    third, _ = store.objects()
    assert third == [x, y2, z, w, v] and noted_delta(second, third) == ([], [w, v])
    store.remove("b.yaml")
    store.remove("c.yaml")
    fourth, _ = store.objects()  # removals cost what they remove
    assert fourth == [x, y2, v] and noted_delta(third, fourth) == ([z, w], [])
    store.replace("b.yaml", [z])  # loaded again: the newest origin now
    fifth, _ = store.objects()
    assert fifth == [x, y2, v, z] and noted_delta(fourth, fifth) == ([], [z])
