"""The identity diffs and persistent maps the incremental engine rests on (translators/by_identity.py,
translators/persistent.py), as tables of cases."""
from __future__ import annotations

import pytest

from translators import by_identity, persistent

A, B, C, D, X, Y = (object() for _ in range(6))

SPANS = [
    # old, new, span
    ([A, B, C], [A, B, C], (3, 3, 3)),
    ([A, B, C], [A, X, C], (1, 2, 2)),
    ([A, B, C], [A, X, B, C], (1, 1, 2)),
    ([A, B, C], [A, C], (1, 2, 1)),
    ([A, B, C], [X, Y], (0, 3, 2)),
    ([], [A], (0, 0, 1)),
    ([A, B, C, D], [A, X, C, Y], (1, 4, 4)),
]


@pytest.mark.parametrize("old,new,span", SPANS)
def test_changed_span_found(old, new, span) -> None:  # noqa: ANN001
    assert by_identity.changed_span(old, new) == span


def test_a_noted_span_is_used_for_that_pair_only() -> None:
    old, new = [A, B, C, D], [A, X, C, D]
    # a producer may note a wider span than the minimal one (it knows what it replaced, not what stayed)
    by_identity.note_span(old, new, (1, 3, 3))
    assert by_identity.changed_span(old, new) == (1, 3, 3)
    assert by_identity.changed_span(list(old), new) == (1, 2, 2)  # another old list: found by scanning
    assert by_identity.changed_positions(old, new) == [1]


def test_a_wrong_span_is_refused() -> None:
    with pytest.raises(AssertionError):
        by_identity.note_span([A, B], [A, B, C], (0, 1, 1))  # the tails would differ in length


def test_came_and_went_by_identity() -> None:
    came, went = by_identity.came_and_went([A, B, C], [A, X, B, C])
    assert came == [X] and went == []
    came, went = by_identity.came_and_went([A, B, C], [A, C, Y])
    assert (came, went) == ([Y], [B])  # C is in both: neither came nor went


def test_patched_leaves_the_base_as_it_was() -> None:
    base = persistent.frozen({"a": 1, "b": 2})
    new = persistent.patched(base, put=[("c", 3), ("a", 9)], drop=["b", "missing"])
    assert dict(base) == {"a": 1, "b": 2}
    assert dict(new) == {"a": 9, "c": 3}
    assert persistent.frozen(new) is new
    assert dict(persistent.patched({"x": 1}, drop=["x"])) == {}
